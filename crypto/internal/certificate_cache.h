// Private to tessera_crypto: per-process memos of certificate work that is a pure function
// of its inputs, so that a peer seen in every secure-aggregation session is parsed and
// verified once per process instead of once per session (docs/performance.md).
//
//  - VerifiedCertificates remembers "certificate C verifies against CA A" (VerifyCertificate
//    in pki_verify.cc) together with the span in which that holds: from the later of the
//    two notBefore times up to, not including, the earlier of the two notAfter times.
//    X509_verify_cert's answer for C against A (no CRL: revocation is checked separately,
//    crypto/crl.h) depends on the time only through those four dates, so a hit inside the
//    span gives exactly what a full verification would. Failures are never remembered:
//    every refusal is computed in full, with its precise reason.
//  - PublicKeys remembers the public key parsed from a certificate (Verifier::Create).
//  - ParsedCertificates remembers what ParseCertificate read from a certificate: the
//    coordinator reads its caller's identity from the TLS peer's certificate on every call
//    (crypto::PeerIdentity), and OpenSSL 3's decoder made that parse most of the CPU a
//    refused call costs (a flood of 3,000 calls a second from one site took 1.3 of the
//    machine's 2 cores, 70 % of it in the parse: docs/operations.md, "Resource limits").
//    Malformed certificates are never remembered.
//
// Keys are SHA-256 digests of the PEM texts (a different byte is a different entry). All
// three are bounded (kMaxEntries each, a few hundred bytes per verified or parsed
// certificate and about a kilobyte per key); when full, an arbitrary entry is dropped for
// the new one. Thread-safe.
#ifndef TESSERA_CRYPTO_INTERNAL_CERTIFICATE_CACHE_H_
#define TESSERA_CRYPTO_INTERNAL_CERTIFICATE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/pki.h"

namespace tessera::crypto::internal {

inline constexpr size_t kMaxEntries = 2048;

class VerifiedCertificates {
 public:
  // The process's one instance (never destroyed).
  static VerifiedCertificates& Instance();

  // The digest both functions below take: SHA-256 over the two PEM texts, each prefixed by
  // its length.
  static std::string Key(std::string_view cert_pem, std::string_view ca_cert_pem);

  // The remembered CertificateInfo if `key` verified and `now` (to the second, as OpenSSL
  // compares) is inside its span; nullopt otherwise.
  std::optional<CertificateInfo> Find(const std::string& key, absl::Time now);

  // Remembers a successful verification valid in [valid_from, valid_until).
  void Insert(const std::string& key, const CertificateInfo& info, absl::Time valid_from,
              absl::Time valid_until);

  // For tests: lookups answered from memory, and entries held.
  uint64_t hits();
  size_t size();

 private:
  struct Entry {
    CertificateInfo info;
    absl::Time valid_from;
    absl::Time valid_until;
  };
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
};

class PublicKeys {
 public:
  static PublicKeys& Instance();

  // A new reference to the key remembered for this certificate PEM, or null.
  UniqueEvpPkey Find(const std::string& cert_pem);
  // Remembers `key` (takes a reference of its own).
  void Insert(const std::string& cert_pem, EVP_PKEY* key);

  uint64_t hits();

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, UniqueEvpPkey> keys_ ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
};

class ParsedCertificates {
 public:
  static ParsedCertificates& Instance();

  // The CertificateInfo remembered for this certificate PEM, or nullopt.
  std::optional<CertificateInfo> Find(std::string_view cert_pem);
  // Remembers a certificate that parsed.
  void Insert(std::string_view cert_pem, const CertificateInfo& info);

  uint64_t hits();

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, CertificateInfo> infos_ ABSL_GUARDED_BY(mu_);
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::crypto::internal

#endif  // TESSERA_CRYPTO_INTERNAL_CERTIFICATE_CACHE_H_
