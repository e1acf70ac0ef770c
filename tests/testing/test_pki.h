// A throwaway federation PKI for tests: one CA, certificates for named nodes with a role,
// written as files (keys mode 0600) so code under test loads them the way a daemon does.
// Also makes the certificates tests need to be refused: expired, not yet valid, and
// signed by a second, foreign CA.
//
// Not thread-safe; one per test (fixture) is the intended use.
#ifndef TESSERA_TESTS_TESTING_TEST_PKI_H_
#define TESSERA_TESTS_TESTING_TEST_PKI_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/pki.h"
#include "proto/config.pb.h"

namespace tessera::testing {

class TestPki {
 public:
  // Makes the federation CA (valid from a year before now for ten years) and writes
  // `dir`/ca.crt. `dir` must exist (a TempDir, usually).
  static absl::StatusOr<std::unique_ptr<TestPki>> Create(
      const std::string& dir, const std::string& federation = "test-federation");

  struct NodeOptions {
    // Issue time (the certificate is valid from 5 minutes before it).
    absl::Time issued_at = absl::Now();
    int validity_days = 30;
    // For the coordinator role only; empty means {"127.0.0.1", "localhost"}.
    std::vector<std::string> subject_alt_names;
    // Sign with the foreign CA instead of the federation CA. The returned ca_cert still
    // names the federation CA (what the node would be configured to trust).
    bool foreign = false;
  };

  // A fresh key and certificate for `node_id` with `role`, written to
  // `dir`/<node_id>.key (0600) and `dir`/<node_id>.crt. Returns the three paths.
  absl::StatusOr<v1::TlsFiles> IssueNode(const std::string& node_id, crypto::Role role,
                                         const NodeOptions& options);
  absl::StatusOr<v1::TlsFiles> IssueNode(const std::string& node_id, crypto::Role role) {
    return IssueNode(node_id, role, NodeOptions());
  }
  // Issued 10 days ago, valid for 1 day.
  absl::StatusOr<v1::TlsFiles> IssueExpired(const std::string& node_id, crypto::Role role);
  // Issued (and valid from) 10 days from now.
  absl::StatusOr<v1::TlsFiles> IssueNotYetValid(const std::string& node_id, crypto::Role role);
  // Signed by a second CA with the same federation name but its own key.
  absl::StatusOr<v1::TlsFiles> IssueForeign(const std::string& node_id, crypto::Role role);

  const crypto::CertificateAuthority& ca() const { return ca_; }
  const crypto::CertificateAuthority& foreign_ca() const { return foreign_ca_; }
  const std::string& ca_cert_path() const { return ca_cert_path_; }
  const std::string& foreign_ca_cert_path() const { return foreign_ca_cert_path_; }
  const std::string& dir() const { return dir_; }
  const std::string& federation() const { return federation_; }

 private:
  TestPki() = default;

  std::string dir_;
  std::string federation_;
  crypto::CertificateAuthority ca_;
  crypto::CertificateAuthority foreign_ca_;
  std::string ca_cert_path_;
  std::string foreign_ca_cert_path_;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_TEST_PKI_H_
