// Signatures with a node's own certificate key (ECDSA P-256, SHA-256, DER-encoded), so that
// what a client says in secure aggregation (its key advertisement, its view of the
// survivors) is bound to its federation identity and cannot be forged by the coordinator.
//
// Thread-safe: objects are immutable after creation.
#ifndef TESSERA_CRYPTO_SIGNATURE_H_
#define TESSERA_CRYPTO_SIGNATURE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::crypto {

class Signer {
 public:
  // From the node's PEM private key (the one in its TlsFiles).
  static absl::StatusOr<Signer> Create(const SecretBytes& private_key_pem);
  ~Signer();
  Signer(Signer&&) noexcept;
  Signer& operator=(Signer&&) noexcept;

  absl::StatusOr<std::string> Sign(std::string_view message) const;

 private:
  struct Impl;
  explicit Signer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Verifier {
 public:
  // From a PEM certificate; only its public key is used here (check the certificate's chain
  // and identity with VerifyCertificate first). INVALID_ARGUMENT if malformed. The key
  // parsed from a certificate is kept per process, so a peer's certificate seen again is
  // not parsed again.
  static absl::StatusOr<Verifier> Create(const std::string& cert_pem);
  ~Verifier();
  Verifier(Verifier&&) noexcept;
  Verifier& operator=(Verifier&&) noexcept;

  // UNAUTHENTICATED unless `signature` is a valid signature of `message` by the key.
  absl::Status Verify(std::string_view message, std::string_view signature) const;

 private:
  struct Impl;
  explicit Verifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_SIGNATURE_H_
