#include "crypto/signature.h"

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>
#include <utility>

#include "common/status.h"
#include "crypto/internal/certificate_cache.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/internal/x509_util.h"

namespace tessera::crypto {
namespace {

using internal::ClearOpenSslErrors;
using internal::MemoryBio;
using internal::OpenSslInternal;
using internal::UniqueBio;
using internal::UniqueEvpMdCtx;
using internal::UniqueEvpPkey;
using internal::UniqueX509;

// PEM reads never prompt on a terminal and never decrypt (internal::NoPassphrase); keys are
// ECDSA P-256 (internal::IsP256, internal::ParsePrivateKey in pki.cc).
using internal::IsP256;
using internal::NoPassphrase;

}  // namespace

struct Signer::Impl {
  UniqueEvpPkey key;
};

struct Verifier::Impl {
  UniqueEvpPkey key;
};

Signer::Signer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Signer::~Signer() = default;
Signer::Signer(Signer&&) noexcept = default;
Signer& Signer::operator=(Signer&&) noexcept = default;

absl::StatusOr<Signer> Signer::Create(const SecretBytes& private_key_pem) {
  ASSIGN_OR_RETURN(UniqueEvpPkey key, internal::ParsePrivateKey(private_key_pem));
  return Signer(std::make_unique<Impl>(Impl{std::move(key)}));
}

absl::StatusOr<std::string> Signer::Sign(std::string_view message) const {
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) != 1) {
    return OpenSslInternal("cannot set up ECDSA signing");
  }
  const auto* data = reinterpret_cast<const unsigned char*>(message.data());
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data, message.size()) != 1) {
    return OpenSslInternal("ECDSA signing failed");
  }
  std::string signature(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len, data,
                     message.size()) != 1) {
    return OpenSslInternal("ECDSA signing failed");
  }
  signature.resize(len);  // DER: the first call gives the maximum length
  return signature;
}

Verifier::Verifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Verifier::~Verifier() = default;
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;

absl::StatusOr<Verifier> Verifier::Create(const std::string& cert_pem) {
  internal::PublicKeys& keys = internal::PublicKeys::Instance();
  if (UniqueEvpPkey key = keys.Find(cert_pem)) {
    return Verifier(std::make_unique<Impl>(Impl{std::move(key)}));
  }
  UniqueBio bio = MemoryBio(cert_pem);
  if (bio == nullptr) return OpenSslInternal("cannot read the certificate");
  UniqueX509 cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("certificate is not a PEM certificate");
  }
  UniqueEvpPkey key(X509_get_pubkey(cert.get()));
  if (key == nullptr) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("certificate has no readable public key");
  }
  if (!IsP256(key.get())) {
    return absl::InvalidArgumentError("certificate key is not an ECDSA P-256 key");
  }
  keys.Insert(cert_pem, key.get());
  return Verifier(std::make_unique<Impl>(Impl{std::move(key)}));
}

absl::Status Verifier::Verify(std::string_view message, std::string_view signature) const {
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) != 1) {
    return OpenSslInternal("cannot set up ECDSA verification");
  }
  // 1 is a valid signature; 0 a wrong one; negative a malformed one. OpenSSL also refuses
  // a DER encoding that is not the canonical one (trailing bytes, padded integers), so a
  // signature cannot be altered into another accepted form byte by byte.
  const int result = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(message.data()), message.size());
  if (result != 1) {
    ClearOpenSslErrors();
    return absl::UnauthenticatedError("the signature does not verify with the signer's key");
  }
  return absl::OkStatus();
}

}  // namespace tessera::crypto
