#include "crypto/pki_files.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "crypto/ca_records.h"

namespace tessera::crypto {
namespace {

std::string Join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

}  // namespace

absl::Status InitCertificateAuthorityDir(const std::string& dir, const std::string& federation_name,
                                         int validity_days, absl::Time now) {
  const std::string key_path = Join(dir, kCaKeyFile);
  const std::string cert_path = Join(dir, kCaCertFile);
  if (common::PathExists(key_path)) {
    return absl::AlreadyExistsError(
        absl::StrCat(key_path, " already exists; refusing to replace the federation CA"));
  }
  RETURN_IF_ERROR(common::MakeDirectories(dir, 0700));
  ASSIGN_OR_RETURN(CertificateAuthority ca,
                   CreateCertificateAuthority(federation_name, validity_days, now));
  RETURN_IF_ERROR(common::WriteNewFile(key_path, ca.key_pem.view(), 0600));
  return common::WriteFileAtomic(cert_path, ca.cert_pem, 0644);
}

absl::StatusOr<CertificateAuthority> LoadCertificateAuthorityDir(const std::string& dir) {
  const std::string key_path = Join(dir, kCaKeyFile);
  const std::string cert_path = Join(dir, kCaCertFile);
  RETURN_IF_ERROR(common::CheckPrivateFileMode(key_path));
  CertificateAuthority ca;
  {
    ASSIGN_OR_RETURN(std::string key, common::ReadFile(key_path));
    ca.key_pem = SecretBytes(std::move(key));
  }
  ASSIGN_OR_RETURN(ca.cert_pem, common::ReadFile(cert_path));
  RETURN_IF_ERROR(common::Annotate(CheckKeyMatchesCertificate(ca.key_pem, ca.cert_pem),
                                   absl::StrCat(key_path, " and ", cert_path)));
  return ca;
}

absl::StatusOr<KeyAndCsrPaths> WriteKeyAndCsr(const std::string& node_id,
                                              const std::string& out_dir) {
  if (!IsValidNodeId(node_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("node id '", node_id, "' must be 1..64 characters from [A-Za-z0-9._-]"));
  }
  KeyAndCsrPaths paths{Join(out_dir, node_id + ".key"), Join(out_dir, node_id + ".csr")};
  if (common::PathExists(paths.key)) {
    return absl::AlreadyExistsError(
        absl::StrCat(paths.key, " already exists; refusing to replace a private key"));
  }
  RETURN_IF_ERROR(common::MakeDirectories(out_dir, 0700));
  ASSIGN_OR_RETURN(SecretBytes key, GeneratePrivateKey());
  ASSIGN_OR_RETURN(std::string csr, CreateCsr(key, node_id));
  RETURN_IF_ERROR(common::WriteNewFile(paths.key, key.view(), 0600));
  RETURN_IF_ERROR(common::WriteFileAtomic(paths.csr, csr, 0644));
  return paths;
}

absl::StatusOr<CertificateInfo> SignCsrFile(const std::string& ca_dir, const std::string& csr_path,
                                            const SignOptions& options, const std::string& out_path,
                                            absl::Time now) {
  if (common::PathExists(out_path)) {
    return absl::AlreadyExistsError(absl::StrCat(
        out_path, " already exists; refusing to overwrite a certificate (move it away first)"));
  }
  ASSIGN_OR_RETURN(CertificateAuthority ca, LoadCertificateAuthorityDir(ca_dir));
  ASSIGN_OR_RETURN(std::string csr, common::ReadFile(csr_path));
  auto cert = SignCsr(ca, csr, options, now);
  if (!cert.ok()) return common::Annotate(cert.status(), csr_path);
  RETURN_IF_ERROR(common::WriteNewFile(out_path, *cert, 0644));
  ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificate(*cert));
  // The record `pki revoke NAME` and `pki list` read (crypto/ca_records.h).
  RETURN_IF_ERROR(common::Annotate(RecordIssued(ca_dir, info),
                                   absl::StrCat(out_path, " was written but not recorded")));
  return info;
}

}  // namespace tessera::crypto
