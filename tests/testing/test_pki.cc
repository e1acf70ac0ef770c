#include "tests/testing/test_pki.h"

#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "common/files.h"
#include "common/status.h"
#include "crypto/secret.h"

namespace tessera::testing {
namespace {

constexpr int kCaValidityDays = 3650;
constexpr absl::Duration kCaBackdate = absl::Hours(24 * 365);

}  // namespace

absl::StatusOr<std::unique_ptr<TestPki>> TestPki::Create(const std::string& dir,
                                                         const std::string& federation) {
  std::unique_ptr<TestPki> pki(new TestPki());
  pki->dir_ = dir;
  pki->federation_ = federation;
  const absl::Time ca_start = absl::Now() - kCaBackdate;
  ASSIGN_OR_RETURN(pki->ca_,
                   crypto::CreateCertificateAuthority(federation, kCaValidityDays, ca_start));
  ASSIGN_OR_RETURN(pki->foreign_ca_,
                   crypto::CreateCertificateAuthority(federation, kCaValidityDays, ca_start));
  pki->ca_cert_path_ = dir + "/ca.crt";
  pki->foreign_ca_cert_path_ = dir + "/foreign-ca.crt";
  RETURN_IF_ERROR(common::WriteFileAtomic(pki->ca_cert_path_, pki->ca_.cert_pem, 0644));
  RETURN_IF_ERROR(
      common::WriteFileAtomic(pki->foreign_ca_cert_path_, pki->foreign_ca_.cert_pem, 0644));
  return pki;
}

absl::StatusOr<v1::TlsFiles> TestPki::IssueNode(const std::string& node_id, crypto::Role role,
                                                const NodeOptions& options) {
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
  ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key, node_id));
  crypto::SignOptions sign;
  sign.role = role;
  sign.validity_days = options.validity_days;
  if (role == crypto::Role::kCoordinator) {
    sign.subject_alt_names = options.subject_alt_names.empty()
                                 ? std::vector<std::string>{"127.0.0.1", "localhost"}
                                 : options.subject_alt_names;
  }
  ASSIGN_OR_RETURN(std::string cert, crypto::SignCsr(options.foreign ? foreign_ca_ : ca_, csr, sign,
                                                     options.issued_at));
  v1::TlsFiles files;
  files.set_ca_cert(ca_cert_path_);
  files.set_cert(dir_ + "/" + node_id + ".crt");
  files.set_key(dir_ + "/" + node_id + ".key");
  RETURN_IF_ERROR(common::WriteFileAtomic(files.cert(), cert, 0644));
  RETURN_IF_ERROR(common::WriteFileAtomic(files.key(), key.view(), 0600));
  return files;
}

absl::StatusOr<v1::TlsFiles> TestPki::IssueExpired(const std::string& node_id, crypto::Role role) {
  NodeOptions options;
  options.issued_at = absl::Now() - absl::Hours(24 * 10);
  options.validity_days = 1;
  return IssueNode(node_id, role, options);
}

absl::StatusOr<v1::TlsFiles> TestPki::IssueNotYetValid(const std::string& node_id,
                                                       crypto::Role role) {
  NodeOptions options;
  options.issued_at = absl::Now() + absl::Hours(24 * 10);
  return IssueNode(node_id, role, options);
}

absl::StatusOr<v1::TlsFiles> TestPki::IssueForeign(const std::string& node_id, crypto::Role role) {
  NodeOptions options;
  options.foreign = true;
  return IssueNode(node_id, role, options);
}

}  // namespace tessera::testing
