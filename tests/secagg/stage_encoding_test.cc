// StageEncoding: each stage's encoding derived from the spec alone (vector length from the
// proto layouts, clip from the spec), the same function on both sides, well formed for any
// cohort size, and refusals for specs the layouts refuse.
#include "secagg/stage_encoding.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "crypto/quantizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/model_layout.h"
#include "proto/validation.h"
#include "secagg/vector_codec.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

// A task spec with defaults applied: `kind` over three features.
v1::TaskSpec Spec(v1::ModelSpec::Kind kind) {
  v1::TaskSpec spec;
  spec.set_name("stage-encoding");
  spec.mutable_dataset()->set_id("data");
  for (const char* f : {"age", "bmi", "glucose"}) spec.mutable_dataset()->add_features(f);
  spec.mutable_dataset()->set_label("y");
  spec.mutable_model()->set_kind(kind);
  if (kind == v1::ModelSpec::SOFTMAX_REGRESSION) spec.mutable_model()->set_num_classes(4);
  if (kind == v1::ModelSpec::MLP) spec.mutable_model()->add_hidden_layers(8);
  if (kind == v1::ModelSpec::COX_PH) spec.mutable_dataset()->set_event("event");
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

// A model kind of each evaluation layout (binary, multiclass, regression, survival).
constexpr v1::ModelSpec::Kind kEvaluatedKinds[] = {
    v1::ModelSpec::LOGISTIC_REGRESSION, v1::ModelSpec::SOFTMAX_REGRESSION,
    v1::ModelSpec::LINEAR_REGRESSION, v1::ModelSpec::COX_PH};

v1::TaskSpec AnalyticsSpec() {
  v1::TaskSpec spec = Spec(v1::ModelSpec::LOGISTIC_REGRESSION);
  v1::AnalyticsSpec* analytics = spec.mutable_analytics();
  analytics->add_queries()->set_column("age");
  v1::AnalyticsSpec::Query* histogram = analytics->add_queries();
  histogram->set_column("bmi");
  for (double edge : {10.0, 20.0, 30.0, 40.0}) histogram->add_histogram_edges(edge);
  return spec;
}

void ExpectWide(const v1::SecAggSegment& segment, size_t length, uint32_t fraction_bits,
                uint32_t limbs, uint32_t n) {
  EXPECT_EQ(segment.kind(), v1::SecAggSegment::WIDE);
  EXPECT_EQ(segment.length(), length);
  EXPECT_EQ(segment.fraction_bits(), fraction_bits);
  EXPECT_EQ(segment.limbs(), limbs);
  EXPECT_EQ(segment.bits(), crypto::MaxBitsForParties(n) - 1);
}

TEST(StageEncodingTest, StatisticsPoolTheFeaturesAndTheLabelOfRegressionModels) {
  const uint32_t n = 5;
  ASSERT_OK_AND_ASSIGN(
      v1::SecAggEncoding logistic,
      StageEncoding(Spec(v1::ModelSpec::LOGISTIC_REGRESSION), v1::STAGE_STATISTICS, n));
  ASSERT_EQ(logistic.segments_size(), 1);
  ExpectWide(logistic.segments(0), proto::StatisticsLength(3), 24, 4, n);
  EXPECT_EQ(logistic.segments(0).length(), 7u);  // n, 3 sums, 3 sums of squares

  for (v1::ModelSpec::Kind kind : {v1::ModelSpec::LINEAR_REGRESSION, v1::ModelSpec::COX_PH}) {
    const v1::TaskSpec spec = Spec(kind);
    ASSERT_TRUE(proto::StatisticsIncludeLabel(spec.model()));
    ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding with_label,
                         StageEncoding(spec, v1::STAGE_STATISTICS, n));
    ExpectWide(with_label.segments(0), proto::StatisticsLength(4), 24, 4, n);
  }
  EXPECT_EQ(StatisticsEncoding(3, n).SerializeAsString(), logistic.SerializeAsString());
}

TEST(StageEncodingTest, FitIsTheWeightThenTheClippedParameters) {
  for (v1::ModelSpec::Kind kind :
       {v1::ModelSpec::LOGISTIC_REGRESSION, v1::ModelSpec::SOFTMAX_REGRESSION,
        v1::ModelSpec::LINEAR_REGRESSION, v1::ModelSpec::MLP, v1::ModelSpec::COX_PH}) {
    SCOPED_TRACE(v1::ModelSpec::Kind_Name(kind));
    v1::TaskSpec spec = Spec(kind);
    spec.mutable_secure_aggregation()->set_clip(0.75);
    ASSERT_OK_AND_ASSIGN(size_t params, proto::NumParameters(spec.model(), 3));
    ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding encoding, StageEncoding(spec, v1::STAGE_FIT, 9));
    ASSERT_EQ(encoding.segments_size(), 2);
    EXPECT_EQ(encoding.segments(0).kind(), v1::SecAggSegment::BOUNDED);
    EXPECT_EQ(encoding.segments(0).length(), 1u);
    EXPECT_EQ(encoding.segments(0).bound(), 1.0);
    EXPECT_EQ(encoding.segments(1).kind(), v1::SecAggSegment::BOUNDED);
    EXPECT_EQ(encoding.segments(1).length(), params);
    EXPECT_EQ(encoding.segments(1).bound(), 0.75);
    EXPECT_EQ(encoding.segments(1).bits(), crypto::MaxBitsForParties(9));
    EXPECT_EQ(FitEncoding(params, 0.75, 9).SerializeAsString(), encoding.SerializeAsString());
  }
  // The default clip (secure_aggregation.clip, 10) when the spec says nothing.
  ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding fit,
                       StageEncoding(Spec(v1::ModelSpec::LOGISTIC_REGRESSION), v1::STAGE_FIT, 3));
  EXPECT_EQ(fit.segments(1).bound(), 10.0);
  EXPECT_EQ(fit.segments(1).length(), 4u);  // 3 weights and an intercept
}

// Real sums in 16-fractional-bit, 3-limb WIDE segments; the row counts of the AUC
// histograms and survival grids (integers) exactly, in 2-limb WIDE segments without
// fractional bits: a third fewer words. With evaluation noise, one WIDE segment.
TEST(StageEncodingTest, EvaluateFollowsTheEvaluationLayout) {
  for (v1::ModelSpec::Kind kind : kEvaluatedKinds) {
    SCOPED_TRACE(v1::ModelSpec::Kind_Name(kind));
    v1::TaskSpec spec = Spec(kind);
    ASSERT_OK_AND_ASSIGN(proto::EvaluationLayout layout, proto::MakeEvaluationLayout(spec.model()));
    ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding encoding, StageEncoding(spec, v1::STAGE_EVALUATE, 6));
    const std::vector<std::pair<size_t, size_t>> counts = proto::EvaluationCountRanges(layout);
    size_t at = 0;
    int i = 0;
    for (const auto& [begin, end] : counts) {
      ASSERT_LT(i + 1, encoding.segments_size());
      ExpectWide(encoding.segments(i++), begin - at, 16, 3, 6);
      ExpectWide(encoding.segments(i++), end - begin, 0, 2, 6);
      at = end;
    }
    if (at < layout.length) {
      ASSERT_LT(i, encoding.segments_size());
      ExpectWide(encoding.segments(i++), layout.length - at, 16, 3, 6);
    }
    EXPECT_EQ(encoding.segments_size(), i);
    EXPECT_EQ(EncodedValues(encoding), layout.length);
    if (kind == v1::ModelSpec::LOGISTIC_REGRESSION) {
      // The AUC histograms and their offsets: 4 * 130 integers after n, the log-loss, the
      // correct count and the two within-site numerators; 12,315 words with three words a
      // count, 8,215 with two, 1,055 since the histograms have 130 bins instead of 2,050.
      ASSERT_EQ(counts.size(), 1u);
      EXPECT_EQ(counts[0].first, 5u);
      EXPECT_EQ(counts[0].second - counts[0].first, 4 * (proto::kAucBins + 2));
      EXPECT_EQ(EncodedWords(encoding), 3 * 5 + 2 * 4 * (proto::kAucBins + 2));
      EXPECT_EQ(EncodedWords(encoding), 1055u);
    }
    if (kind == v1::ModelSpec::LINEAR_REGRESSION) {
      EXPECT_TRUE(counts.empty());
    }

    // With evaluation noise the counts are noised reals: one WIDE segment.
    spec.mutable_privacy()->set_noise_multiplier(1.0);
    spec.mutable_privacy()->set_clip_norm(1.0);
    spec.mutable_privacy()->set_epsilon_budget(10);
    spec.mutable_privacy()->set_delta(1e-5);
    spec.mutable_privacy()->set_evaluation_noise_multiplier(2.0);
    ASSERT_TRUE(proto::EvaluationNoiseOn(spec));
    ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding noised, StageEncoding(spec, v1::STAGE_EVALUATE, 6));
    ASSERT_EQ(noised.segments_size(), 1);
    ExpectWide(noised.segments(0), layout.length, 16, 3, 6);
  }
}

// The counts go exactly: an evaluation vector of real rows survives encoding, summing over
// many parties and decoding, to the last count.
TEST(StageEncodingTest, EvaluationCountsSumExactly) {
  const v1::TaskSpec spec = Spec(v1::ModelSpec::LOGISTIC_REGRESSION);
  ASSERT_OK_AND_ASSIGN(proto::EvaluationLayout layout, proto::MakeEvaluationLayout(spec.model()));
  constexpr uint32_t kParties = 1000;
  ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding encoding,
                       StageEncoding(spec, v1::STAGE_EVALUATE, kParties));
  proto::EvaluationInput input;
  const std::vector<double> scores = {0.1, 0.9, 0.35, 0.35, 0.999999, 0.6};
  const std::vector<double> labels = {0, 1, 0, 1, 1, 0};
  input.predictions = scores;
  input.labels = labels;
  ASSERT_OK_AND_ASSIGN(std::vector<double> one, proto::EncodeEvaluation(layout, input));
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words, EncodeVector(one, encoding));
  std::vector<uint32_t> sum(words.size(), 0);
  for (uint32_t p = 0; p < kParties; ++p) {
    for (size_t i = 0; i < words.size(); ++i) sum[i] += words[i];
  }
  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(sum, encoding));
  ASSERT_EQ(decoded.size(), one.size());
  for (const auto& [begin, end] : proto::EvaluationCountRanges(layout)) {
    for (size_t i = begin; i < end; ++i) EXPECT_EQ(decoded[i], kParties * one[i]) << i;
  }
}

// One session per round: FIT's segments, then EVALUATE's, of the same spec and cohort.
TEST(StageEncodingTest, FitEvaluateIsTheFitEncodingThenTheEvaluateEncoding) {
  for (v1::ModelSpec::Kind kind : kEvaluatedKinds) {
    SCOPED_TRACE(v1::ModelSpec::Kind_Name(kind));
    v1::TaskSpec spec = Spec(kind);
    spec.mutable_secure_aggregation()->set_clip(0.5);
    ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding fit, StageEncoding(spec, v1::STAGE_FIT, 7));
    ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding evaluate, StageEncoding(spec, v1::STAGE_EVALUATE, 7));
    ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding both, StageEncoding(spec, v1::STAGE_FIT_EVALUATE, 7));
    v1::SecAggEncoding expected = fit;
    for (const v1::SecAggSegment& s : evaluate.segments()) *expected.add_segments() = s;
    EXPECT_EQ(both.SerializeAsString(), expected.SerializeAsString());
    EXPECT_EQ(EncodedWords(both), EncodedWords(fit) + EncodedWords(evaluate));
    EXPECT_OK(ValidateEncoding(both, 7));
  }
}

TEST(StageEncodingTest, AnalyticsFollowsTheQueries) {
  const v1::TaskSpec spec = AnalyticsSpec();
  ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding encoding, StageEncoding(spec, v1::STAGE_ANALYTICS, 4));
  ASSERT_EQ(encoding.segments_size(), 1);
  ExpectWide(encoding.segments(0), proto::AnalyticsLength(spec.analytics()), 40, 4, 4);
}

TEST(StageEncodingTest, EveryEncodingIsValidForItsCohort) {
  const std::vector<std::pair<v1::TaskSpec, v1::Stage>> cases = {
      {Spec(v1::ModelSpec::LINEAR_REGRESSION), v1::STAGE_STATISTICS},
      {Spec(v1::ModelSpec::MLP), v1::STAGE_FIT},
      {Spec(v1::ModelSpec::SOFTMAX_REGRESSION), v1::STAGE_EVALUATE},
      {AnalyticsSpec(), v1::STAGE_ANALYTICS},
  };
  for (const auto& [spec, stage] : cases) {
    for (uint32_t n : {1u, 2u, 3u, 5u, 64u, 100u, 1000u}) {
      SCOPED_TRACE(absl::StrCat(v1::Stage_Name(stage), " n = ", n));
      ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding encoding, StageEncoding(spec, stage, n));
      EXPECT_OK(ValidateEncoding(encoding, n));
      // Deterministic: the site and the coordinator derive the same bytes.
      ASSERT_OK_AND_ASSIGN(v1::SecAggEncoding again, StageEncoding(spec, stage, n));
      EXPECT_EQ(again.SerializeAsString(), encoding.SerializeAsString());
    }
  }
}

TEST(StageEncodingTest, RefusesWhatTheLayoutsRefuse) {
  const v1::TaskSpec good = Spec(v1::ModelSpec::LOGISTIC_REGRESSION);
  EXPECT_THAT(StageEncoding(good, v1::STAGE_UNSPECIFIED, 5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("STAGE_UNSPECIFIED")));
  EXPECT_THAT(StageEncoding(good, static_cast<v1::Stage>(99), 5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StageEncoding(good, v1::STAGE_FIT, 0), StatusIs(absl::StatusCode::kInvalidArgument));

  v1::TaskSpec unknown_model = good;
  unknown_model.mutable_model()->set_kind(v1::ModelSpec::KIND_UNSPECIFIED);
  EXPECT_THAT(StageEncoding(unknown_model, v1::STAGE_FIT, 5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StageEncoding(unknown_model, v1::STAGE_EVALUATE, 5),
              StatusIs(absl::StatusCode::kInvalidArgument));

  v1::TaskSpec no_features = good;
  no_features.mutable_dataset()->clear_features();
  EXPECT_THAT(StageEncoding(no_features, v1::STAGE_FIT, 5),
              StatusIs(absl::StatusCode::kInvalidArgument));

  for (double clip : {0.0, -1.0, double{NAN}, double{INFINITY}}) {
    v1::TaskSpec bad_clip = good;
    bad_clip.mutable_secure_aggregation()->set_clip(clip);
    EXPECT_THAT(StageEncoding(bad_clip, v1::STAGE_FIT, 5),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clip")))
        << clip;
  }

  // No queries: an empty vector.
  EXPECT_THAT(StageEncoding(good, v1::STAGE_ANALYTICS, 5),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::secagg
