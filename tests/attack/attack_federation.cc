#include "tests/attack/attack_federation.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/site_store.h"
#include "client/work_processor.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/pki_files.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "proto/site_approval.pb.h"
#include "proto/site_budget.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"
#include "proto/validation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

std::string ToCsv(const client::CsvTable& table, const std::vector<size_t>& rows) {
  std::string out = absl::StrJoin(table.header, ",") + "\n";
  const size_t width = table.header.size();
  for (size_t r : rows) {
    for (size_t j = 0; j < width; ++j) {
      if (j > 0) out.push_back(',');
      out += absl::StrFormat("%.17g", table.values[r * width + j]);
    }
    out.push_back('\n');
  }
  return out;
}

absl::StatusOr<std::vector<size_t>> ReadRows(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
  std::vector<size_t> rows;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    size_t row = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &row)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a row index"));
    }
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// A SiteStore passing everything on to the real one and counting its writes (each one a
// synced write of the real store), with the sizes of the session records' secrets.
class CountingSiteStore final : public client::SiteStore {
 public:
  CountingSiteStore(std::unique_ptr<client::SiteStore> store, int* writes,
                    std::vector<AttackFederation::SessionWrite>* session_writes)
      : store_(std::move(store)), writes_(writes), session_writes_(session_writes) {}

  absl::StatusOr<v1::ContributionRecord> GetContribution(const std::string& key) override {
    return store_->GetContribution(key);
  }
  absl::StatusOr<std::vector<v1::ContributionRecord>> ListContributions() override {
    return store_->ListContributions();
  }
  absl::StatusOr<v1::SiteSessionRecord> GetSession(const std::string& session) override {
    return store_->GetSession(session);
  }
  absl::StatusOr<v1::SiteSessionRecord> GetSessionWithoutSecrets(
      const std::string& session) override {
    return store_->GetSessionWithoutSecrets(session);
  }
  absl::StatusOr<std::vector<v1::SiteSessionRecord>> ListSessions() override {
    return store_->ListSessions();
  }
  absl::Status PutSession(const v1::SiteSessionRecord& session,
                          const v1::ContributionRecord* contribution) override {
    return Counted(store_->PutSession(session, contribution), &session);
  }
  absl::Status DeleteSession(const std::string& session) override {
    return Counted(store_->DeleteSession(session));
  }
  absl::Status ScrubNow() override { return store_->ScrubNow(); }
  absl::StatusOr<std::vector<v1::BudgetCharge>> ListBudgetCharges() override {
    return store_->ListBudgetCharges();
  }
  absl::Status PutSessionCharged(const v1::SiteSessionRecord& session,
                                 const v1::ContributionRecord& contribution,
                                 const v1::BudgetCharge& charge) override {
    return Counted(store_->PutSessionCharged(session, contribution, charge), &session);
  }
  absl::Status PutSessionWithLedger(const v1::SiteSessionRecord& session,
                                    const v1::ContributionRecord* contribution,
                                    const v1::BudgetCharge* charge,
                                    const client::LedgerRecords& ledger) override {
    return Counted(store_->PutSessionWithLedger(session, contribution, charge, ledger), &session);
  }
  absl::Status AppendLedgerEntry(const v1::LedgerEntry& entry) override {
    return Counted(store_->AppendLedgerEntry(entry));
  }
  absl::StatusOr<v1::LedgerEntry> LastLedgerEntry() override { return store_->LastLedgerEntry(); }
  absl::StatusOr<std::vector<v1::LedgerEntry>> ListLedgerEntries() override {
    return store_->ListLedgerEntries();
  }
  absl::Status PutLedgerCheckpoint(const v1::LedgerCheckpoint& checkpoint) override {
    return Counted(store_->PutLedgerCheckpoint(checkpoint));
  }
  absl::StatusOr<std::vector<v1::LedgerCheckpoint>> ListLedgerCheckpoints() override {
    return store_->ListLedgerCheckpoints();
  }
  absl::StatusOr<v1::ApprovalRecord> GetApproval(const std::string& task_id,
                                                 const std::string& spec_hash) override {
    return store_->GetApproval(task_id, spec_hash);
  }
  absl::StatusOr<std::vector<v1::ApprovalRecord>> ListApprovals() override {
    return store_->ListApprovals();
  }
  absl::Status PutApproval(const v1::ApprovalRecord& record) override {
    return Counted(store_->PutApproval(record));
  }

 private:
  absl::Status Counted(absl::Status written, const v1::SiteSessionRecord* session = nullptr) {
    if (!written.ok()) return written;
    ++*writes_;
    if (session != nullptr) {
      session_writes_->push_back({session->machine().size(), session->machine_input().size()});
    }
    return written;
  }

  const std::unique_ptr<client::SiteStore> store_;
  int* const writes_;
  std::vector<AttackFederation::SessionWrite>* const session_writes_;
};

}  // namespace

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(TESSERA_SOURCE_DIR, "/", relative);
}

AttackFederation::~AttackFederation() = default;

absl::StatusOr<std::unique_ptr<AttackFederation>> AttackFederation::Create(int n,
                                                                           const AttackData& data) {
  std::unique_ptr<AttackFederation> f(new AttackFederation());
  f->data_ = data;
  f->dir_ = std::make_unique<testing::TempDir>();
  ASSIGN_OR_RETURN(f->pki_, testing::TestPki::Create(f->dir_->path()));

  ASSIGN_OR_RETURN(client::CsvTable table, client::LoadCsv(SourcePath(data.csv)));
  std::vector<size_t> test_rows;
  if (!data.test_rows.empty()) {
    ASSIGN_OR_RETURN(test_rows, ReadRows(SourcePath(data.test_rows)));
  }
  std::vector<size_t> train_rows;
  for (size_t r = 0; r < table.num_rows; ++r) {
    if (!std::binary_search(test_rows.begin(), test_rows.end(), r)) train_rows.push_back(r);
  }
  for (int k = 0; k < n; ++k) {
    Site site;
    site.id = absl::StrCat("site-", k + 1);
    const std::string dir = f->dir_->File(site.id);
    RETURN_IF_ERROR(common::MakeDirectories(dir, 0700));
    std::vector<size_t> train, test;
    for (size_t i = k; i < train_rows.size(); i += n) train.push_back(train_rows[i]);
    for (size_t i = k; i < test_rows.size(); i += n) test.push_back(test_rows[i]);
    site.train_rows = train.size();
    v1::LocalDataset* d = site.config.add_datasets();
    d->set_id(data.dataset_id);
    d->set_train_csv(dir + "/train.csv");
    RETURN_IF_ERROR(common::WriteFileAtomic(d->train_csv(), ToCsv(table, train)));
    if (!test.empty()) {
      d->set_test_csv(dir + "/test.csv");
      RETURN_IF_ERROR(common::WriteFileAtomic(d->test_csv(), ToCsv(table, test)));
    }
    site.config.set_coordinator_address("127.0.0.1:1");  // never dialled here
    site.config.set_data_dir(dir + "/store");            // a real RocksDB site store
    site.config.mutable_policy()->set_min_cohort(2);
    ASSIGN_OR_RETURN(v1::TlsFiles tls, f->pki_->IssueNode(site.id, crypto::Role::kInstitution));
    *site.config.mutable_tls() = tls;
    proto::ApplyClientDefaults(&site.config);
    ASSIGN_OR_RETURN(site.certificate, common::ReadFile(tls.cert()));
    ASSIGN_OR_RETURN(std::string key, common::ReadFile(tls.key()));
    ASSIGN_OR_RETURN(crypto::Signer signer,
                     crypto::Signer::Create(crypto::SecretBytes(std::move(key))));
    site.signer = std::make_unique<crypto::Signer>(std::move(signer));
    RETURN_IF_ERROR(f->StartAgent(site));
    site.certificates.Add(site.certificate);
    f->ids_.push_back(site.id);
    f->sites_.emplace(site.id, std::move(site));
  }
  return f;
}

absl::Status AttackFederation::StartAgent(Site& site) {
  site.ledger.reset();
  site.agent.reset();  // a restart: the old agent (and its store) is gone before the new one
  ASSIGN_OR_RETURN(std::unique_ptr<client::SiteStore> store,
                   client::OpenSiteStore(site.config.data_dir()));
  if (site.with_ledger) {
    store = std::make_unique<CountingSiteStore>(std::move(store), &site.store_writes,
                                                &site.session_writes);
  }
  site.agent =
      std::make_unique<client::SiteAgent>(site.config, site.id, site.certificate,
                                          pki_->ca().cert_pem, site.signer.get(), std::move(store));
  if (site.with_ledger) {
    client::EgressLedgerOptions options;
    options.coordinator_address = site.config.coordinator_address();
    options.coordinator_name = "coordinator";
    options.checkpoint_every = site.config.ledger().checkpoint_every();
    options.certificate_pem = site.certificate;
    ASSIGN_OR_RETURN(site.ledger,
                     client::EgressLedger::Open(&site.agent->store(), site.signer.get(), options));
    site.agent->SetLedger(site.ledger.get());
  }
  return site.agent->Preload();
}

absl::Status AttackFederation::AttachLedger(const std::string& id) {
  Site& site = sites_.at(id);
  site.with_ledger = true;
  return StartAgent(site);
}

int AttackFederation::store_writes(const std::string& id) const { return site(id).store_writes; }

const std::vector<AttackFederation::SessionWrite>& AttackFederation::session_writes(
    const std::string& id) const {
  return site(id).session_writes;
}

const std::vector<std::string>& AttackFederation::sent(const std::string& id) const {
  return site(id).sent;
}

client::SiteStore& AttackFederation::store(const std::string& id) {
  return sites_.at(id).agent->store();
}

const v1::WorkItem& AttackFederation::last_item(const std::string& id) const {
  return site(id).last_item;
}

const AttackFederation::Site& AttackFederation::site(const std::string& id) const {
  return sites_.at(id);
}

v1::PushResultRequest AttackFederation::Ask(const std::string& id, const v1::WorkItem& item,
                                            const client::FetchCertificatesCall& fetch) {
  Site& site = sites_.at(id);
  site.last_item = item;
  v1::PushResultRequest answer;
  if (!item.secagg().has_advertisements()) {
    answer = site.agent->Answer(item, absl::Now());
  } else {
    v1::WorkItem listed = item;
    const client::FetchCertificatesCall none =
        [](const std::vector<std::string>&) -> absl::StatusOr<std::vector<std::string>> {
      return std::vector<std::string>();
    };
    (void)site.certificates.Complete(&listed, fetch ? fetch : none);
    answer = site.agent->Answer(listed, absl::Now());
  }
  if (site.ledger != nullptr) {
    // As the daemon sends it: recorded first (client/internal/recorded_caller.h).
    absl::StatusOr<std::string> bytes = client::SentBytes(answer);
    EXPECT_OK(bytes.status());
    EXPECT_OK(site.ledger->Record(client::PushResultMessage(item, answer), bytes.value_or(""),
                                  absl::Now()));
    site.sent.push_back(crypto::Sha256(bytes.value_or("")));
  }
  return answer;
}

absl::Status AttackFederation::Restart(const std::string& id) { return StartAgent(sites_.at(id)); }

client::ApprovalQueue* AttackFederation::approvals(const std::string& id) {
  return sites_.at(id).agent->approvals();
}

absl::Status AttackFederation::SetPolicy(const std::string& id, const v1::LocalPolicy& policy) {
  Site& site = sites_.at(id);
  v1::ClientConfig config = site.config;
  *config.mutable_policy() = policy;
  proto::ApplyClientDefaults(&config);
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateClientConfig(config)));
  site.config = std::move(config);
  return StartAgent(site);
}

std::vector<double> AttackFederation::TrueVector(const std::string& id, const v1::WorkItem& item,
                                                 v1::Decline* decline) const {
  client::WorkProcessor processor(id, site(id).config);
  client::WorkOutcome outcome = processor.Process(item);
  if (decline != nullptr) *decline = outcome.decline;
  return outcome.contribution.value_or(std::vector<double>());
}

const crypto::Signer& AttackFederation::signer(const std::string& id) const {
  return *site(id).signer;
}
const std::string& AttackFederation::certificate(const std::string& id) const {
  return site(id).certificate;
}
const v1::ClientConfig& AttackFederation::config(const std::string& id) const {
  return site(id).config;
}
size_t AttackFederation::train_rows(const std::string& id) const { return site(id).train_rows; }

absl::StatusOr<v1::TaskSpec> AttackFederation::ExampleSpec() {
  v1::TaskSpec spec;
  const std::string path = SourcePath("deploy/examples/breast_cancer_logistic.textproto");
  common::TextLocations where;
  RETURN_IF_ERROR(common::LoadProtoFile(path, &spec, &where));
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec), path, &where));
  spec.set_min_clients(2);
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

absl::StatusOr<v1::Standardization> AttackFederation::PooledStandardization(
    const v1::TaskSpec& spec) const {
  const std::vector<std::string> features(spec.dataset().features().begin(),
                                          spec.dataset().features().end());
  const bool with_label = proto::StatisticsIncludeLabel(spec.model());
  const size_t d = features.size() + (with_label ? 1 : 0);
  std::vector<double> sum(d, 0.0), sum_sq(d, 0.0);
  uint64_t rows = 0;
  for (const std::string& id : ids_) {
    const std::string& path = site(id).config.datasets(0).train_csv();
    ASSIGN_OR_RETURN(client::CsvTable table, client::LoadCsv(path));
    ASSIGN_OR_RETURN(client::Dataset data,
                     client::SelectColumns(table, features, spec.dataset().label(), path));
    client::LocalStatistics stats = client::ComputeStatistics(data);
    rows += stats.num_rows;
    for (size_t j = 0; j < features.size(); ++j) {
      sum[j] += stats.sums[j];
      sum_sq[j] += stats.sums_of_squares[j];
    }
    if (with_label) {
      for (double y : data.y) {
        sum[d - 1] += y;
        sum_sq[d - 1] += y * y;
      }
    }
  }
  v1::Standardization s;
  for (size_t j = 0; j < d; ++j) {
    const double mean = sum[j] / static_cast<double>(rows);
    const double var = std::max(0.0, sum_sq[j] / static_cast<double>(rows) - mean * mean);
    const double sd = var > 0 ? std::sqrt(var) : 1.0;
    if (j < features.size()) {
      s.add_mean(mean);
      s.add_stddev(sd);
    } else {
      s.set_label_mean(mean);
      s.set_label_stddev(sd);
    }
  }
  s.set_num_train_rows(rows);
  return s;
}

}  // namespace tessera::attack
