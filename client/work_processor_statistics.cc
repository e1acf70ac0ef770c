// The work items that are not training: the statistics round (pooled means, variances and
// modes), a GLM's sums at the coordinator's coefficients, and analytics queries —
// WorkProcessor (client/work_processor.h); the training items: work_processor.cc.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/glm_work.h"
#include "client/internal/work_outcomes.h"
#include "client/privacy.h"
#include "client/work_processor.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/glm_layout.h"
#include "proto/model_layout.h"
#include "proto/validation.h"
#include "proto/validation_split.h"

namespace tessera::client {
namespace {

using internal::Contributed;
using internal::DataDeclined;
using internal::Declined;

// A statistics vector followed by the imputed columns' present counts
// (proto::PoolImputations).
std::vector<double> WithImputationCounts(std::vector<double> statistics,
                                         const std::vector<double>& counts) {
  statistics.insert(statistics.end(), counts.begin(), counts.end());
  return statistics;
}

}  // namespace

WorkOutcome WorkProcessor::Statistics(const v1::WorkItem& item, const v1::LocalDataset& local) {
  const v1::TaskSpec& spec = item.spec();
  // Round 0: the pooled means and modes of imputed columns are not known yet; their missing
  // cells count as 0 here and their present counts go with the sums
  // (proto::PoolImputations).
  std::vector<double> imputation_counts;
  auto rows = LoadRows(local, RowSet::kTraining, spec, nullptr, &imputation_counts);
  if (!rows.ok()) return DataDeclined(item, rows.status());
  const Dataset& data = **rows;
  // One cohort per round: the sites whose statistics are pooled are the ones that train and
  // evaluate on them, so the rows are checked here as training and evaluation will check
  // them (the label too): a site that could not train declines now, not after it is counted.
  if (proto::IsGlmTask(spec)) {
    auto table = LoadPrepared(local, RowSet::kTraining, spec, nullptr, nullptr);
    if (!table.ok()) return DataDeclined(item, table.status());
    if (auto st = CheckGlmRows(spec, **table, local.train_csv()); !st.ok()) {
      return DataDeclined(item, st);
    }
    LocalStatistics stats = ComputeStatistics(data);
    return Contributed(WithImputationCounts(
        proto::EncodeStatistics(stats.num_rows, stats.sums, stats.sums_of_squares),
        imputation_counts));
  }
  auto model = MakeModel(spec.model(), data.num_features);
  if (!model.ok())
    return Declined(v1::Decline::BAD_WORK_ITEM, std::string(model.status().message()));
  if (auto st = (*model)->CheckData(data, local.train_csv()); !st.ok()) {
    return DataDeclined(item, st);
  }
  if (proto::HasValidationSplit(spec)) {
    auto validation = LoadRows(local, RowSet::kValidation, spec, nullptr);
    if (!validation.ok()) return DataDeclined(item, validation.status());
    if (auto st = (*model)->CheckData(**validation, local.train_csv()); !st.ok()) {
      return DataDeclined(item, st);
    }
  }
  if (!local.test_csv().empty()) {
    auto test = LoadRows(local, RowSet::kTest, spec, nullptr);
    if (!test.ok()) return DataDeclined(item, test.status());
    if (auto st = (*model)->CheckData(**test, local.test_csv()); !st.ok()) {
      return DataDeclined(item, st);
    }
  }
  LocalStatistics stats = ComputeStatistics(data);
  if (proto::StatisticsIncludeLabel(spec.model())) {
    // The label is pooled too (regression, survival): one more column.
    double sum = 0;
    double sum_sq = 0;
    for (double y : data.y) {
      sum += y;
      sum_sq += y * y;
    }
    stats.sums.push_back(sum);
    stats.sums_of_squares.push_back(sum_sq);
  }
  return Contributed(WithImputationCounts(
      proto::EncodeStatistics(stats.num_rows, stats.sums, stats.sums_of_squares),
      imputation_counts));
}

WorkOutcome WorkProcessor::Glm(const v1::WorkItem& item, const v1::LocalDataset& local) {
  const v1::TaskSpec& spec = item.spec();
  if (!proto::IsGlmTask(spec)) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "a glm stage for a task that is not a GLM");
  }
  if (item.model_size() > 0 || item.model().values_size() > 0) {
    return Declined(v1::Decline::BAD_WORK_ITEM,
                    "a GLM's coefficients travel in glm_coefficients, not as a model");
  }
  const std::vector<double> beta(item.glm_coefficients().begin(), item.glm_coefficients().end());
  if (crypto::HashCoefficients(beta) != item.model_hash()) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "model hash does not match the coefficients");
  }
  GlmSitePlace place;
  place.own_site = client_id_;
  place.feature_means.assign(item.standardization().mean().begin(),
                             item.standardization().mean().end());
  if (spec.model().glm().site_fixed_effects()) {
    place.sites.assign(item.glm_sites().begin(), item.glm_sites().end());
    if (place.sites.size() != item.cohort_size()) {
      return Declined(
          v1::Decline::BAD_WORK_ITEM,
          absl::StrCat("the item names ", place.sites.size(),
                       " sites for site fixed effects, the session invites ", item.cohort_size()));
    }
  }
  auto table = LoadPrepared(local, RowSet::kTraining, spec, &item.standardization(), nullptr);
  if (!table.ok()) return DataDeclined(item, table.status());
  absl::StatusOr<std::vector<double>> sums =
      GlmContribution(spec, **table, local.train_csv(), beta, place);
  if (sums.ok()) return Contributed(*std::move(sums));
  if (absl::IsFailedPrecondition(sums.status())) {
    return Declined(v1::Decline::BAD_WORK_ITEM, std::string(sums.status().message()));
  }
  return DataDeclined(item, sums.status());
}

WorkOutcome WorkProcessor::Analytics(const v1::WorkItem& item, const v1::LocalDataset& local) {
  const v1::TaskSpec& spec = item.spec();
  // Every row the site holds for the dataset: its training and its held-out file.
  auto train = LoadTable(local.train_csv());
  if (!train.ok()) return DataDeclined(item, train.status());
  std::vector<double> values = (*train)->values;
  size_t num_rows = (*train)->num_rows;
  if (!local.test_csv().empty()) {
    auto test = LoadTable(local.test_csv());
    if (!test.ok()) return DataDeclined(item, test.status());
    if ((*test)->header != (*train)->header) {
      return DataDeclined(
          item, absl::InvalidArgumentError(absl::StrCat(
                    local.test_csv(), " does not have the header of ", local.train_csv())));
    }
    values.insert(values.end(), (*test)->values.begin(), (*test)->values.end());
    num_rows += (*test)->num_rows;
  }
  proto::AnalyticsSkips skipped;
  absl::StatusOr<std::vector<double>> sums;
  if (spec.has_privacy()) {
    // Record-level DP: nothing withheld, the site's share of noise on every statistic.
    std::vector<double> noise(proto::AnalyticsStatisticsLength(spec.analytics()), 0.0);
    const uint32_t threshold = std::max<uint32_t>(1, item.secagg().setup().threshold());
    if (absl::Status st = AddAnalyticsNoise(spec, threshold, &noise); !st.ok()) {
      common::LogError("privacy_noise_failed").With("error", st.ToString());
      return Declined(v1::Decline::COMPUTE_ERROR,
                      "local computation failed (details in the site's log)");
    }
    sums = proto::EncodeNoisedAnalytics(spec.analytics(), noise, (*train)->header, values, num_rows,
                                        &skipped);
  } else {
    sums = proto::EncodeAnalytics(spec.analytics(), proto::MinCellSize(spec.analytics()),
                                  (*train)->header, values, num_rows, &skipped);
  }
  if (!sums.ok()) return DataDeclined(item, sums.status());
  // Rows with a non-finite value are left out silently (the coordinator learns nothing of
  // them); the site's own log says how many, per column, never which or their values.
  for (const auto& [column, rows] : skipped.columns) {
    common::LogWarning("analytics_rows_skipped")
        .With("task", item.task_id())
        .With("column", column)
        .With("non_finite_rows", static_cast<uint64_t>(rows))
        .With("rows_skipped", static_cast<uint64_t>(skipped.rows));
  }
  return Contributed(std::move(*sums));
}

}  // namespace tessera::client
