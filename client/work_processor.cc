#include "client/work_processor.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/model.h"
#include "client/trainer.h"
#include "common/log.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "proto/contribution_layout.h"
#include "proto/model_layout.h"

namespace tessera::client {
namespace {

WorkOutcome Declined(v1::Decline::Reason reason, std::string detail) {
  WorkOutcome out;
  out.decline.set_reason(reason);
  out.decline.set_detail(std::move(detail));
  return out;
}

// Local data problems are explained in the site's own log only: the coordinator learns
// that the site cannot take part, not the file's paths, headers or cells.
WorkOutcome DataDeclined(const v1::WorkItem& item, const absl::Status& status) {
  common::LogWarning("local_data_error")
      .With("task", item.task_id())
      .With("round", item.round())
      .With("error", std::string(status.message()));
  return Declined(v1::Decline::DATA_ERROR,
                  "local data cannot be used for this task (details in the site's log)");
}

WorkOutcome Contributed(std::vector<double> values) {
  WorkOutcome out;
  out.contribution = std::move(values);
  return out;
}

const v1::LocalDataset* FindDataset(const v1::ClientConfig& config, const std::string& id) {
  for (const v1::LocalDataset& d : config.datasets()) {
    if (d.id() == id) return &d;
  }
  return nullptr;
}

// The policy's verdict on a task, or OK.
absl::Status CheckPolicy(const v1::LocalPolicy& policy, const v1::WorkItem& item) {
  const v1::TaskSpec& spec = item.spec();
  if (spec.min_clients() < policy.min_cohort()) {
    return absl::PermissionDeniedError(absl::StrCat("task min_clients ", spec.min_clients(),
                                                    " is below this site's minimum cohort ",
                                                    policy.min_cohort()));
  }
  if (item.cohort_size() < policy.min_cohort()) {
    return absl::PermissionDeniedError(absl::StrCat("cohort of ", item.cohort_size(),
                                                    " sites is below this site's minimum ",
                                                    policy.min_cohort()));
  }
  if (!policy.allowed_task_names().empty() &&
      std::find(policy.allowed_task_names().begin(), policy.allowed_task_names().end(),
                spec.name()) == policy.allowed_task_names().end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("task name '", spec.name(), "' is not in this site's allowed list"));
  }
  if (!policy.allowed_spec_hashes().empty()) {
    std::string hex = crypto::ToHex(item.spec_hash());
    if (std::find(policy.allowed_spec_hashes().begin(), policy.allowed_spec_hashes().end(), hex) ==
        policy.allowed_spec_hashes().end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("task spec ", hex, " is not in this site's allowed list"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

WorkProcessor::WorkProcessor(std::string client_id, v1::ClientConfig config)
    : client_id_(std::move(client_id)), config_(std::move(config)) {}

uint64_t WorkProcessor::LocalSeed(uint64_t task_seed, uint32_t round,
                                  const std::string& client_id) {
  std::string digest =
      crypto::Sha256(absl::StrCat("tessera-local-seed/", task_seed, "/", round, "/", client_id));
  uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed = (seed << 8) | static_cast<uint8_t>(digest[i]);
  return seed;
}

absl::Status WorkProcessor::Preload() {
  for (const v1::LocalDataset& d : config_.datasets()) {
    RETURN_IF_ERROR(LoadTable(d.train_csv()).status());
    if (!d.test_csv().empty()) RETURN_IF_ERROR(LoadTable(d.test_csv()).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const CsvTable>> WorkProcessor::LoadTable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  auto it = tables_.find(path);
  if (it != tables_.end() && it->second.size == st.st_size && it->second.mtime_ns == mtime_ns) {
    return it->second.table;
  }
  ASSIGN_OR_RETURN(CsvTable table, LoadCsv(path));
  auto shared = std::make_shared<const CsvTable>(std::move(table));
  tables_[path] = CachedTable{static_cast<int64_t>(st.st_size), mtime_ns, shared};
  common::LogInfo("dataset_loaded")
      .With("file", path)
      .With("rows", static_cast<uint64_t>(shared->num_rows))
      .With("columns", static_cast<uint64_t>(shared->header.size()));
  return shared;
}

absl::StatusOr<std::shared_ptr<const Dataset>> WorkProcessor::LoadRows(
    const v1::LocalDataset& local, bool test, const v1::DatasetSpec& schema) {
  const std::string& path = test ? local.test_csv() : local.train_csv();
  ASSIGN_OR_RETURN(std::shared_ptr<const CsvTable> table, LoadTable(path));
  std::vector<std::string> features(schema.features().begin(), schema.features().end());
  ASSIGN_OR_RETURN(Dataset data, SelectColumns(*table, features, schema.label(), path));
  return std::make_shared<const Dataset>(std::move(data));
}

WorkOutcome WorkProcessor::Process(const v1::WorkItem& item) {
  const v1::TaskSpec& spec = item.spec();
  // 1. Integrity of what the coordinator sent.
  if (crypto::HashTaskSpec(spec) != item.spec_hash()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "spec hash does not match the spec");
  }
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  if (d == 0) return Declined(v1::Decline::BAD_WORK_ITEM, "task has no feature columns");
  const bool needs_model = item.stage() == v1::STAGE_FIT || item.stage() == v1::STAGE_EVALUATE;
  std::vector<float> model;
  if (needs_model) {
    auto num_params = proto::NumParameters(spec.model(), d);
    if (!num_params.ok()) {
      return Declined(v1::Decline::BAD_WORK_ITEM, std::string(num_params.status().message()));
    }
    model.assign(item.model().values().begin(), item.model().values().end());
    if (model.size() != *num_params) {
      return Declined(
          v1::Decline::BAD_WORK_ITEM,
          absl::StrCat("model has ", model.size(), " parameters, expected ", *num_params));
    }
    if (crypto::HashModel(model) != item.model_hash()) {
      return Declined(v1::Decline::BAD_WORK_ITEM, "model hash does not match the model");
    }
    const v1::Standardization& s = item.standardization();
    if (static_cast<size_t>(s.mean_size()) != d || static_cast<size_t>(s.stddev_size()) != d) {
      return Declined(v1::Decline::BAD_WORK_ITEM, "standardisation does not match the features");
    }
  }
  // 2. Local policy.
  if (absl::Status policy = CheckPolicy(config_.policy(), item); !policy.ok()) {
    return Declined(v1::Decline::POLICY_REFUSED, std::string(policy.message()));
  }
  // 3. Local data.
  const v1::LocalDataset* local = FindDataset(config_, spec.dataset().id());
  if (local == nullptr) {
    return Declined(v1::Decline::DATASET_MISSING,
                    absl::StrCat("no local dataset '", spec.dataset().id(), "'"));
  }

  switch (item.stage()) {
    case v1::STAGE_STATISTICS: {
      auto rows = LoadRows(*local, /*test=*/false, spec.dataset());
      if (!rows.ok()) return DataDeclined(item, rows.status());
      LocalStatistics stats = ComputeStatistics(**rows);
      return Contributed(
          proto::EncodeStatistics(stats.num_rows, stats.sums, stats.sums_of_squares));
    }
    case v1::STAGE_FIT: {
      auto rows = LoadRows(*local, /*test=*/false, spec.dataset());
      if (!rows.ok()) return DataDeclined(item, rows.status());
      Dataset data = **rows;
      const auto& s = item.standardization();
      std::vector<double> mean(s.mean().begin(), s.mean().end());
      std::vector<double> stddev(s.stddev().begin(), s.stddev().end());
      if (auto st = Standardize(mean, stddev, &data); !st.ok()) {
        return Declined(v1::Decline::BAD_WORK_ITEM, std::string(st.message()));
      }
      if (auto st = CheckBinaryLabels(data, local->train_csv()); !st.ok()) {
        return DataDeclined(item, st);
      }
      auto m = MakeModel(spec.model(), d);
      if (!m.ok()) return Declined(v1::Decline::BAD_WORK_ITEM, std::string(m.status().message()));
      TrainingOptions options;
      options.epochs = spec.training().local_epochs();
      options.batch_size = spec.training().batch_size();
      options.learning_rate = spec.training().learning_rate();
      options.l2 = item.l2();
      options.seed = LocalSeed(spec.seed(), item.round(), client_id_);
      std::vector<float> params = model;
      auto report = TrainSgd(**m, data, options, params);
      if (!report.ok()) {
        return Declined(v1::Decline::COMPUTE_ERROR, std::string(report.status().message()));
      }
      std::vector<float> delta(params.size());
      for (size_t i = 0; i < params.size(); ++i) delta[i] = params[i] - model[i];
      return Contributed(proto::EncodeWeightedFit(data.num_rows,
                                                  item.standardization().num_train_rows(), delta,
                                                  spec.secure_aggregation().clip()));
    }
    case v1::STAGE_EVALUATE: {
      if (local->test_csv().empty()) {
        // A site without held-out rows still answers, with zeros, so that the cohort's
        // sums stay sums over the same sites.
        return Contributed(proto::EncodeEvaluate(0, 0.0, 0));
      }
      auto rows = LoadRows(*local, /*test=*/true, spec.dataset());
      if (!rows.ok()) return DataDeclined(item, rows.status());
      Dataset data = **rows;
      const auto& s = item.standardization();
      std::vector<double> mean(s.mean().begin(), s.mean().end());
      std::vector<double> stddev(s.stddev().begin(), s.stddev().end());
      if (auto st = Standardize(mean, stddev, &data); !st.ok()) {
        return Declined(v1::Decline::BAD_WORK_ITEM, std::string(st.message()));
      }
      if (auto st = CheckBinaryLabels(data, local->test_csv()); !st.ok()) {
        return DataDeclined(item, st);
      }
      auto m = MakeModel(spec.model(), d);
      if (!m.ok()) return Declined(v1::Decline::BAD_WORK_ITEM, std::string(m.status().message()));
      EvaluationSums sums = (*m)->Evaluate(model, data);
      return Contributed(proto::EncodeEvaluate(sums.num_examples, sums.loss_sum, sums.num_correct));
    }
    default:
      return Declined(v1::Decline::BAD_WORK_ITEM,
                      absl::StrCat("unknown stage ", static_cast<int>(item.stage())));
  }
}

}  // namespace tessera::client
