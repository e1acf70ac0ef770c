// Private to tessera_crypto: OpenSSL objects in unique_ptrs, and the one place that
// turns OpenSSL's per-thread error queue into an absl::Status.
//
// Only crypto/*.cc include this header; it pulls in OpenSSL.
#ifndef TESSERA_CRYPTO_INTERNAL_OPENSSL_UTIL_H_
#define TESSERA_CRYPTO_INTERNAL_OPENSSL_UTIL_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::crypto::internal {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};

template <typename T, void (*Free)(T*)>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<T, Free>>;

// BIO_free returns int; wrap it so it fits the deleter shape.
inline void BioFreeAll(BIO* bio) { BIO_free_all(bio); }

using UniqueBio = OpenSslPtr<BIO, BioFreeAll>;
using UniqueBignum = OpenSslPtr<BIGNUM, BN_free>;
using UniqueAsn1Integer = OpenSslPtr<ASN1_INTEGER, ASN1_INTEGER_free>;
using UniqueAsn1Time = OpenSslPtr<ASN1_TIME, ASN1_TIME_free>;
using UniqueConf = OpenSslPtr<CONF, NCONF_free>;
using UniqueEvpCipher = OpenSslPtr<EVP_CIPHER, EVP_CIPHER_free>;
using UniqueEvpCipherCtx = OpenSslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using UniqueEvpKdf = OpenSslPtr<EVP_KDF, EVP_KDF_free>;
using UniqueEvpKdfCtx = OpenSslPtr<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using UniqueEvpMdCtx = OpenSslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using UniqueEvpPkey = OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using UniqueEvpPkeyCtx = OpenSslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using UniqueGeneralName = OpenSslPtr<GENERAL_NAME, GENERAL_NAME_free>;
using UniqueGeneralNames = OpenSslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using UniqueX509 = OpenSslPtr<X509, X509_free>;
using UniqueX509Extension = OpenSslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using UniqueX509Name = OpenSslPtr<X509_NAME, X509_NAME_free>;
using UniqueX509Req = OpenSslPtr<X509_REQ, X509_REQ_free>;
using UniqueX509Store = OpenSslPtr<X509_STORE, X509_STORE_free>;
using UniqueX509StoreCtx = OpenSslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using UniqueSslCtx = OpenSslPtr<SSL_CTX, SSL_CTX_free>;
using UniqueSsl = OpenSslPtr<SSL, SSL_free>;

// Returns a status with `code` and `message`, followed by the reasons OpenSSL queued on
// this thread (library and reason strings only: they never carry key material). Always
// empties the queue, so a later error does not inherit stale reasons.
absl::Status OpenSslError(absl::StatusCode code, absl::string_view message);

// INTERNAL + OpenSslError: for calls that fail only on allocation or library bugs.
inline absl::Status OpenSslInternal(absl::string_view message) {
  return OpenSslError(absl::StatusCode::kInternal, message);
}

// Drops whatever OpenSSL queued on this thread (after an expected failure).
void ClearOpenSslErrors();

// A read-only memory BIO over `data`; the bytes are not copied, so `data` must outlive it.
UniqueBio MemoryBio(std::string_view data);

// Everything written to a memory BIO, as a string.
std::string BioContents(BIO* bio);

}  // namespace tessera::crypto::internal

#endif  // TESSERA_CRYPTO_INTERNAL_OPENSSL_UTIL_H_
