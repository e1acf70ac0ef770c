// The CA directory's records of what it issued and revoked, for `tessera pki sign`,
// `revoke`, `list` and `crl`.
//
//   <ca-dir>/issued.tsv  one line per certificate `pki sign` issued (serial, node id, role,
//                        not_after), written atomically; made by the first `pki sign` that
//                        finds none. Certificates signed before it existed are not in it
//                        (revoke those by serial).
//   <ca-dir>/crl.pem     the CRL (crypto/crl.h), rewritten atomically with every entry of
//                        the previous one kept and the CRL number one higher.
//
// Not thread-safe across processes: one operator at a time works on a CA directory (as with
// the CA key itself). Every error names the file or the certificate.
#ifndef TESSERA_CRYPTO_CA_RECORDS_H_
#define TESSERA_CRYPTO_CA_RECORDS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/crl.h"
#include "crypto/pki.h"

namespace tessera::crypto {

inline constexpr char kIssuedIndexFile[] = "issued.tsv";
inline constexpr char kCrlFile[] = "crl.pem";
// nextUpdate of a CRL the commands write, unless told otherwise.
inline constexpr int kDefaultCrlDays = 30;

struct IssuedCertificate {
  std::string serial_hex;
  std::string node_id;
  std::string role;
  absl::Time not_after;
};

// Every certificate in <ca_dir>/issued.tsv (empty if the file does not exist).
// INVALID_ARGUMENT naming the file and line for a damaged line.
absl::StatusOr<std::vector<IssuedCertificate>> ReadIssuedIndex(const std::string& ca_dir);

// Adds `info` to <ca_dir>/issued.tsv (creating it).
absl::Status RecordIssued(const std::string& ca_dir, const CertificateInfo& info);

// The CRL in <ca_dir>/crl.pem, verified with the CA certificate; an empty CrlInfo (number
// 0) if there is none yet. Errors name the file.
absl::StatusOr<CrlInfo> ReadCaDirCrl(const std::string& ca_dir);

struct RevokeRequest {
  // A node id from issued.tsv or a serial number (hex).
  std::string name_or_serial;
  std::string reason = "unspecified";
  absl::Duration crl_validity = absl::Hours(24 * kDefaultCrlDays);
};
struct RevokeResult {
  RevokedCertificate entry;
  std::string node_id;  // "" when revoked by a serial the index does not know
  CrlInfo crl;          // the new CRL
  std::string crl_path;
};
// Revokes one certificate and writes the new CRL. A node id must name exactly one
// certificate not yet revoked: NOT_FOUND "unknown name ..." if neither a node id of the index
// nor a serial; FAILED_PRECONDITION listing the serials if the name has several
// unrevoked certificates, or if the certificate is already revoked (naming when).
absl::StatusOr<RevokeResult> RevokeCertificate(const std::string& ca_dir,
                                               const RevokeRequest& request, absl::Time now);

// Writes a fresh CRL with the same entries and the next CRL number (before nextUpdate of
// the old one passes).
absl::StatusOr<CrlInfo> ReissueCrl(const std::string& ca_dir, absl::Duration validity,
                                   absl::Time now);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_CA_RECORDS_H_
