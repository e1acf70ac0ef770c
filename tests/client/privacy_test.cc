// The site's differential-privacy noise (client/privacy.h): the standard deviation each
// site adds, and that a sum over t sites carries sigma * sensitivity; fresh noise on every
// call; the weight and the evaluation encoding's within-site pair terms; analytics noise
// per statistic, and a noised analytics answer that withholds nothing.
#include "client/privacy.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "client/work_processor.h"
#include "crypto/hash.h"
#include "crypto/quantizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/config.pb.h"
#include "proto/evaluation.h"
#include "proto/secagg.pb.h"
#include "proto/task.pb.h"
#include "proto/validation.h"
#include "secagg/vector_codec.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;

struct Moments {
  double mean = 0, stddev = 0, within_one_sd = 0;
  size_t n = 0;
};

Moments Measure(const std::vector<double>& samples) {
  Moments m;
  m.n = samples.size();
  for (double v : samples) m.mean += v;
  m.mean /= static_cast<double>(m.n);
  for (double v : samples) m.stddev += (v - m.mean) * (v - m.mean);
  m.stddev = std::sqrt(m.stddev / static_cast<double>(m.n - 1));
  for (double v : samples) m.within_one_sd += std::abs(v - m.mean) <= m.stddev ? 1 : 0;
  m.within_one_sd /= static_cast<double>(m.n);
  return m;
}

// Checks that `samples` look like N(0, stddev^2): mean within 5 standard errors of 0,
// sample sd within 5 of its standard errors (sd / sqrt(2n)), and the mass within one sd
// near the normal's 68.27%.
void ExpectNormal(const std::vector<double>& samples, double stddev) {
  const Moments m = Measure(samples);
  const double n = static_cast<double>(m.n);
  EXPECT_NEAR(m.mean, 0, 5 * stddev / std::sqrt(n));
  EXPECT_NEAR(m.stddev, stddev, 5 * stddev / std::sqrt(2 * n));
  EXPECT_NEAR(m.within_one_sd, 0.6827, 5 * std::sqrt(0.6827 * 0.3173 / n));
}

v1::PrivacySpec Spec(double evaluation_noise_multiplier) {
  v1::PrivacySpec spec;
  spec.set_clip_norm(0.5);
  spec.set_noise_multiplier(1.5);
  spec.set_epsilon_budget(10);
  spec.set_delta(1e-5);
  spec.set_evaluation_noise_multiplier(evaluation_noise_multiplier);
  return spec;
}

proto::EvaluationLayout Layout(v1::ModelSpec::Kind kind, uint32_t num_classes = 0) {
  v1::ModelSpec model;
  model.set_kind(kind);
  model.set_num_classes(num_classes);
  auto layout = proto::MakeEvaluationLayout(model);
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *layout;
}

// ---- Evaluation noise ----

TEST(SiteEvaluationNoiseTest, EachSiteAddsSigmaTimesSensitivityOverRootT) {
  struct Case {
    v1::ModelSpec::Kind kind;
    uint32_t num_classes;
    double delta;
  };
  for (const Case& c :
       {Case{v1::ModelSpec::LOGISTIC_REGRESSION, 0, 2.0},
        Case{v1::ModelSpec::SOFTMAX_REGRESSION, 3, std::sqrt(5.0)},
        Case{v1::ModelSpec::MLP, 2, std::sqrt(6.0)}, Case{v1::ModelSpec::LINEAR_REGRESSION, 0, 2.0},
        Case{v1::ModelSpec::COX_PH, 0, 2.0}}) {
    SCOPED_TRACE(c.kind);
    const proto::EvaluationLayout layout = Layout(c.kind, c.num_classes);
    ASSERT_EQ(proto::EvaluationRecordSensitivity(layout), c.delta);
    for (double sigma : {0.5, 5.0}) {
      for (uint32_t t : {1u, 4u, 7u}) {
        std::vector<double> samples;
        while (samples.size() < 40000) {
          std::vector<double> values(layout.length, 0.0);
          ASSERT_OK(AddEvaluationNoise(Spec(sigma), layout, t, &values));
          samples.insert(samples.end(), values.begin(), values.end());
        }
        ExpectNormal(samples, sigma * c.delta / std::sqrt(static_cast<double>(t)));
      }
    }
  }
}

TEST(SiteEvaluationNoiseTest, TSitesSumToSigmaTimesSensitivity) {
  const proto::EvaluationLayout layout = Layout(v1::ModelSpec::COX_PH);
  const uint32_t t = 5;
  std::vector<double> summed(layout.length, 0.0);
  for (uint32_t site = 0; site < t; ++site) {
    std::vector<double> values(layout.length, 0.0);
    ASSERT_OK(AddEvaluationNoise(Spec(3), layout, t, &values));
    for (size_t i = 0; i < values.size(); ++i) summed[i] += values[i];
  }
  ExpectNormal(summed, proto::EvaluationNoiseStddev(Spec(3), layout));
  EXPECT_EQ(proto::EvaluationNoiseStddev(Spec(3), layout), 6.0);
}

TEST(SiteEvaluationNoiseTest, FreshNoiseOnEveryCall) {
  const proto::EvaluationLayout layout = Layout(v1::ModelSpec::LOGISTIC_REGRESSION);
  std::vector<double> a(layout.length, 0.0), b(layout.length, 0.0);
  ASSERT_OK(AddEvaluationNoise(Spec(1), layout, 3, &a));
  ASSERT_OK(AddEvaluationNoise(Spec(1), layout, 3, &b));
  double dot = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NE(a[i], b[i]) << i;
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  // Independent draws: the correlation is ~N(0, 1/n).
  EXPECT_LT(std::abs(dot / std::sqrt(aa * bb)), 5 / std::sqrt(static_cast<double>(a.size())));
}

TEST(SiteEvaluationNoiseTest, WithinSitePairTermsAreNoiseOnly) {
  // A site's rows, encoded as WorkProcessor::Evaluate does when the task asks for noise.
  const proto::EvaluationLayout layout = Layout(v1::ModelSpec::LOGISTIC_REGRESSION);
  std::vector<double> p, y;
  for (int r = 0; r < 200; ++r) {
    p.push_back((r + 0.5) / 200);
    y.push_back(r % 3 == 0 ? 0 : 1);
  }
  proto::EvaluationInput input;
  input.predictions = p;
  input.labels = y;
  ASSERT_OK_AND_ASSIGN(std::vector<double> exact, proto::EncodeEvaluation(layout, input));
  ASSERT_GT(exact[3], 1000);  // the exact within-site AUC numerator
  input.for_noise = true;
  ASSERT_OK_AND_ASSIGN(std::vector<double> encoded, proto::EncodeEvaluation(layout, input));
  EXPECT_EQ(encoded[3], 0);  // exact numerator
  EXPECT_EQ(encoded[4], 0);  // binned numerator
  EXPECT_EQ(encoded[0], 200);
  // With the noise, the pair entries are pure noise (mean 0) and the count keeps its value.
  const double stddev = 1.0 * 2.0 / std::sqrt(2.0);
  std::vector<double> pair_entries, count_noise;
  for (int draw = 0; draw < 2000; ++draw) {
    std::vector<double> values = encoded;
    ASSERT_OK(AddEvaluationNoise(Spec(1), layout, 2, &values));
    pair_entries.push_back(values[3]);
    pair_entries.push_back(values[4]);
    count_noise.push_back(values[0] - 200);
  }
  ExpectNormal(pair_entries, stddev);
  ExpectNormal(count_noise, stddev);
}

TEST(SiteEvaluationNoiseTest, ZeroMultiplierAddsNothing) {
  const proto::EvaluationLayout layout = Layout(v1::ModelSpec::LINEAR_REGRESSION);
  std::vector<double> values = {3, 6, 1.5, 0.25, 2};
  ASSERT_OK(AddEvaluationNoise(Spec(0), layout, 2, &values));
  EXPECT_THAT(values, ::testing::ElementsAre(3, 6, 1.5, 0.25, 2));
}

TEST(SiteEvaluationNoiseTest, RefusesBadArgumentsAndLeavesTheValues) {
  const proto::EvaluationLayout layout = Layout(v1::ModelSpec::LINEAR_REGRESSION);
  const std::vector<double> original = {3, 0, 1.5, 0.25, 2};
  std::vector<double> values = original;
  EXPECT_THAT(AddEvaluationNoise(Spec(1), layout, 0, &values),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("threshold")));
  std::vector<double> short_values = {1, 2};
  EXPECT_THAT(AddEvaluationNoise(Spec(1), layout, 2, &short_values),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (double sigma : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_THAT(AddEvaluationNoise(Spec(sigma), layout, 2, &values),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << sigma;
  }
  EXPECT_EQ(values, original);
}

TEST(SiteEvaluationNoiseTest, TheLargestNoiseFitsTheEvaluationEncoding) {
  // The evaluation stage's encoding (coordinator/secure_stage.cc, EvaluateEncoding): one
  // WIDE segment, 16 fractional bits, 3 limbs of MaxBitsForParties(n) - 1 bits. At the
  // largest n the quantizer allows words for, and the largest noise validation accepts
  // (t = 1: a site adds all of it), every value still encodes and decodes exactly; the
  // codec never has to saturate (or, before it saturated, decline) on the noise.
  const uint32_t n = 16384;
  for (const proto::EvaluationLayout& layout :
       {Layout(v1::ModelSpec::MLP, 2), Layout(v1::ModelSpec::COX_PH)}) {
    v1::SecAggEncoding encoding;
    v1::SecAggSegment* wide = encoding.add_segments();
    wide->set_kind(v1::SecAggSegment::WIDE);
    wide->set_length(static_cast<uint32_t>(layout.length));
    wide->set_bits(crypto::MaxBitsForParties(n) - 1);
    wide->set_fraction_bits(16);
    wide->set_limbs(3);
    ASSERT_OK(secagg::ValidateEncoding(encoding, n));
    std::vector<double> values(layout.length, 0.0);
    ASSERT_OK(AddEvaluationNoise(Spec(proto::kMaxEvaluationNoiseMultiplier), layout, 1, &values));
    double largest = 0;
    for (double v : values) largest = std::max(largest, std::abs(v));
    EXPECT_GT(largest, 1e6);  // the noise is there
    ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words, secagg::EncodeVector(values, encoding));
    ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, secagg::DecodeSum(words, encoding));
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_NEAR(decoded[i], values[i], 0x1p-16) << i;
    }
    // The range is 2^34 at this n: thousands of the noise's standard deviations.
    EXPECT_GT(0x1p34 / (proto::kMaxEvaluationNoiseMultiplier *
                        proto::EvaluationRecordSensitivity(layout)),
              5000);
  }
}

// ---- Model-update noise ----

TEST(SiteUpdateNoiseTest, ClipsTheUpdateAddsSigmaCOverRootTAndKeepsTheWeight) {
  const v1::PrivacySpec spec = Spec(0);  // C = 0.5, sigma = 1.5
  const uint32_t t = 4;
  std::vector<double> noise;
  for (int draw = 0; draw < 200; ++draw) {
    // Update of norm 5 along the first axis: clipped to 0.5.
    std::vector<double> values(101, 0.0);
    values[0] = 0.25;
    values[1] = 5;
    ASSERT_OK(AddPrivacyNoise(spec, t, &values));
    EXPECT_EQ(values[0], 0.25);  // the weight is not noised
    noise.push_back(values[1] - 0.5);
    noise.insert(noise.end(), values.begin() + 2, values.end());
  }
  ExpectNormal(noise, 1.5 * 0.5 / 2);
}

TEST(SiteUpdateNoiseTest, UpdatesWithinTheClipAreNotScaledAndNoiseIsFresh) {
  v1::PrivacySpec spec = Spec(0);
  spec.set_noise_multiplier(1e-9);
  std::vector<double> a = {1, 0.3, -0.2}, b = a;
  ASSERT_OK(AddPrivacyNoise(spec, 1, &a));
  ASSERT_OK(AddPrivacyNoise(spec, 1, &b));
  EXPECT_NEAR(a[1], 0.3, 1e-8);
  EXPECT_NEAR(a[2], -0.2, 1e-8);
  EXPECT_NE(a[1], b[1]);
  EXPECT_NE(a[2], b[2]);
  std::vector<double> empty;
  EXPECT_THAT(AddPrivacyNoise(spec, 1, &empty), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AddPrivacyNoise(spec, 0, &a), StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---- Analytics noise ----

namespace analytics {

// x with a histogram over [0, 10, 20] in [-5, 30]; x again in [-40, 3]: m = 4 + 3 = 7,
// Delta = (1, 30, 900, 1, 1, 1, 1, 1, 40, 1600).
v1::TaskSpec Task(double sigma) {
  v1::TaskSpec spec;
  spec.set_name("q-dp");
  spec.mutable_dataset()->set_id("d");
  auto* q = spec.mutable_analytics()->add_queries();
  q->set_column("x");
  for (double e : {0.0, 10.0, 20.0}) q->add_histogram_edges(e);
  q->add_value_range(-5);
  q->add_value_range(30);
  q = spec.mutable_analytics()->add_queries();
  q->set_column("x");
  q->add_value_range(-40);
  q->add_value_range(3);
  spec.mutable_privacy()->set_noise_multiplier(sigma);
  spec.mutable_privacy()->set_epsilon_budget(10);
  spec.mutable_privacy()->set_delta(1e-5);
  return spec;
}

constexpr double kDelta[] = {1, 30, 900, 1, 1, 1, 1, 1, 40, 1600};

TEST(SiteAnalyticsNoiseTest, EachStatisticGetsSigmaRootMDeltaOverRootT) {
  for (double sigma : {0.5, 2.0}) {
    for (uint32_t t : {1u, 4u}) {
      const v1::TaskSpec spec = Task(sigma);
      ASSERT_EQ(proto::AnalyticsStatisticsLength(spec.analytics()), std::size(kDelta));
      std::vector<std::vector<double>> samples(std::size(kDelta));
      for (int draw = 0; draw < 4000; ++draw) {
        std::vector<double> values(std::size(kDelta), 0.0);
        ASSERT_OK(AddAnalyticsNoise(spec, t, &values));
        for (size_t i = 0; i < values.size(); ++i) samples[i].push_back(values[i]);
      }
      for (size_t i = 0; i < samples.size(); ++i) {
        SCOPED_TRACE(::testing::Message()
                     << "sigma " << sigma << ", t " << t << ", statistic " << i);
        ExpectNormal(samples[i], sigma * std::sqrt(7.0 / t) * kDelta[i]);
      }
    }
  }
}

TEST(SiteAnalyticsNoiseTest, FreshNoiseOnEveryCallAddedToTheValues) {
  const v1::TaskSpec spec = Task(1);
  const std::vector<double> base = {3, -7, 11, 1, 2, 0, 0, 3, 5, 8};
  std::vector<double> a = base, b = base;
  ASSERT_OK(AddAnalyticsNoise(spec, 3, &a));
  ASSERT_OK(AddAnalyticsNoise(spec, 3, &b));
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NE(a[i], b[i]) << i;
    EXPECT_NE(a[i], base[i]) << i;
    // Within 6 standard deviations of the value it was added to.
    EXPECT_LT(std::abs(a[i] - base[i]), 6 * std::sqrt(7.0 / 3) * kDelta[i]) << i;
  }
}

TEST(SiteAnalyticsNoiseTest, RefusesBadArgumentsAndLeavesTheValues) {
  std::vector<double> values(std::size(kDelta), 1.0);
  const std::vector<double> before = values;
  v1::TaskSpec no_privacy = Task(1);
  no_privacy.clear_privacy();
  EXPECT_THAT(AddAnalyticsNoise(no_privacy, 3, &values),
              StatusIs(absl::StatusCode::kInvalidArgument));
  v1::TaskSpec training = Task(1);
  training.clear_analytics();
  EXPECT_THAT(AddAnalyticsNoise(training, 3, &values),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AddAnalyticsNoise(Task(1), 0, &values), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<double> short_values(3, 1.0);
  EXPECT_THAT(AddAnalyticsNoise(Task(1), 3, &short_values),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(values, before);
  EXPECT_EQ(short_values, std::vector<double>(3, 1.0));
}

// A site with 40 patients under 80 and 3 of 80 or more, asked for the glucose of those
// of 80 or more (k = 10): the exact answer withholds the query, the noised one does not.
TEST(SiteAnalyticsNoiseTest, NothingIsWithheldWithNoise) {
  tessera::testing::TempDir temp;
  const std::string csv = temp.File("site.csv");
  std::string rows = "age,glucose\n";
  for (int i = 0; i < 40; ++i)
    rows += std::to_string(30 + i % 20) + "," + std::to_string(90 + i) + "\n";
  rows += "81,131.5\n82,142.25\n85,150.75\n";
  tessera::testing::WriteTestFile(csv, rows);
  v1::ClientConfig config;
  config.set_coordinator_address("localhost:1");
  config.add_datasets()->set_id("clinic");
  config.mutable_datasets(0)->set_train_csv(csv);
  proto::ApplyClientDefaults(&config);
  WorkProcessor site("site-a", config);

  v1::WorkItem item;
  item.set_task_id("task-1");
  item.set_round(1);
  item.set_stage(v1::STAGE_ANALYTICS);
  item.set_cohort_size(5);
  item.mutable_secagg()->mutable_setup()->set_threshold(4);
  v1::TaskSpec& spec = *item.mutable_spec();
  spec.set_name("over-80");
  spec.mutable_dataset()->set_id("clinic");
  auto* q = spec.mutable_analytics()->add_queries();
  q->set_column("glucose");
  q->add_value_range(0);
  q->add_value_range(300);
  spec.mutable_analytics()->mutable_filter()->set_column("age");
  spec.mutable_analytics()->mutable_filter()->set_op(v1::AnalyticsSpec::Filter::GE);
  spec.mutable_analytics()->mutable_filter()->set_value(80);
  spec.mutable_privacy()->set_noise_multiplier(1);
  spec.mutable_privacy()->set_epsilon_budget(10);
  spec.mutable_privacy()->set_delta(1e-5);
  proto::ApplyTaskDefaults(&spec);  // min_cell_size 10
  item.set_spec_hash(crypto::HashTaskSpec(spec));

  const WorkOutcome first = site.Process(item);
  ASSERT_TRUE(first.contribution.has_value()) << first.decline.detail();
  const WorkOutcome second = site.Process(item);
  ASSERT_TRUE(second.contribution.has_value()) << second.decline.detail();
  EXPECT_EQ(first.contribution->at(1), 0) << "the main cell is not withheld";
  EXPECT_NE(*first.contribution, *second.contribution) << "fresh noise for every answer";
  ASSERT_OK_AND_ASSIGN(std::vector<double> stats,
                       proto::AnalyticsStatistics(spec.analytics(), *first.contribution, true));
  // m = 3, t = 4: standard deviations sqrt(3/4) (count), 300 sqrt(3/4) (S) and
  // 90000 sqrt(3/4) (Q) around 3, 424.5 and 60378.125.
  const double s = std::sqrt(3.0 / 4);
  EXPECT_NEAR(stats[0], 3, 6 * s);
  EXPECT_NEAR(stats[1], 424.5, 6 * 300 * s);
  EXPECT_NEAR(stats[2], 131.5 * 131.5 + 142.25 * 142.25 + 150.75 * 150.75, 6 * 90000 * s);
  EXPECT_NE(stats[0], 3);

  // Without privacy (and without the ranges it needs) the site withholds the query.
  spec.clear_privacy();
  spec.mutable_analytics()->mutable_queries(0)->clear_value_range();
  item.set_spec_hash(crypto::HashTaskSpec(spec));
  const WorkOutcome exact = site.Process(item);
  ASSERT_TRUE(exact.contribution.has_value()) << exact.decline.detail();
  std::vector<double> withheld(proto::AnalyticsLength(spec.analytics()), 0.0);
  withheld[1] = 1;
  EXPECT_EQ(*exact.contribution, withheld);
}

}  // namespace analytics

}  // namespace
}  // namespace tessera::client
