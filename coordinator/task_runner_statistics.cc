// The task runner's rounds without training: the statistics round (round 0) and an
// analytics task's answer (task_runner.cc has the task and the training rounds).
#include <algorithm>
#include <cmath>
#include <span>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "coordinator/internal/round_records.h"
#include "coordinator/privacy_accountant.h"
#include "coordinator/strategy.h"
#include "coordinator/sum_checks.h"
#include "coordinator/task_runner.h"
#include "crypto/hash.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/model_layout.h"
#include "proto/preparation.h"
#include "proto/validation_split.h"
#include "secagg/protocol.h"
#include "secagg/provenance.h"

namespace tessera::coordinator {

using internal::AnalyticsMetrics;
using internal::MakeMetric;
using internal::SetProvenance;

namespace {

// "#prepare:<SHA-256 of the entries in text format>": the preparation in a statistics key.
std::string PreparationKey(const v1::DatasetSpec& dataset) {
  std::string text;
  for (const v1::ColumnPreparation& p : dataset.prepare()) {
    absl::StrAppend(&text, common::ToTextProto(p), "\n--\n");
  }
  return absl::StrCat("#prepare:", absl::BytesToHexString(crypto::Sha256(text)));
}

// The pooled statistics' key: the columns, the preparation they were computed after (the
// same names can hold other values under another preparation), and the rows: with a
// validation split, the training rows it leaves (its fraction and seed say which).
std::vector<std::string> StatisticsKey(const v1::TaskSpec& spec,
                                       const std::vector<std::string>& columns) {
  std::vector<std::string> key = columns;
  if (spec.dataset().prepare_size() > 0) key.push_back(PreparationKey(spec.dataset()));
  if (proto::HasValidationSplit(spec)) {
    key.push_back(
        absl::StrCat("#validation:", spec.training().validation_fraction(), ":", spec.seed()));
  }
  return key;
}

// A statistics session's sum, decoded.
struct DecodedStatistics {
  proto::PooledStatistics pooled;
  proto::PooledImputations imputations;  // with IMPUTE_MEAN or IMPUTE_MODE columns only
};

// Decodes `all`: the statistics of `columns` columns, then (with a preparation) their
// present cells. An error, naming what is wrong, if a check refuses the sum or it does not
// decode.
absl::StatusOr<DecodedStatistics> DecodeStatisticsSum(const v1::DatasetSpec& dataset,
                                                      std::span<const double> all, size_t columns,
                                                      uint32_t survivors) {
  const std::span<const double> sums =
      all.first(std::min(all.size(), proto::StatisticsLength(columns)));
  RETURN_IF_ERROR(CheckStatisticsSum(sums, columns, survivors));
  DecodedStatistics decoded;
  ASSIGN_OR_RETURN(decoded.pooled, proto::DecodeStatistics(sums, columns));
  if (dataset.prepare_size() > 0) {
    ASSIGN_OR_RETURN(decoded.imputations,
                     proto::PoolImputations(dataset, all, columns, &decoded.pooled));
  } else if (all.size() != sums.size()) {
    return absl::InvalidArgumentError("statistics: a longer vector than the columns need");
  }
  return decoded;
}

}  // namespace

absl::Status TaskRunner::RunStatisticsRound(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  std::vector<std::string> columns(spec.dataset().features().begin(),
                                   spec.dataset().features().end());
  if (proto::StatisticsIncludeLabel(spec.model())) columns.push_back(spec.dataset().label());
  const std::vector<std::string> key = StatisticsKey(spec, columns);
  ASSIGN_OR_RETURN(v1::InFlightRound in_flight, InFlightOf(0));
  // Statistics of these columns pooled for an earlier task: the sites would not send theirs
  // again, and need not.
  absl::StatusOr<v1::PooledStatisticsRecord> cached =
      store_->GetStatistics(spec.dataset().id(), key);
  if (cached.ok()) return CommitStatistics(task, *cached, in_flight, /*reused=*/true);
  if (cached.status().code() != absl::StatusCode::kNotFound) return cached.status();

  StagePlan plan;
  plan.stage = v1::STAGE_STATISTICS;
  plan.round = 0;
  while (true) {
    StageEnd end = RunDurableStage(task, in_flight, plan);
    if (end.kind != StageEnd::Kind::kCompleted) {
      // Another task may have pooled these columns meanwhile (its sites then refused ours).
      cached = store_->GetStatistics(spec.dataset().id(), key);
      if (end.kind == StageEnd::Kind::kFailed && cached.ok()) {
        return CommitStatistics(task, *cached, in_flight, /*reused=*/true);
      }
      return EndStage(task, end, "statistics round");
    }
    absl::StatusOr<DecodedStatistics> decoded =
        DecodeStatisticsSum(spec.dataset(), end.result.sums, columns.size(),
                            static_cast<uint32_t>(end.result.survivors.size()));
    if (!decoded.ok()) {
      ASSIGN_OR_RETURN(bool halted, UnusableSum(in_flight, 0, end.result,
                                                std::string(decoded.status().message())));
      if (!halted) continue;
      return EndStage(task, StageEnd{StageEnd::Kind::kHalted, {}, ""}, "statistics round");
    }
    const proto::PooledStatistics& pooled = decoded->pooled;
    const proto::PooledImputations& imputations = decoded->imputations;
    const size_t d = static_cast<size_t>(spec.dataset().features_size());
    v1::PooledStatisticsRecord record;
    record.set_dataset_id(spec.dataset().id());
    *record.mutable_columns() = {key.begin(), key.end()};
    v1::Standardization* s = record.mutable_standardization();
    s->mutable_mean()->Assign(pooled.mean.begin(), pooled.mean.begin() + d);
    s->mutable_stddev()->Assign(pooled.stddev.begin(), pooled.stddev.begin() + d);
    s->set_num_train_rows(pooled.num_rows);
    if (columns.size() > d) {
      s->set_label_mean(pooled.mean[d]);
      s->set_label_stddev(pooled.stddev[d]);
    }
    s->mutable_imputed_means()->Assign(imputations.means.begin(), imputations.means.end());
    s->mutable_imputed_modes()->Assign(imputations.modes.begin(), imputations.modes.end());
    *record.mutable_participants() = {end.result.survivors.begin(), end.result.survivors.end()};
    if (end.result.provenance.has_value()) *record.mutable_provenance() = *end.result.provenance;
    record.set_task_id(task_id_);
    record.set_created_unix_ms(common::ToUnixMillis(clock_->Now()));
    RETURN_IF_ERROR(store_->PutStatistics(record));
    return CommitStatistics(task, record, in_flight, /*reused=*/false);
  }
}

absl::Status TaskRunner::CommitStatistics(v1::TaskRecord& task,
                                          const v1::PooledStatisticsRecord& pooled,
                                          const v1::InFlightRound& in_flight, bool reused) {
  const v1::TaskSpec& spec = task.spec();
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  ASSIGN_OR_RETURN(std::vector<float> initial,
                   proto::InitialParameters(spec.model(), d, spec.seed()));
  const uint64_t rows = pooled.standardization().num_train_rows();
  *task.mutable_standardization() = pooled.standardization();
  // One cohort: only the sites whose statistics are pooled train and evaluate on them.
  *task.mutable_statistics_cohort() = pooled.participants();
  task.set_l2(proto::ResolvedL2(spec.model(), rows));
  task.set_last_committed_round(0);
  task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));

  v1::RoundRecord record;
  record.set_task_id(task_id_);
  record.set_round(0);
  *record.mutable_fit_participants() = pooled.participants();
  *record.add_metrics() = MakeMetric("num_train_rows", static_cast<double>(rows));
  record.set_model_hash(crypto::HashModel(initial));
  record.set_started_unix_ms(in_flight.started_unix_ms());
  record.set_committed_unix_ms(common::ToUnixMillis(clock_->Now()));
  record.set_attempts(reused ? 0 : in_flight.attempt());
  *record.mutable_drops() = in_flight.drops();
  *record.mutable_stage_attempts() = in_flight.stage_attempts();
  if (reused) record.set_statistics_from(pooled.task_id());
  google::protobuf::RepeatedPtrField<v1::SessionProvenance> sessions;
  // This task's own statistics session (also when it committed after a restart between
  // storing the statistics and committing the round); a reused one is in its task's round 0.
  if (pooled.task_id() == task_id_ && pooled.has_provenance()) {
    *sessions.Add() = pooled.provenance();
    record.clear_statistics_from();
  }
  SetProvenance(sessions, &record);
  RETURN_IF_ERROR(store_->CommitRound(task, record, initial));
  common::LogInfo("round_committed")
      .With("task", task_id_)
      .With("round", 0)
      .With("sites", static_cast<uint64_t>(pooled.participants_size()))
      .With("train_rows", rows)
      .With("statistics_from", reused ? pooled.task_id() : task_id_);
  return absl::OkStatus();
}

absl::Status TaskRunner::RunAnalytics(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const v1::AnalyticsSpec& analytics = spec.analytics();
  const bool noised = spec.has_privacy();
  ASSIGN_OR_RETURN(v1::InFlightRound in_flight, InFlightOf(1));
  StagePlan plan;
  plan.stage = v1::STAGE_ANALYTICS;
  plan.round = 1;
  if (noised) {
    // The noised sum is one Gaussian-mechanism release, charged by RunDurableStage before
    // it can be unmasked. As for a training round, the stage does not even start when the
    // budget cannot pay for it (nothing charged yet): the sites then spend nothing on it.
    plan.noise_multiplier = spec.privacy().noise_multiplier();
    if (in_flight.releases().empty()) {
      std::vector<double> charged = ChargedReleases(in_flight);
      charged.push_back(plan.noise_multiplier);
      ASSIGN_OR_RETURN(double epsilon, EpsilonOfReleases(charged, spec.privacy().delta()));
      if (epsilon > spec.privacy().epsilon_budget()) {
        return Finish(
            task, v1::TASK_FAILED,
            absl::StrCat("privacy budget spent: the query's release would reach "
                         "epsilon ",
                         epsilon, " > ", spec.privacy().epsilon_budget(), "; no answer released"));
      }
    }
  }
  while (true) {
    StageEnd end = RunDurableStage(task, in_flight, plan);
    if (end.kind == StageEnd::Kind::kBudget) {
      // Refused before the unmasking step was posted: nothing was released.
      return Finish(task, v1::TASK_FAILED, absl::StrCat(end.reason, "; no answer released"));
    }
    if (end.kind != StageEnd::Kind::kCompleted) return EndStage(task, end, "query");
    const absl::Status checked = CheckAnalyticsSum(
        analytics, end.result.sums, static_cast<uint32_t>(end.result.survivors.size()), noised);
    absl::StatusOr<std::vector<proto::QueryRelease>> answers =
        checked.ok() ? proto::ReleaseAnalytics(analytics, end.result.sums, noised)
                     : absl::StatusOr<std::vector<proto::QueryRelease>>(checked);
    // The secure-aggregation threshold already keeps every sum over at least min_cohort
    // sites; this is the release rule said once more where the answer is made.
    if (answers.ok() && end.result.survivors.size() < std::max(analytics.min_cohort(), 1u)) {
      answers = absl::FailedPreconditionError(
          absl::StrCat(end.result.survivors.size(), " sites in the sums, fewer than min_cohort ",
                       analytics.min_cohort(), ": no answer released"));
    }
    if (!answers.ok()) {
      ASSIGN_OR_RETURN(bool halted, UnusableSum(in_flight, 1, end.result,
                                                std::string(answers.status().message())));
      if (!halted) continue;
      return EndStage(task, StageEnd{StageEnd::Kind::kHalted, {}, ""}, "query");
    }
    if (end.result.provenance.has_value()) *in_flight.add_provenance() = *end.result.provenance;
    return CommitAnalytics(task, in_flight, end.result.survivors, *answers);
  }
}

absl::Status TaskRunner::CommitAnalytics(v1::TaskRecord& task, const v1::InFlightRound& in_flight,
                                         const std::vector<std::string>& survivors,
                                         const std::vector<proto::QueryRelease>& answers) {
  const v1::TaskSpec& spec = task.spec();
  v1::RoundRecord record;
  record.set_task_id(task_id_);
  record.set_round(1);
  *record.mutable_fit_participants() = {survivors.begin(), survivors.end()};
  for (const proto::QueryRelease& q : answers) {
    for (const v1::Metric& m : AnalyticsMetrics(q)) *record.add_metrics() = m;
  }
  if (spec.has_privacy()) {
    // Every charged release of the task: this answer's, and those of attempts whose noised
    // sum could be unmasked but gave no answer.
    ASSIGN_OR_RETURN(double epsilon,
                     EpsilonOfReleases(ChargedReleases(in_flight), spec.privacy().delta()));
    *record.add_metrics() = MakeMetric("epsilon", epsilon);
    *record.add_metrics() = MakeMetric("delta", spec.privacy().delta());
  }
  *record.mutable_releases() = in_flight.releases();
  task.set_last_committed_round(1);
  task.set_state(v1::TASK_COMPLETED);
  task.set_state_reason("query answered");
  task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
  record.set_model_hash(crypto::HashModel({}));
  record.set_started_unix_ms(in_flight.started_unix_ms());
  record.set_committed_unix_ms(common::ToUnixMillis(clock_->Now()));
  record.set_attempts(in_flight.attempt());
  *record.mutable_drops() = in_flight.drops();
  *record.mutable_stage_attempts() = in_flight.stage_attempts();
  SetProvenance(in_flight.provenance(), &record);
  RETURN_IF_ERROR(store_->CommitRound(task, record, {}));
  for (const v1::PrivacyRelease& r : in_flight.releases()) {
    committed_releases_.push_back(r.noise_multiplier());
  }
  common::LogInfo("query_answered")
      .With("task", task_id_)
      .With("sites", static_cast<uint64_t>(survivors.size()))
      .With("queries", static_cast<uint64_t>(answers.size()));
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
