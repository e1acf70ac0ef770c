#include "client/work_processor.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/internal/work_outcomes.h"
#include "client/model.h"
#include "client/policy.h"
#include "client/prepare.h"
#include "client/privacy.h"
#include "client/trainer.h"
#include "common/log.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/model_layout.h"
#include "proto/validation.h"
#include "proto/validation_split.h"

namespace tessera::client {
namespace {

using internal::Contributed;
using internal::DataDeclined;
using internal::Declined;

const v1::LocalDataset* FindDataset(const v1::ClientConfig& config, const std::string& id) {
  for (const v1::LocalDataset& d : config.datasets()) {
    if (d.id() == id) return &d;
  }
  return nullptr;
}

// The spec as sent: its hash, the coordinator's own validator, every default explicit (so
// its hash says exactly what runs). A decline naming what is wrong, or nothing.
std::optional<WorkOutcome> SpecDeclined(const v1::WorkItem& item) {
  const v1::TaskSpec& spec = item.spec();
  if (crypto::HashTaskSpec(spec) != item.spec_hash()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "spec hash does not match the spec");
  }
  if (std::vector<common::FieldError> errors = proto::ValidateTaskSpec(spec); !errors.empty()) {
    return Declined(
        v1::Decline::BAD_WORK_ITEM,
        absl::StrCat("the task spec is invalid: ", errors[0].path, ": ", errors[0].message));
  }
  {
    v1::TaskSpec defaulted = spec;
    proto::ApplyTaskDefaults(&defaulted);
    if (crypto::HashTaskSpec(defaulted) != item.spec_hash()) {
      return Declined(v1::Decline::BAD_WORK_ITEM,
                      "the task spec does not have its defaults made explicit");
    }
  }
  return std::nullopt;
}

// The model and what comes with it (a training or evaluation item with `d` features and
// `num_params` parameters): a decline naming what does not match, or nothing.
std::optional<WorkOutcome> ModelDeclined(const v1::WorkItem& item, size_t d, size_t num_params) {
  const v1::TaskSpec& spec = item.spec();
  if (item.model_size() > 0) {
    return Declined(v1::Decline::BAD_WORK_ITEM,
                    absl::StrCat("the model sent apart (", item.model_size(),
                                 " bytes) did not add up (the site's log names what)"));
  }
  if (static_cast<size_t>(item.model().values_size()) != num_params) {
    return Declined(v1::Decline::BAD_WORK_ITEM,
                    absl::StrCat("model has ", item.model().values_size(), " parameters, expected ",
                                 num_params));
  }
  if (crypto::HashModel(std::span<const float>(item.model().values().data(),
                                               static_cast<size_t>(item.model().values_size()))) !=
      item.model_hash()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "model hash does not match the model");
  }
  const v1::Standardization& s = item.standardization();
  if (static_cast<size_t>(s.mean_size()) != d || static_cast<size_t>(s.stddev_size()) != d) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "standardisation does not match the features");
  }
  if (s.num_train_rows() == 0) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "the work item carries no pooled row count");
  }
  if (item.l2() != proto::ResolvedL2(spec.model(), s.num_train_rows())) {
    return Declined(v1::Decline::BAD_WORK_ITEM,
                    "the L2 penalty is not the one the spec and the pooled row count give");
  }
  return std::nullopt;
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
  // Columns a task never uses may hold anything (notes, codes, missing values): a task that
  // uses one with cells that are not numbers is declined, naming the column.
  ASSIGN_OR_RETURN(CsvTable table, LoadCsv(path, CellPolicy::kMarkNonNumeric));
  auto shared = std::make_shared<const CsvTable>(std::move(table));
  tables_[path] = CachedTable{static_cast<int64_t>(st.st_size), mtime_ns, shared};
  common::LogInfo("dataset_loaded")
      .With("file", path)
      .With("rows", static_cast<uint64_t>(shared->num_rows))
      .With("columns", static_cast<uint64_t>(shared->header.size()));
  for (size_t c = 0; c < shared->header.size(); ++c) {
    if (shared->non_numeric_cells[c] == 0) continue;
    common::LogInfo("dataset_column_not_numeric")
        .With("file", path)
        .With("column", shared->header[c])
        .With("cells", static_cast<uint64_t>(shared->non_numeric_cells[c]))
        .With("first_line", static_cast<uint64_t>(shared->first_non_numeric_line[c]));
  }
  return shared;
}

const std::string& WorkProcessor::PathOf(const v1::LocalDataset& local, RowSet rows) {
  return rows == RowSet::kTest ? local.test_csv() : local.train_csv();
}

absl::StatusOr<std::shared_ptr<const CsvTable>> WorkProcessor::LoadPrepared(
    const v1::LocalDataset& local, RowSet rows, const v1::TaskSpec& spec,
    const v1::Standardization* pooled, std::vector<double>* imputation_counts) {
  const std::string& path = PathOf(local, rows);
  const v1::DatasetSpec& schema = spec.dataset();
  ASSIGN_OR_RETURN(std::shared_ptr<const CsvTable> table, LoadTable(path));
  if (rows != RowSet::kTest && proto::HasValidationSplit(spec)) {
    const double fraction = spec.training().validation_fraction();
    const std::vector<bool> validation =
        proto::ValidationMask(table->num_rows, fraction, spec.seed());
    const size_t held_out = proto::ValidationRowCount(table->num_rows, fraction);
    if (held_out == 0 || held_out == table->num_rows) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": too few rows for training.validation_fraction ", fraction,
                       " (every site keeps at least one training and one validation row)"));
    }
    table = std::make_shared<const CsvTable>(
        SelectTableRows(*table, validation, /*keep=*/rows == RowSet::kValidation));
  }
  if (schema.prepare_size() == 0) return table;
  ASSIGN_OR_RETURN(PreparedTable prepared, PrepareTable(*table, schema, pooled, path));
  if (imputation_counts != nullptr) *imputation_counts = std::move(prepared.imputation_counts);
  return std::make_shared<const CsvTable>(std::move(prepared.table));
}

absl::StatusOr<std::shared_ptr<const Dataset>> WorkProcessor::LoadRows(
    const v1::LocalDataset& local, RowSet rows, const v1::TaskSpec& spec,
    const v1::Standardization* pooled, std::vector<double>* imputation_counts) {
  const std::string& path = PathOf(local, rows);
  const v1::DatasetSpec& schema = spec.dataset();
  ASSIGN_OR_RETURN(std::shared_ptr<const CsvTable> table,
                   LoadPrepared(local, rows, spec, pooled, imputation_counts));
  std::vector<std::string> features(schema.features().begin(), schema.features().end());
  ASSIGN_OR_RETURN(Dataset data,
                   schema.event().empty()
                       ? SelectColumns(*table, features, schema.label(), path)
                       : SelectColumns(*table, features, schema.label(), schema.event(), path));
  return std::make_shared<const Dataset>(std::move(data));
}

WorkOutcome WorkProcessor::Process(const v1::WorkItem& item) {
  const v1::TaskSpec& spec = item.spec();
  // 1. Integrity of what the coordinator sent.
  if (std::optional<WorkOutcome> declined = SpecDeclined(item)) return *std::move(declined);
  // 2. Local policy (client/policy.h): the refusal's text names the rule.
  for (const absl::Status& policy : {CheckTaskPolicy(config_.policy(), spec),
                                     CheckCohort(config_.policy(), item.cohort_size())}) {
    if (!policy.ok()) return Declined(v1::Decline::POLICY_REFUSED, std::string(policy.message()));
  }
  // 2b. The site's approval queue, when it keeps one.
  if (approval_gate_) {
    if (std::optional<v1::Decline> decline = approval_gate_(item, config_.policy())) {
      WorkOutcome out;
      out.decline = *std::move(decline);
      return out;
    }
  }
  // 3. Local data.
  const v1::LocalDataset* local = FindDataset(config_, spec.dataset().id());
  if (local == nullptr) {
    return Declined(v1::Decline::DATASET_MISSING,
                    absl::StrCat("no local dataset '", spec.dataset().id(), "'"));
  }
  if (item.stage() == v1::STAGE_ANALYTICS) return Analytics(item, *local);

  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  if (d == 0) return Declined(v1::Decline::BAD_WORK_ITEM, "task has no feature columns");
  switch (item.stage()) {
    case v1::STAGE_STATISTICS:
      return Statistics(item, *local);
    case v1::STAGE_GLM:
      return Glm(item, *local);
    case v1::STAGE_FIT:
    case v1::STAGE_EVALUATE:
    case v1::STAGE_FIT_EVALUATE:
    case v1::STAGE_TEST:
      break;
    default:
      return Declined(v1::Decline::BAD_WORK_ITEM,
                      absl::StrCat("unknown stage ", static_cast<int>(item.stage())));
  }
  auto num_params = proto::NumParameters(spec.model(), d);
  if (!num_params.ok()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, std::string(num_params.status().message()));
  }
  if (std::optional<WorkOutcome> declined = ModelDeclined(item, d, *num_params)) {
    return *std::move(declined);
  }
  std::vector<float> model(item.model().values().begin(), item.model().values().end());
  auto m = MakeModel(spec.model(), d);
  if (!m.ok()) return Declined(v1::Decline::BAD_WORK_ITEM, std::string(m.status().message()));
  if (item.stage() == v1::STAGE_FIT_EVALUATE) return FitEvaluate(item, **m, *local, model);
  if (item.stage() == v1::STAGE_TEST && !proto::HasValidationSplit(spec)) {
    return Declined(v1::Decline::BAD_WORK_ITEM,
                    "a test session is only for a task with a validation split");
  }
  if (item.stage() != v1::STAGE_FIT) {
    return EvaluateRows(item, **m, *local, EvaluationRows(item), model);
  }
  Dataset data;
  if (auto declined = PrepareRows(item, *local, **m, RowSet::kTraining, &data)) {
    return *std::move(declined);
  }
  return Fit(item, **m, data, model);
}

WorkProcessor::RowSet WorkProcessor::EvaluationRows(const v1::WorkItem& item) {
  if (item.stage() != v1::STAGE_TEST && proto::HasValidationSplit(item.spec())) {
    return RowSet::kValidation;
  }
  return RowSet::kTest;
}

WorkOutcome WorkProcessor::EvaluateRows(const v1::WorkItem& item, const Model& model,
                                        const v1::LocalDataset& local, RowSet rows,
                                        const std::vector<float>& params) {
  if (rows == RowSet::kTest && local.test_csv().empty()) return EmptyEvaluation(item);
  Dataset data;
  if (auto declined = PrepareRows(item, local, model, rows, &data)) return *std::move(declined);
  return Evaluate(item, model, data, params);
}

std::optional<WorkOutcome> WorkProcessor::PrepareRows(const v1::WorkItem& item,
                                                      const v1::LocalDataset& local,
                                                      const Model& model, RowSet set,
                                                      Dataset* out) {
  auto rows = LoadRows(local, set, item.spec(), &item.standardization());
  if (!rows.ok()) return DataDeclined(item, rows.status());
  *out = **rows;
  const v1::Standardization& s = item.standardization();
  std::vector<double> mean(s.mean().begin(), s.mean().end());
  std::vector<double> stddev(s.stddev().begin(), s.stddev().end());
  if (auto st = Standardize(mean, stddev, out); !st.ok()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, std::string(st.message()));
  }
  if (auto st = model.CheckData(*out, PathOf(local, set)); !st.ok()) {
    return DataDeclined(item, st);
  }
  const auto& class_weights = item.spec().training().class_weights();
  if (set == RowSet::kTraining && !class_weights.empty()) {
    // CheckData made every label a class of the model; the spec has one weight per class.
    out->weight.resize(out->num_rows);
    for (size_t r = 0; r < out->num_rows; ++r) {
      const auto label = static_cast<int>(out->y[r]);
      if (label < 0 || label >= class_weights.size()) {
        return Declined(v1::Decline::BAD_WORK_ITEM,
                        "training.class_weights does not have a weight for every class");
      }
      out->weight[r] = class_weights[label];
    }
  }
  return std::nullopt;
}

WorkOutcome WorkProcessor::EmptyEvaluation(const v1::WorkItem& item) {
  auto layout = proto::MakeEvaluationLayout(item.spec().model());
  if (!layout.ok()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, std::string(layout.status().message()));
  }
  // With evaluation noise the zeros carry this site's share of the noise too, or the
  // cohort's sum would be short of it.
  return NoisedEvaluation(item, *layout, std::vector<double>(layout->length, 0.0));
}

WorkOutcome WorkProcessor::FitEvaluate(const v1::WorkItem& item, const Model& model,
                                       const v1::LocalDataset& local,
                                       const std::vector<float>& params) {
  if (proto::EvaluationNoiseOn(item.spec())) {
    return Declined(v1::Decline::BAD_WORK_ITEM,
                    "the task noises its evaluations (evaluation_noise_multiplier): they are "
                    "releases of their own and cannot travel in a fit_evaluate session");
  }
  WorkOutcome evaluation = EvaluateRows(item, model, local, EvaluationRows(item), params);
  if (!evaluation.contribution.has_value()) return evaluation;
  Dataset train;
  if (auto declined = PrepareRows(item, local, model, RowSet::kTraining, &train)) {
    return *std::move(declined);
  }
  WorkOutcome out = Fit(item, model, train, params);
  if (!out.contribution.has_value()) return out;
  out.contribution->insert(out.contribution->end(), evaluation.contribution->begin(),
                           evaluation.contribution->end());
  return out;
}

WorkOutcome WorkProcessor::Fit(const v1::WorkItem& item, const Model& model, const Dataset& data,
                               const std::vector<float>& global) {
  const v1::TaskSpec& spec = item.spec();
  auto options = TrainingOptionsFromSpec(spec.training());
  if (!options.ok()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, std::string(options.status().message()));
  }
  options->l2 = item.l2();
  options->seed = LocalSeed(spec.seed(), item.round(), client_id_);
  std::vector<float> params = global;
  std::vector<float> delta(params.size(), 0.0f);
  uint64_t rows = data.num_rows;
  if (auto report = Train(model, data, *options, params); report.ok()) {
    for (size_t i = 0; i < params.size(); ++i) delta[i] = params[i] - global[i];
  } else {
    // Whether local training diverged depends on the data: the site must not say so. It
    // sends a zero update of weight 0 (it sits this round out inside the sum), and only its
    // own log says why.
    common::LogWarning("local_training_failed")
        .With("task", item.task_id())
        .With("round", item.round())
        .With("error", std::string(report.status().message()));
    rows = 0;
  }
  const uint64_t pooled_rows = item.standardization().num_train_rows();
  std::vector<double> values =
      proto::EncodeWeightedFit(rows, pooled_rows, delta, spec.secure_aggregation().clip());
  if (spec.has_privacy()) {
    const uint32_t threshold = std::max<uint32_t>(1, item.secagg().setup().threshold());
    if (absl::Status st = AddPrivacyNoise(spec.privacy(), threshold, &values); !st.ok()) {
      common::LogError("privacy_noise_failed").With("error", st.ToString());
      return Declined(v1::Decline::COMPUTE_ERROR,
                      "local computation failed (details in the site's log)");
    }
  }
  return Contributed(std::move(values));
}

WorkOutcome WorkProcessor::Evaluate(const v1::WorkItem& item, const Model& model,
                                    const Dataset& data, const std::vector<float>& params) {
  auto layout = proto::MakeEvaluationLayout(item.spec().model());
  if (!layout.ok())
    return Declined(v1::Decline::BAD_WORK_ITEM, std::string(layout.status().message()));
  std::vector<double> predictions(data.num_rows * model.num_outputs());
  model.Predict(params, data, predictions);
  proto::EvaluationInput input;
  input.predictions = predictions;
  input.outputs = model.num_outputs();
  input.labels = data.y;
  input.events = data.event;
  input.label_mean = item.standardization().label_mean();
  input.label_stddev = item.standardization().label_stddev();
  input.for_noise = proto::EvaluationNoiseOn(item.spec());
  auto sums = proto::EncodeEvaluation(*layout, input);
  if (!sums.ok()) return DataDeclined(item, sums.status());
  return NoisedEvaluation(item, *layout, std::move(*sums));
}

WorkOutcome WorkProcessor::NoisedEvaluation(const v1::WorkItem& item,
                                            const proto::EvaluationLayout& layout,
                                            std::vector<double> sums) {
  if (!proto::EvaluationNoiseOn(item.spec())) return Contributed(std::move(sums));
  const uint32_t threshold = std::max<uint32_t>(1, item.secagg().setup().threshold());
  if (absl::Status st = AddEvaluationNoise(item.spec().privacy(), layout, threshold, &sums);
      !st.ok()) {
    common::LogError("privacy_noise_failed").With("error", st.ToString());
    return Declined(v1::Decline::COMPUTE_ERROR,
                    "local computation failed (details in the site's log)");
  }
  return Contributed(std::move(sums));
}

}  // namespace tessera::client
