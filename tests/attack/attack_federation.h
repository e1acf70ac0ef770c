// The sites a cheating coordinator attacks: n institutions with real certificates (a test
// CA), real data (a public CSV of deploy/data dealt round robin, training and test rows
// apart, as deploy/demo.sh deals them) and the real site code — client::SiteAgent, with its
// local policy, training, secure-aggregation client and site store — answering work items
// in process. Only the network is left out: the tests hand each site the work items a
// coordinator would post and read back exactly what the site would send.
//
// A site can be restarted (its agent destroyed and rebuilt from the same files, as a daemon
// restart would), and its true vector for a work item can be computed independently (a
// fresh WorkProcessor on the same data), so a test can check whether what the coordinator
// recovered is that vector.
//
// Not thread-safe; one per test.
#ifndef TESSERA_TESTS_ATTACK_ATTACK_FEDERATION_H_
#define TESSERA_TESTS_ATTACK_ATTACK_FEDERATION_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/ledger.h"
#include "client/peer_certificates.h"
#include "client/site_agent.h"
#include "crypto/signature.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "proto/task.pb.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::attack {

struct AttackData {
  // Under the source tree: the CSV and its reference test rows (may be empty: no test rows).
  std::string csv = "deploy/data/breast_cancer_wisconsin.csv";
  std::string test_rows = "deploy/data/splits/breast_cancer_wisconsin.test_rows.txt";
  // The dataset id sites map it to.
  std::string dataset_id = "breast_cancer";
};

class AttackFederation {
 public:
  // Sites "site-1" .. "site-n", each with every n-th training row and every n-th test row.
  static absl::StatusOr<std::unique_ptr<AttackFederation>> Create(int n,
                                                                  const AttackData& data = {});
  ~AttackFederation();

  const std::vector<std::string>& ids() const { return ids_; }
  const std::string& ca_cert_pem() const { return pki_->ca().cert_pem; }
  const std::string& dataset_id() const { return data_.dataset_id; }

  // The site's answer to `item`, from its real agent. An advertisement list naming
  // certificates by digest is completed first as the site's daemon does
  // (client/peer_certificates.h), with `fetch` for those it does not hold (null: none
  // fetched, the entries stay without certificates).
  v1::PushResultRequest Ask(const std::string& site, const v1::WorkItem& item,
                            const client::FetchCertificatesCall& fetch = nullptr);

  // Destroys the site's agent and builds a new one from the same config, key and store
  // directory: what a daemon restart does.
  absl::Status Restart(const std::string& site);

  // Gives the site an egress ledger as its daemon has (client/ledger.h, attached to the
  // agent: SiteAgent::SetLedger) and restarts its agent: from then on each answer Ask
  // returns is also recorded as the daemon sends it (EgressLedger::Record of the bytes
  // RecordedCaller would send), and the site's store counts its writes.
  absl::Status AttachLedger(const std::string& site);
  // With AttachLedger: the writes of the site's store since (each one synced), and the
  // SHA-256 of each answer sent through its ledger, in order.
  int store_writes(const std::string& site) const;
  // With AttachLedger: each session record the site's store wrote since, the bytes of its
  // snapshot and of the snapshot's input kept apart (SiteSessionRecord.machine_input).
  struct SessionWrite {
    size_t snapshot_bytes = 0;
    size_t input_bytes = 0;
  };
  const std::vector<SessionWrite>& session_writes(const std::string& site) const;
  const std::vector<std::string>& sent(const std::string& site) const;
  // The site's store (its agent's: valid until the next restart).
  client::SiteStore& store(const std::string& site);
  // The last work item the site was asked (Ask), as it was given.
  const v1::WorkItem& last_item(const std::string& site) const;

  // Gives the site `policy` (defaults applied and validated as the daemon does with its
  // config file; INVALID_ARGUMENT naming the field otherwise) and restarts its agent.
  absl::Status SetPolicy(const std::string& site, const v1::LocalPolicy& policy);

  // The site's approval queue (its agent's: valid until the next restart).
  client::ApprovalQueue* approvals(const std::string& site);

  // The site's real-valued contribution for `item` (spec, model, standardisation as the
  // item says), computed by a fresh WorkProcessor on the site's data: what the site's
  // vector is before masking. Empty with the decline in `*decline` if it would decline.
  std::vector<double> TrueVector(const std::string& site, const v1::WorkItem& item,
                                 v1::Decline* decline = nullptr) const;

  // The site's signing key and certificate: a colluding site hands them to the coordinator.
  const crypto::Signer& signer(const std::string& site) const;
  const std::string& certificate(const std::string& site) const;
  const v1::ClientConfig& config(const std::string& site) const;

  // Training rows and rows of the held-out file at each site.
  size_t train_rows(const std::string& site) const;

  // The example task of deploy/examples/breast_cancer_logistic.textproto, validated, with
  // defaults applied and min_clients 2.
  static absl::StatusOr<v1::TaskSpec> ExampleSpec();
  // The pooled standardisation of `spec`'s features (and label, when the model pools it)
  // over every site's training rows, computed here from the files.
  absl::StatusOr<v1::Standardization> PooledStandardization(const v1::TaskSpec& spec) const;

 private:
  struct Site {
    std::string id;
    v1::ClientConfig config;
    std::string certificate;
    std::unique_ptr<crypto::Signer> signer;
    std::unique_ptr<client::SiteAgent> agent;
    // AttachLedger: the ledger over the agent's store (destroyed before it), the store's
    // writes and what was sent.
    bool with_ledger = false;
    std::unique_ptr<client::EgressLedger> ledger;
    int store_writes = 0;
    std::vector<SessionWrite> session_writes;
    std::vector<std::string> sent;
    v1::WorkItem last_item;
    client::PeerCertificates certificates;
    size_t train_rows = 0;
  };
  AttackFederation() = default;
  absl::Status StartAgent(Site& site);
  const Site& site(const std::string& id) const;

  AttackData data_;
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::TestPki> pki_;
  std::vector<std::string> ids_;
  std::map<std::string, Site> sites_;
};

// `relative` under the source tree.
std::string SourcePath(const std::string& relative);

}  // namespace tessera::attack

#endif  // TESSERA_TESTS_ATTACK_ATTACK_FEDERATION_H_
