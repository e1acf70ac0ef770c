// Certificate revocation for the federation: X.509 CRLs signed by the federation CA
// (OpenSSL's C API), and the newest verified CRL a node holds.
//
// A CRL lists the serial numbers of revoked certificates with the time and reason of each
// revocation, a CRL number that grows with every issue, and thisUpdate/nextUpdate. Only
// the CA can make one: nodes accept a CRL only after checking its signature with the
// federation CA's certificate, so whoever relays it (the coordinator) cannot forge or alter
// it. A node never goes back to an older CRL (lower or equal CRL number).
//
// Thread-safe. PEM strings and plain structs cross this API; no OpenSSL type does.
// Errors: INVALID_ARGUMENT for malformed input (not a PEM CRL, no CRL number, bad serial),
// UNAUTHENTICATED for a CRL the federation CA did not sign, INTERNAL for OpenSSL failures.
#ifndef TESSERA_CRYPTO_CRL_H_
#define TESSERA_CRYPTO_CRL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crypto/pki.h"

namespace tessera::crypto {

// CRL reason codes (RFC 5280 5.3.1) an operator may give, by their command-line names:
// "unspecified", "key-compromise", "affiliation-changed", "superseded",
// "cessation-of-operation". INVALID_ARGUMENT naming the accepted values otherwise.
absl::Status CheckRevocationReason(const std::string& reason);

struct RevokedCertificate {
  std::string serial_hex;  // lowercase hex, as CertificateInfo::serial_hex
  absl::Time revoked_at;
  std::string reason;  // one of the names above
};

struct CrlInfo {
  uint64_t number = 0;  // the CRL number extension
  absl::Time this_update;
  absl::Time next_update;
  std::vector<RevokedCertificate> revoked;  // in the CRL's order
};

// A CRL signed by `ca` listing `revoked`, with CRL number `number`, thisUpdate `now` and
// nextUpdate `now + validity` (validity 1 hour .. 400 days).
absl::StatusOr<std::string> CreateCrl(const CertificateAuthority& ca,
                                      const std::vector<RevokedCertificate>& revoked,
                                      uint64_t number, absl::Time now, absl::Duration validity);

// Parses `crl_pem` and checks that the federation CA (`ca_cert_pem`) issued and signed it.
// INVALID_ARGUMENT "... is not a PEM CRL" / "... has no CRL number"; UNAUTHENTICATED "...
// is not signed by the federation CA" (another CA, altered content, bad signature). Does
// not reject a CRL past its nextUpdate (callers decide; see RevocationList).
absl::StatusOr<CrlInfo> VerifyCrl(const std::string& crl_pem, const std::string& ca_cert_pem);

// The newest CRL a node has verified. Starts empty (nothing revoked).
class RevocationList {
 public:
  explicit RevocationList(std::string ca_cert_pem);

  // Verifies `crl_pem` (VerifyCrl's errors; a refused CRL changes nothing) and keeps it if
  // its number is higher than the one held. Returns true if it replaced the held one,
  // false if it was not newer.
  absl::StatusOr<bool> Offer(const std::string& crl_pem);

  // The entry for `serial_hex` in the held CRL, if any.
  std::optional<RevokedCertificate> Find(const std::string& serial_hex) const;

  // The held CRL as PEM ("" if none) and its number (0 if none).
  std::string pem() const;
  uint64_t number() const;
  // nextUpdate of the held CRL (InfinitePast if none).
  absl::Time next_update() const;

 private:
  const std::string ca_cert_pem_;
  mutable absl::Mutex mu_;
  std::string pem_ ABSL_GUARDED_BY(mu_);
  CrlInfo info_ ABSL_GUARDED_BY(mu_);
};

// "certificate <serial> of <node> was revoked at <time> (<reason>)".
std::string DescribeRevocation(const CertificateInfo& info, const RevokedCertificate& entry);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_CRL_H_
