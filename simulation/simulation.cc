#include "simulation/simulation.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <numbers>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/csv.h"
#include "client/idx.h"
#include "client/peer_certificates.h"
#include "client/site_agent.h"
#include "client/site_store.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/splitmix64.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "coordinator/store.h"
#include "crypto/pki.h"
#include "crypto/signature.h"
#include "proto/preparation.h"
#include "proto/validation.h"
#include "proto/validation_split.h"
#include "simulation/internal/data_files.h"

namespace tessera::simulation {

using coordinator::Coordinator;
using coordinator::CoordinatorOptions;
using coordinator::NewMemoryStore;
using internal::CheckColumns;
using internal::ColumnIndex;
using internal::IdxData;
using internal::LoadIdxTable;
using internal::ReadTestRows;
using internal::ToCsv;

namespace {

struct SimulatedSite {
  std::string id;
  std::unique_ptr<crypto::Signer> signer;
  std::unique_ptr<client::SiteAgent> agent;
  client::PeerCertificates certificates;  // as a daemon keeps them
  std::thread thread;
};

// The researcher's rows: one table, its test rows and its training rows (both sorted).
struct SimulationData {
  client::CsvTable table;
  std::string source;  // the CSV file or IDX directory, for errors
  std::vector<size_t> test_rows;
  std::vector<size_t> train_rows;
};

absl::StatusOr<SimulationData> LoadData(const SimulationOptions& options,
                                        const v1::TaskSpec& spec) {
  SimulationData data;
  data.source = options.idx_dir.empty() ? options.data_csv : options.idx_dir;
  if (!options.idx_dir.empty()) {
    if (!options.test_rows_file.empty()) {
      return absl::InvalidArgumentError("IDX data come with their own test split");
    }
    ASSIGN_OR_RETURN(IdxData idx, LoadIdxTable(options.idx_dir));
    data.table = std::move(idx.table);
    // The official split.
    for (size_t r = idx.train_rows; r < data.table.num_rows; ++r) data.test_rows.push_back(r);
  } else {
    // Columns the task does not use may hold text, empty or NA cells (as at a site).
    ASSIGN_OR_RETURN(data.table,
                     client::LoadCsv(options.data_csv, client::CellPolicy::kMarkNonNumeric));
  }
  RETURN_IF_ERROR(common::FieldErrorsToStatus(CheckColumns(spec, data.table, data.source)));
  if (!options.idx_dir.empty()) {
    // Set above.
  } else if (!options.test_rows_file.empty()) {
    ASSIGN_OR_RETURN(data.test_rows, ReadTestRows(options.test_rows_file, data.table.num_rows));
  } else {
    data.test_rows = SeededTestRows(data.table.num_rows, spec.seed());
  }
  const std::set<size_t> test(data.test_rows.begin(), data.test_rows.end());
  for (size_t r = 0; r < data.table.num_rows; ++r) {
    if (test.count(r) == 0) data.train_rows.push_back(r);
  }
  return data;
}

// The values of column `index` of every row (zeros for index -1).
std::vector<double> ColumnValues(const client::CsvTable& table, int index) {
  std::vector<double> values(table.num_rows, 0.0);
  if (index < 0) return values;
  const size_t width = table.header.size();
  for (size_t r = 0; r < table.num_rows; ++r) {
    values[r] = table.values[r * width + static_cast<size_t>(index)];
  }
  return values;
}

// The training rows of each site, checked against the rules no simulated site can change
// (a task needing more sites than there are would wait for them forever).
absl::StatusOr<std::vector<std::vector<size_t>>> SiteRows(const SimulationData& data,
                                                          const SimulationOptions& options,
                                                          const v1::TaskSpec& spec) {
  const std::vector<double> labels =
      ColumnValues(data.table, ColumnIndex(data.table, spec.dataset().label()));
  std::vector<double> column;
  if (options.partition.kind == Partition::Kind::kByColumn ||
      options.partition.kind == Partition::Kind::kByQuantile) {
    const int index = ColumnIndex(data.table, options.partition.column);
    if (index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--partition: column '", options.partition.column, "' is not in ", data.source));
    }
    if (!data.table.non_numeric_cells.empty() &&
        data.table.non_numeric_cells[static_cast<size_t>(index)] > 0) {
      return absl::InvalidArgumentError(absl::StrCat("--partition: column '",
                                                     options.partition.column, "' of ", data.source,
                                                     " has cells that are not numbers"));
    }
    column = ColumnValues(data.table, index);
  } else {
    column.assign(data.table.num_rows, 0.0);
  }
  ASSIGN_OR_RETURN(std::vector<std::vector<size_t>> site_rows,
                   PartitionRows(data.train_rows, labels, column, options.partition,
                                 options.num_sites, spec.seed()));
  const auto num_sites = static_cast<uint32_t>(site_rows.size());
  const std::pair<const char*, uint32_t> needs[] = {
      {"min_clients", spec.min_clients()},
      {"secure_aggregation.threshold", spec.secure_aggregation().threshold()},
      {"analytics.min_cohort", spec.analytics().min_cohort()}};
  for (const auto& [field, need] : needs) {
    if (need > num_sites) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": the task needs ", need, " sites, the simulation has ", num_sites));
    }
  }
  return site_rows;
}

// Site `k` (site-NN): its files under work_dir (its training rows, its round-robin share of
// the test rows), its certificate from the throw-away CA and its agent with a store in
// memory (a simulation lives and dies with its process). Its row counts go to `result`.
absl::StatusOr<std::unique_ptr<SimulatedSite>> MakeSite(
    uint32_t k, uint32_t num_sites, const v1::TaskSpec& spec, const SimulationData& data,
    const std::vector<size_t>& rows, const crypto::CertificateAuthority& ca,
    const std::string& work_dir, SimulationResult* result) {
  auto site = std::make_unique<SimulatedSite>();
  site->id = absl::StrFormat("site-%02d", k + 1);
  std::vector<size_t> test_share;
  for (size_t i = k; i < data.test_rows.size(); i += num_sites) {
    test_share.push_back(data.test_rows[i]);
  }
  const std::string dir = absl::StrCat(work_dir, "/", site->id);
  RETURN_IF_ERROR(common::MakeDirectories(dir, 0700));
  v1::ClientConfig config;
  v1::LocalDataset* dataset = config.add_datasets();
  dataset->set_id(spec.dataset().id());
  dataset->set_train_csv(dir + "/train.csv");
  RETURN_IF_ERROR(common::WriteFileAtomic(dataset->train_csv(), ToCsv(data.table, rows)));
  if (!test_share.empty()) {
    dataset->set_test_csv(dir + "/test.csv");
    RETURN_IF_ERROR(common::WriteFileAtomic(dataset->test_csv(), ToCsv(data.table, test_share)));
  }
  config.mutable_policy()->set_min_cohort(std::min<uint32_t>(2, num_sites));
  // The researcher's own file: per-site sums of a fixed-effects regression stay with them.
  config.mutable_policy()->set_allow_site_fixed_effects(true);
  proto::ApplyClientDefaults(&config);
  // With a validation split the site trains on the rows it leaves.
  const size_t validation =
      proto::HasValidationSplit(spec)
          ? proto::ValidationRowCount(rows.size(), spec.training().validation_fraction())
          : 0;
  result->site_train_rows.push_back(rows.size() - validation);
  result->site_validation_rows.push_back(validation);
  result->site_test_rows.push_back(test_share.size());

  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
  ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key, site->id));
  crypto::SignOptions sign;
  sign.role = crypto::Role::kInstitution;
  sign.validity_days = 2;
  ASSIGN_OR_RETURN(std::string cert, crypto::SignCsr(ca, csr, sign, absl::Now()));
  ASSIGN_OR_RETURN(crypto::Signer signer, crypto::Signer::Create(key));
  site->signer = std::make_unique<crypto::Signer>(std::move(signer));
  site->agent = std::make_unique<client::SiteAgent>(
      config, site->id, cert, ca.cert_pem, site->signer.get(), client::NewMemorySiteStore());
  RETURN_IF_ERROR(site->agent->Preload());
  site->certificates.Add(cert);
  return site;
}

// The in-process coordinator's options: fast polling, sites live for the whole run, and
// with an export its own identity (role coordinator) from the throw-away CA, only to sign
// the export's provenance record (the CA's certificate then goes to `result`).
absl::StatusOr<CoordinatorOptions> SimulationCoordinatorOptions(
    const crypto::CertificateAuthority& ca, const SimulationOptions& options,
    SimulationResult* result) {
  CoordinatorOptions coordinator_options;
  coordinator_options.ca_cert_pem = ca.cert_pem;
  coordinator_options.client_liveness = absl::Hours(24);
  coordinator_options.runner.cohort_poll_interval = absl::Milliseconds(2);
  coordinator_options.runner.retry_pause = absl::Milliseconds(10);
  if (options.export_format.empty()) return coordinator_options;
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
  ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key, "simulation-coordinator"));
  crypto::SignOptions sign;
  sign.role = crypto::Role::kCoordinator;
  sign.validity_days = 2;
  ASSIGN_OR_RETURN(coordinator_options.certificate_pem,
                   crypto::SignCsr(ca, csr, sign, absl::Now()));
  ASSIGN_OR_RETURN(crypto::Signer signer, crypto::Signer::Create(key));
  coordinator_options.signer = std::make_shared<const crypto::Signer>(std::move(signer));
  result->ca_cert_pem = ca.cert_pem;
  return coordinator_options;
}

// A site's loop, as its daemon's: pull work, answer it, until `stop`.
void RunSite(SimulatedSite* site, Coordinator* coordinator, const std::atomic<bool>* stop) {
  while (!stop->load()) {
    auto item = coordinator->PullWork(site->id, absl::Now() + absl::Milliseconds(50));
    if (!item.ok() || *item == nullptr) continue;
    // A refused answer is the coordinator's verdict on this site (it is dropped from the
    // session); the simulation's outcome shows it.
    if (!(*item)->secagg().has_advertisements()) {
      (void)coordinator->PushResult(site->id, site->agent->Answer(**item, absl::Now()));
      continue;
    }
    // An advertisement list names certificates by digest: completed as a daemon does (a
    // refusal leaves entries without certificates, which the site then declines).
    v1::WorkItem listed = **item;
    (void)site->certificates.Complete(
        &listed,
        [&](const std::vector<std::string>& sha256s) -> absl::StatusOr<std::vector<std::string>> {
          ASSIGN_OR_RETURN(
              v1::FetchCertificatesResponse response,
              coordinator->FetchCertificates(site->id, client::FetchRequestFor(listed, sha256s)));
          return client::FetchedCertificates(response);
        });
    (void)coordinator->PushResult(site->id, site->agent->Answer(listed, absl::Now()));
  }
}

// Polls the task until it ends, passing each round to options.on_round once its record is
// final; the final task and rounds go to `result`.
absl::Status WaitForTaskEnd(Coordinator& coordinator, const std::string& task_id,
                            const SimulationOptions& options, SimulationResult* result) {
  size_t reported = 0;
  while (true) {
    ASSIGN_OR_RETURN(v1::GetTaskResponse got, coordinator.GetTask(task_id));
    const v1::TaskState state = got.task().state();
    const bool ended =
        state == v1::TASK_COMPLETED || state == v1::TASK_FAILED || state == v1::TASK_CANCELLED;
    // A round is reported once its record is final: its evaluation travels with the next
    // round's fit (one session per round), so the last committed round waits for the end.
    const auto complete = static_cast<size_t>(std::max(0, got.rounds_size() - (ended ? 0 : 1)));
    for (; reported < complete; ++reported) {
      if (options.on_round) options.on_round(got.rounds(static_cast<int>(reported)));
    }
    if (ended) {
      result->task = got.task();
      result->rounds.assign(got.rounds().begin(), got.rounds().end());
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// The final metrics: with a validation split the selected round's test metrics (none if its
// test failed); otherwise the last evaluated round's metrics (or an analytics answer).
std::map<std::string, double> FinalMetrics(const v1::TaskSpec& spec,
                                           const SimulationResult& result) {
  std::map<std::string, double> metrics;
  if (proto::HasValidationSplit(spec)) {
    for (const v1::Metric& m : result.task.test_metrics()) metrics[m.name()] = m.value();
    return metrics;
  }
  for (auto it = result.rounds.rbegin(); it != result.rounds.rend(); ++it) {
    if (it->round() == 0 || it->metrics().empty()) continue;
    const bool evaluated = !it->eval_participants().empty() || spec.has_analytics();
    if (!evaluated) continue;
    for (const v1::Metric& m : it->metrics()) metrics[m.name()] = m.value();
    break;
  }
  return metrics;
}

// Runs the task on the in-process coordinator with every site's loop on its own thread;
// afterwards the checkpoints and the export the options ask for go to `result`.
absl::Status RunTask(std::vector<std::unique_ptr<SimulatedSite>>& sites,
                     const CoordinatorOptions& coordinator_options,
                     const SimulationOptions& options, SimulationResult* result) {
  std::unique_ptr<coordinator::Store> store = NewMemoryStore();
  coordinator::Store* const checkpoints = store.get();  // owned by the coordinator
  ASSIGN_OR_RETURN(
      std::unique_ptr<Coordinator> coordinator,
      Coordinator::Create(std::move(store), common::Clock::Real(), coordinator_options));
  for (auto& site : sites) {
    v1::HelloRequest hello;
    hello.add_dataset_ids(options.spec.dataset().id());
    RETURN_IF_ERROR(coordinator->Hello(site->id, site->id, hello, 1).status());
  }
  std::atomic<bool> stop{false};
  for (auto& site : sites) {
    site->thread = std::thread(RunSite, site.get(), coordinator.get(), &stop);
  }
  absl::StatusOr<v1::SubmitTaskResponse> submitted =
      coordinator->SubmitTask("simulation", options.spec);
  absl::Status outcome = submitted.status();
  if (submitted.ok()) {
    outcome = WaitForTaskEnd(*coordinator, submitted->task_id(), options, result);
  }
  stop.store(true);
  coordinator->Shutdown();
  for (auto& site : sites) {
    if (site->thread.joinable()) site->thread.join();
  }
  RETURN_IF_ERROR(outcome);
  const std::string& task_id = submitted->task_id();
  if (options.keep_checkpoints) {
    for (int32_t r = 0; r <= result->task.last_committed_round(); ++r) {
      ASSIGN_OR_RETURN(std::vector<float> model,
                       checkpoints->GetCheckpoint(task_id, static_cast<uint32_t>(r)));
      result->checkpoints.push_back(std::move(model));
    }
  }
  if (!options.export_format.empty() && result->task.last_committed_round() >= 1) {
    v1::ExportModelRequest request;
    request.set_task_id(task_id);
    request.set_format(options.export_format);
    ASSIGN_OR_RETURN(v1::ExportModelResponse exported, coordinator->ExportModel(request));
    result->export_file = std::move(*exported.mutable_file());
    result->export_provenance = std::move(*exported.mutable_provenance());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SimulationResult> RunSimulation(const SimulationOptions& options) {
  const absl::Time started = absl::Now();
  v1::TaskSpec spec = options.spec;
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec)));
  proto::ApplyTaskDefaults(&spec);
  ASSIGN_OR_RETURN(SimulationData data, LoadData(options, spec));
  ASSIGN_OR_RETURN(std::vector<std::vector<size_t>> site_rows, SiteRows(data, options, spec));

  RETURN_IF_ERROR(common::MakeDirectories(options.work_dir, 0700));
  ASSIGN_OR_RETURN(crypto::CertificateAuthority ca,
                   crypto::CreateCertificateAuthority("simulation", 2, absl::Now()));
  SimulationResult result;
  std::vector<std::unique_ptr<SimulatedSite>> sites;
  const auto num_sites = static_cast<uint32_t>(site_rows.size());
  for (uint32_t k = 0; k < num_sites; ++k) {
    ASSIGN_OR_RETURN(
        std::unique_ptr<SimulatedSite> site,
        MakeSite(k, num_sites, spec, data, site_rows[k], ca, options.work_dir, &result));
    sites.push_back(std::move(site));
  }
  ASSIGN_OR_RETURN(CoordinatorOptions coordinator_options,
                   SimulationCoordinatorOptions(ca, options, &result));
  RETURN_IF_ERROR(RunTask(sites, coordinator_options, options, &result));
  result.final_metrics = FinalMetrics(spec, result);
  result.wall_seconds = absl::ToDoubleSeconds(absl::Now() - started);
  return result;
}

}  // namespace tessera::simulation
