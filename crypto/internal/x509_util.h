// X.509 helpers shared by crypto/pki*.cc, crypto/crl.cc and crypto/signature.cc (private to
// tessera_crypto).
#ifndef TESSERA_CRYPTO_INTERNAL_X509_UTIL_H_
#define TESSERA_CRYPTO_INTERNAL_X509_UTIL_H_

#include <openssl/asn1.h>
#include <openssl/evp.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/pki.h"
#include "crypto/secret.h"

namespace tessera::crypto::internal {

// Passphrase callback for every PEM read: never prompt on a terminal, never decrypt.
int NoPassphrase(char* buf, int size, int rwflag, void* userdata);
// "2026-12-02T08:00:00Z".
std::string FormatUtc(absl::Time t);
bool IsP256(const EVP_PKEY* key);
// INVALID_ARGUMENT unless an unencrypted PEM ECDSA P-256 private key.
absl::StatusOr<UniqueEvpPkey> ParsePrivateKey(const SecretBytes& key_pem);
// INVALID_ARGUMENT "<what> is not a PEM certificate".
absl::StatusOr<UniqueX509> ParseX509(const std::string& pem, const char* what);
// InfinitePast if unreadable.
absl::Time Asn1TimeToAbsl(const ASN1_TIME* t);
// The node id, role, federation, fingerprint, serial and validity of `cert` (pki.cc);
// INVALID_ARGUMENT if its subject names no node id and role.
absl::StatusOr<CertificateInfo> CertificateInfoOf(X509* cert);

}  // namespace tessera::crypto::internal

#endif  // TESSERA_CRYPTO_INTERNAL_X509_UTIL_H_
