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

void Shuffle(common::SplitMix64& rng, std::vector<size_t>& v) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.Below(i)]);
}

double Normal(common::SplitMix64& rng) {
  // Box-Muller; 1 - u keeps the logarithm finite.
  const double u1 = 1.0 - rng.NextUnit();
  const double u2 = rng.NextUnit();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// Gamma(shape, 1): Marsaglia & Tsang 2000; shape < 1 through Gamma(shape + 1) * U^(1/shape).
double Gamma(common::SplitMix64& rng, double shape) {
  if (shape < 1.0) {
    const double u = 1.0 - rng.NextUnit();
    return Gamma(rng, shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = Normal(rng);
    double v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    const double u = 1.0 - rng.NextUnit();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

struct SimulatedSite {
  std::string id;
  std::unique_ptr<crypto::Signer> signer;
  std::unique_ptr<client::SiteAgent> agent;
  client::PeerCertificates certificates;  // as a daemon keeps them
  std::thread thread;
};

}  // namespace

absl::StatusOr<Partition> ParsePartition(const std::string& text) {
  Partition p;
  if (text == "iid") return p;
  if (text == "round-robin") {
    p.kind = Partition::Kind::kRoundRobin;
    return p;
  }
  if (text.rfind("dirichlet:", 0) == 0) {
    p.kind = Partition::Kind::kDirichlet;
    if (!absl::SimpleAtod(text.substr(10), &p.alpha) || !std::isfinite(p.alpha) || p.alpha <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--partition ", text, ": dirichlet needs a positive ALPHA"));
    }
    return p;
  }
  if (text.rfind("by-column:", 0) == 0 && text.size() > 10) {
    p.kind = Partition::Kind::kByColumn;
    p.column = text.substr(10);
    return p;
  }
  if (text.rfind("by-quantile:", 0) == 0) {
    const std::string rest = text.substr(12);
    const size_t colon = rest.rfind(':');
    uint32_t bins = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(rest.substr(colon + 1), &bins) || bins < 2 || bins > 1000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--partition '", text, "': by-quantile needs NAME:K with K from 2 to 1000 bins"));
    }
    p.kind = Partition::Kind::kByQuantile;
    p.column = rest.substr(0, colon);
    p.bins = bins;
    return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--partition '", text,
                   "': expected iid, round-robin, dirichlet:ALPHA, by-column:NAME or "
                   "by-quantile:NAME:K"));
}

absl::StatusOr<std::vector<std::vector<size_t>>> PartitionRows(std::span<const size_t> train_rows,
                                                               std::span<const double> labels,
                                                               std::span<const double> column,
                                                               const Partition& partition,
                                                               uint32_t num_sites, uint64_t seed) {
  common::SplitMix64 rng(seed ^ 0x7061727469746e6fULL);
  std::vector<size_t> rows(train_rows.begin(), train_rows.end());
  switch (partition.kind) {
    case Partition::Kind::kIid:
    case Partition::Kind::kRoundRobin: {
      if (num_sites == 0 || num_sites > rows.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot deal ", rows.size(), " training rows to ", num_sites, " sites"));
      }
      if (partition.kind == Partition::Kind::kIid) Shuffle(rng, rows);
      std::vector<std::vector<size_t>> sites(num_sites);
      for (size_t i = 0; i < rows.size(); ++i) sites[i % num_sites].push_back(rows[i]);
      return sites;
    }
    case Partition::Kind::kByColumn: {
      std::map<double, std::vector<size_t>> groups;
      for (size_t r : rows) groups[column[r]].push_back(r);
      if (groups.size() > partition.max_sites) {
        return absl::InvalidArgumentError(absl::StrCat(
            "column '", partition.column, "' has ", groups.size(),
            " distinct values on the training rows, more than the ", partition.max_sites,
            " sites --max-sites allows (a continuous column would make as many tiny sites): "
            "partition by-quantile:",
            partition.column, ":K to bin it, or raise --max-sites"));
      }
      if (num_sites != 0 && num_sites != groups.size()) {
        return absl::InvalidArgumentError(absl::StrCat("column '", partition.column, "' has ",
                                                       groups.size(), " values, not ", num_sites));
      }
      std::vector<std::vector<size_t>> sites;
      sites.reserve(groups.size());
      for (auto& [value, members] : groups) sites.push_back(std::move(members));
      return sites;
    }
    case Partition::Kind::kByQuantile: {
      if (num_sites != 0 && num_sites != partition.bins) {
        return absl::InvalidArgumentError(absl::StrCat("by-quantile makes ", partition.bins,
                                                       " sites, not ", num_sites, " (--clients)"));
      }
      if (rows.size() < partition.bins) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot cut ", rows.size(), " training rows into ", partition.bins, " quantile bins"));
      }
      std::vector<double> sorted;
      sorted.reserve(rows.size());
      for (size_t r : rows) sorted.push_back(column[r]);
      std::sort(sorted.begin(), sorted.end());
      std::vector<double> cuts;
      for (uint32_t j = 1; j < partition.bins; ++j) {
        cuts.push_back(sorted[j * sorted.size() / partition.bins]);
      }
      std::vector<std::vector<size_t>> sites(partition.bins);
      for (size_t r : rows) {
        const auto bin = std::upper_bound(cuts.begin(), cuts.end(), column[r]) - cuts.begin();
        sites[static_cast<size_t>(bin)].push_back(r);
      }
      size_t empty = 0;
      for (const auto& site : sites) empty += site.empty() ? 1 : 0;
      if (empty > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "column '", partition.column, "' cut at ", partition.bins, " quantiles leaves ", empty,
            " of the bins empty (too many equal values): ask for fewer bins"));
      }
      return sites;
    }
    case Partition::Kind::kDirichlet: {
      if (num_sites == 0 || num_sites > rows.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot deal ", rows.size(), " training rows to ", num_sites, " sites"));
      }
      std::map<int64_t, std::vector<size_t>> by_class;
      for (size_t r : rows) {
        const double y = labels[r];
        if (y != std::floor(y) || y < 0 || y > 10000) {
          return absl::InvalidArgumentError(
              "a dirichlet partition needs class labels 0..K-1 (a classification task)");
        }
        by_class[static_cast<int64_t>(y)].push_back(r);
      }
      // Label skew as in Hsu et al. 2019: for each class, shares of its rows drawn from
      // Dirichlet(alpha); draws that leave a site (nearly) empty are redrawn.
      const size_t min_rows =
          std::max<size_t>(1, std::min<size_t>(10, rows.size() / (4 * num_sites)));
      for (int attempt = 0; attempt < 1000; ++attempt) {
        std::vector<std::vector<size_t>> sites(num_sites);
        for (auto& [label, members] : by_class) {
          std::vector<size_t> shuffled = members;
          Shuffle(rng, shuffled);
          std::vector<double> share(num_sites);
          double total = 0;
          for (double& s : share) total += (s = Gamma(rng, partition.alpha));
          size_t start = 0;
          double cumulative = 0;
          for (uint32_t k = 0; k < num_sites; ++k) {
            cumulative += share[k] / total;
            const size_t end =
                k + 1 == num_sites
                    ? shuffled.size()
                    : std::min(shuffled.size(),
                               static_cast<size_t>(std::llround(
                                   cumulative * static_cast<double>(shuffled.size()))));
            for (size_t i = start; i < end; ++i) sites[k].push_back(shuffled[i]);
            start = std::max(start, end);
          }
        }
        bool ok = true;
        for (const auto& s : sites) ok = ok && s.size() >= min_rows;
        if (ok) return sites;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("dirichlet:", partition.alpha, " left a site with fewer than ", min_rows,
                       " rows in 1000 draws; use fewer sites or a larger alpha"));
    }
  }
  return absl::InternalError("unknown partition kind");
}

absl::StatusOr<SimulationResult> RunSimulation(const SimulationOptions& options) {
  const absl::Time started = absl::Now();
  v1::TaskSpec spec = options.spec;
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec)));
  proto::ApplyTaskDefaults(&spec);

  client::CsvTable table;
  std::vector<size_t> test_rows;
  const std::string source = options.idx_dir.empty() ? options.data_csv : options.idx_dir;
  if (!options.idx_dir.empty()) {
    if (!options.test_rows_file.empty()) {
      return absl::InvalidArgumentError("IDX data come with their own test split");
    }
    ASSIGN_OR_RETURN(IdxData idx, LoadIdxTable(options.idx_dir));
    table = std::move(idx.table);
    for (size_t r = idx.train_rows; r < table.num_rows; ++r) test_rows.push_back(r);
  } else {
    // Columns the task does not use may hold text, empty or NA cells (as at a site).
    ASSIGN_OR_RETURN(table, client::LoadCsv(options.data_csv, client::CellPolicy::kMarkNonNumeric));
  }
  RETURN_IF_ERROR(common::FieldErrorsToStatus(CheckColumns(spec, table, source)));
  const size_t width = table.header.size();

  // Test rows and training rows.
  if (!options.idx_dir.empty()) {
    // The official split, set above.
  } else if (!options.test_rows_file.empty()) {
    ASSIGN_OR_RETURN(test_rows, ReadTestRows(options.test_rows_file, table.num_rows));
  } else {
    std::vector<size_t> all(table.num_rows);
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    common::SplitMix64 rng(spec.seed() ^ 0x7465737472777300ULL);
    Shuffle(rng, all);
    test_rows.assign(all.begin(), all.begin() + static_cast<long>(table.num_rows / 5));
    std::sort(test_rows.begin(), test_rows.end());
  }
  std::vector<size_t> train_rows;
  {
    std::set<size_t> test(test_rows.begin(), test_rows.end());
    for (size_t r = 0; r < table.num_rows; ++r) {
      if (test.count(r) == 0) train_rows.push_back(r);
    }
  }
  std::vector<double> labels(table.num_rows, 0.0);
  const int label_index = ColumnIndex(table, spec.dataset().label());
  if (label_index >= 0) {
    for (size_t r = 0; r < table.num_rows; ++r) labels[r] = table.values[r * width + label_index];
  }
  std::vector<double> column(table.num_rows, 0.0);
  if (options.partition.kind == Partition::Kind::kByColumn ||
      options.partition.kind == Partition::Kind::kByQuantile) {
    const int index = ColumnIndex(table, options.partition.column);
    if (index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--partition: column '", options.partition.column, "' is not in ", source));
    }
    if (!table.non_numeric_cells.empty() &&
        table.non_numeric_cells[static_cast<size_t>(index)] > 0) {
      return absl::InvalidArgumentError(absl::StrCat("--partition: column '",
                                                     options.partition.column, "' of ", source,
                                                     " has cells that are not numbers"));
    }
    for (size_t r = 0; r < table.num_rows; ++r) column[r] = table.values[r * width + index];
  }
  ASSIGN_OR_RETURN(
      std::vector<std::vector<size_t>> site_rows,
      PartitionRows(train_rows, labels, column, options.partition, options.num_sites, spec.seed()));
  const uint32_t num_sites = static_cast<uint32_t>(site_rows.size());
  // Rules no simulated site can change: the task would wait for sites forever.
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

  // Files and identities of the sites.
  RETURN_IF_ERROR(common::MakeDirectories(options.work_dir, 0700));
  ASSIGN_OR_RETURN(crypto::CertificateAuthority ca,
                   crypto::CreateCertificateAuthority("simulation", 2, absl::Now()));
  SimulationResult result;
  std::vector<std::unique_ptr<SimulatedSite>> sites;
  for (uint32_t k = 0; k < num_sites; ++k) {
    auto site = std::make_unique<SimulatedSite>();
    site->id = absl::StrFormat("site-%02d", k + 1);
    std::vector<size_t> test_share;
    for (size_t i = k; i < test_rows.size(); i += num_sites) test_share.push_back(test_rows[i]);
    const std::string dir = absl::StrCat(options.work_dir, "/", site->id);
    RETURN_IF_ERROR(common::MakeDirectories(dir, 0700));
    v1::ClientConfig config;
    v1::LocalDataset* data = config.add_datasets();
    data->set_id(spec.dataset().id());
    data->set_train_csv(dir + "/train.csv");
    RETURN_IF_ERROR(common::WriteFileAtomic(data->train_csv(), ToCsv(table, site_rows[k])));
    if (!test_share.empty()) {
      data->set_test_csv(dir + "/test.csv");
      RETURN_IF_ERROR(common::WriteFileAtomic(data->test_csv(), ToCsv(table, test_share)));
    }
    config.mutable_policy()->set_min_cohort(std::min<uint32_t>(2, num_sites));
    // The researcher's own file: per-site sums of a fixed-effects regression stay with them.
    config.mutable_policy()->set_allow_site_fixed_effects(true);
    proto::ApplyClientDefaults(&config);
    // With a validation split the site trains on the rows it leaves.
    const size_t validation =
        proto::HasValidationSplit(spec)
            ? proto::ValidationRowCount(site_rows[k].size(), spec.training().validation_fraction())
            : 0;
    result.site_train_rows.push_back(site_rows[k].size() - validation);
    result.site_validation_rows.push_back(validation);
    result.site_test_rows.push_back(test_share.size());

    ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
    ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key, site->id));
    crypto::SignOptions sign;
    sign.role = crypto::Role::kInstitution;
    sign.validity_days = 2;
    ASSIGN_OR_RETURN(std::string cert, crypto::SignCsr(ca, csr, sign, absl::Now()));
    ASSIGN_OR_RETURN(crypto::Signer signer, crypto::Signer::Create(key));
    site->signer = std::make_unique<crypto::Signer>(std::move(signer));
    // Each site keeps its store in memory: a simulation lives and dies with its process.
    site->agent = std::make_unique<client::SiteAgent>(
        config, site->id, cert, ca.cert_pem, site->signer.get(), client::NewMemorySiteStore());
    RETURN_IF_ERROR(site->agent->Preload());
    site->certificates.Add(cert);
    sites.push_back(std::move(site));
  }

  // The coordinator, in process, and the sites' loops.
  CoordinatorOptions coordinator_options;
  coordinator_options.ca_cert_pem = ca.cert_pem;
  coordinator_options.client_liveness = absl::Hours(24);
  coordinator_options.runner.cohort_poll_interval = absl::Milliseconds(2);
  coordinator_options.runner.retry_pause = absl::Milliseconds(10);
  if (!options.export_format.empty()) {
    // The coordinator's own identity, only to sign the export's provenance record.
    ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
    ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key, "simulation-coordinator"));
    crypto::SignOptions sign;
    sign.role = crypto::Role::kCoordinator;
    sign.validity_days = 2;
    ASSIGN_OR_RETURN(coordinator_options.certificate_pem,
                     crypto::SignCsr(ca, csr, sign, absl::Now()));
    ASSIGN_OR_RETURN(crypto::Signer signer, crypto::Signer::Create(key));
    coordinator_options.signer = std::make_shared<const crypto::Signer>(std::move(signer));
    result.ca_cert_pem = ca.cert_pem;
  }
  std::unique_ptr<coordinator::Store> store = NewMemoryStore();
  coordinator::Store* const checkpoints = store.get();  // owned by the coordinator
  ASSIGN_OR_RETURN(
      std::unique_ptr<Coordinator> coordinator,
      Coordinator::Create(std::move(store), common::Clock::Real(), coordinator_options));
  for (auto& site : sites) {
    v1::HelloRequest hello;
    hello.add_dataset_ids(spec.dataset().id());
    RETURN_IF_ERROR(coordinator->Hello(site->id, site->id, hello, 1).status());
  }
  std::atomic<bool> stop{false};
  for (auto& site : sites) {
    SimulatedSite* s = site.get();
    Coordinator* c = coordinator.get();
    s->thread = std::thread([s, c, &stop] {
      while (!stop.load()) {
        auto item = c->PullWork(s->id, absl::Now() + absl::Milliseconds(50));
        if (!item.ok() || *item == nullptr) continue;
        // A refused answer is the coordinator's verdict on this site (it is dropped from
        // the session); the simulation's outcome shows it.
        if (!(*item)->secagg().has_advertisements()) {
          (void)c->PushResult(s->id, s->agent->Answer(**item, absl::Now()));
          continue;
        }
        // An advertisement list names certificates by digest: completed as a daemon does
        // (a refusal leaves entries without certificates, which the site then declines).
        v1::WorkItem listed = **item;
        (void)s->certificates.Complete(
            &listed,
            [&](const std::vector<std::string>& sha256s)
                -> absl::StatusOr<std::vector<std::string>> {
              ASSIGN_OR_RETURN(
                  v1::FetchCertificatesResponse response,
                  c->FetchCertificates(s->id, client::FetchRequestFor(listed, sha256s)));
              return client::FetchedCertificates(response);
            });
        (void)c->PushResult(s->id, s->agent->Answer(listed, absl::Now()));
      }
    });
  }
  auto stop_sites = [&] {
    stop.store(true);
    coordinator->Shutdown();
    for (auto& site : sites) {
      if (site->thread.joinable()) site->thread.join();
    }
  };

  auto submitted = coordinator->SubmitTask("simulation", options.spec);
  if (!submitted.ok()) {
    stop_sites();
    return submitted.status();
  }
  const std::string task_id = submitted->task_id();
  size_t reported = 0;
  absl::Status outcome;
  while (true) {
    auto got = coordinator->GetTask(task_id);
    if (!got.ok()) {
      outcome = got.status();
      break;
    }
    const v1::TaskState state = got->task().state();
    const bool ended =
        state == v1::TASK_COMPLETED || state == v1::TASK_FAILED || state == v1::TASK_CANCELLED;
    // A round is reported once its record is final: its evaluation travels with the next
    // round's fit (one session per round), so the last committed round waits for the end.
    const auto complete = static_cast<size_t>(std::max(0, got->rounds_size() - (ended ? 0 : 1)));
    for (; reported < complete; ++reported) {
      if (options.on_round) options.on_round(got->rounds(static_cast<int>(reported)));
    }
    if (ended) {
      result.task = got->task();
      result.rounds.assign(got->rounds().begin(), got->rounds().end());
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  stop_sites();
  RETURN_IF_ERROR(outcome);
  if (options.keep_checkpoints) {
    for (int32_t r = 0; r <= result.task.last_committed_round(); ++r) {
      ASSIGN_OR_RETURN(std::vector<float> model,
                       checkpoints->GetCheckpoint(task_id, static_cast<uint32_t>(r)));
      result.checkpoints.push_back(std::move(model));
    }
  }
  if (!options.export_format.empty() && result.task.last_committed_round() >= 1) {
    v1::ExportModelRequest request;
    request.set_task_id(task_id);
    request.set_format(options.export_format);
    ASSIGN_OR_RETURN(v1::ExportModelResponse exported, coordinator->ExportModel(request));
    result.export_file = std::move(*exported.mutable_file());
    result.export_provenance = std::move(*exported.mutable_provenance());
  }
  // With a validation split: the selected round's test metrics (none if its test failed).
  if (proto::HasValidationSplit(spec)) {
    for (const v1::Metric& m : result.task.test_metrics())
      result.final_metrics[m.name()] = m.value();
  }
  for (auto it = result.rounds.rbegin(); it != result.rounds.rend(); ++it) {
    if (proto::HasValidationSplit(spec)) break;
    if (it->round() == 0 || it->metrics().empty()) continue;
    bool evaluated = !it->eval_participants().empty() || spec.has_analytics();
    if (!evaluated) continue;
    for (const v1::Metric& m : it->metrics()) result.final_metrics[m.name()] = m.value();
    break;
  }
  result.wall_seconds = absl::ToDoubleSeconds(absl::Now() - started);
  return result;
}

}  // namespace tessera::simulation
