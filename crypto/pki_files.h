// The PKI as files on disk, for the `tessera pki` and `tessera-client keygen` commands.
// Private keys are written with mode 0600 and never overwritten; certificates and CSRs
// with 0644. Every error names the file.
#ifndef TESSERA_CRYPTO_PKI_FILES_H_
#define TESSERA_CRYPTO_PKI_FILES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/pki.h"

namespace tessera::crypto {

// File names inside a CA directory.
inline constexpr char kCaKeyFile[] = "ca.key";
inline constexpr char kCaCertFile[] = "ca.crt";

// Creates `dir` (mode 0700) if needed and writes a new CA for `federation_name` into it.
// ALREADY_EXISTS if the directory already holds a CA key.
absl::Status InitCertificateAuthorityDir(const std::string& dir, const std::string& federation_name,
                                         int validity_days, absl::Time now);

// Loads the CA of `dir` (checks the key file's mode and that key and certificate match).
absl::StatusOr<CertificateAuthority> LoadCertificateAuthorityDir(const std::string& dir);

struct KeyAndCsrPaths {
  std::string key;  // <out_dir>/<node_id>.key
  std::string csr;  // <out_dir>/<node_id>.csr
};
// Makes a fresh key pair for `node_id` and a CSR for it in `out_dir` (created 0700 if
// needed). ALREADY_EXISTS if the key file exists: a key is never replaced silently.
absl::StatusOr<KeyAndCsrPaths> WriteKeyAndCsr(const std::string& node_id,
                                              const std::string& out_dir);

// Signs the CSR in `csr_path` with the CA in `ca_dir` and writes the certificate to
// `out_path`, which must not exist: ALREADY_EXISTS otherwise, before anything is signed (a
// certificate is never replaced silently). Records it in the CA directory's index
// (crypto/ca_records.h). Returns what was issued.
absl::StatusOr<CertificateInfo> SignCsrFile(const std::string& ca_dir, const std::string& csr_path,
                                            const SignOptions& options, const std::string& out_path,
                                            absl::Time now);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_PKI_FILES_H_
