#include "proto/validation.h"

#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/task.pb.h"

namespace tessera::proto {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::TaskSpec ValidSpec() {
  v1::TaskSpec spec;
  spec.set_name("breast-cancer.lr");
  spec.mutable_dataset()->set_id("breast_cancer");
  spec.mutable_dataset()->add_features("a");
  spec.mutable_dataset()->add_features("b");
  spec.mutable_dataset()->set_label("y");
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.mutable_training()->set_learning_rate(0.1);
  spec.set_rounds(5);
  return spec;
}

std::vector<std::string> Paths(const std::vector<common::FieldError>& errors) {
  std::vector<std::string> out;
  out.reserve(errors.size());
  for (const auto& e : errors) out.push_back(e.path);
  return out;
}

TEST(ValidateTaskSpecTest, ValidSpecHasNoErrors) {
  EXPECT_THAT(ValidateTaskSpec(ValidSpec()), IsEmpty());
}

struct BadCase {
  std::string name;
  void (*mutate)(v1::TaskSpec*);
  std::string path;
};

class BadTaskSpecTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadTaskSpecTest, NamesTheField) {
  v1::TaskSpec spec = ValidSpec();
  GetParam().mutate(&spec);
  EXPECT_THAT(Paths(ValidateTaskSpec(spec)), ::testing::Contains(GetParam().path));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadTaskSpecTest,
    ::testing::Values(
        BadCase{"NoName", [](v1::TaskSpec* s) { s->clear_name(); }, "name"},
        BadCase{"ApprovalTimeoutOverThirtyDays",
                [](v1::TaskSpec* s) { s->set_approval_timeout_seconds(30 * 24 * 3600 + 1); },
                "approval_timeout_seconds"},
        BadCase{"NameWithSpace", [](v1::TaskSpec* s) { s->set_name("a b"); }, "name"},
        BadCase{"NoDataset", [](v1::TaskSpec* s) { s->clear_dataset(); }, "dataset"},
        BadCase{"UppercaseDatasetId",
                [](v1::TaskSpec* s) { s->mutable_dataset()->set_id("BC"); }, "dataset.id"},
        BadCase{"NoFeatures",
                [](v1::TaskSpec* s) { s->mutable_dataset()->clear_features(); },
                "dataset.features"},
        BadCase{"DuplicateFeature",
                [](v1::TaskSpec* s) { s->mutable_dataset()->add_features("a"); },
                "dataset.features[2]"},
        BadCase{"LabelIsFeature",
                [](v1::TaskSpec* s) { s->mutable_dataset()->set_label("a"); }, "dataset.label"},
        BadCase{"NoModelKind", [](v1::TaskSpec* s) { s->mutable_model()->clear_kind(); },
                "model.kind"},
        BadCase{"NegativeL2", [](v1::TaskSpec* s) { s->mutable_model()->set_l2(-1); },
                "model.l2"},
        BadCase{"BothRegularisers",
                [](v1::TaskSpec* s) {
                  s->mutable_model()->set_l2(1);
                  s->mutable_model()->set_inverse_regularization(1);
                },
                "model.inverse_regularization"},
        BadCase{"NegativeLearningRate",
                [](v1::TaskSpec* s) { s->mutable_training()->set_learning_rate(-0.1); },
                "training.learning_rate"},
        BadCase{"NanLearningRate",
                [](v1::TaskSpec* s) { s->mutable_training()->set_learning_rate(NAN); },
                "training.learning_rate"},
        BadCase{"ZeroRounds", [](v1::TaskSpec* s) { s->set_rounds(0); }, "rounds"},
        BadCase{"HugeDeadline", [](v1::TaskSpec* s) { s->set_round_deadline_seconds(100000); },
                "round_deadline_seconds"},
        BadCase{"UnknownModelKind",
                [](v1::TaskSpec* s) {
                  s->mutable_model()->set_kind(static_cast<v1::ModelSpec::Kind>(42));
                },
                "model.kind"},
        BadCase{"SoftmaxWithoutClasses",
                [](v1::TaskSpec* s) { s->mutable_model()->set_kind(v1::ModelSpec::SOFTMAX_REGRESSION); },
                "model.num_classes"},
        BadCase{"MlpWithoutHiddenLayers",
                [](v1::TaskSpec* s) {
                  s->mutable_model()->set_kind(v1::ModelSpec::MLP);
                  s->mutable_model()->set_num_classes(2);
                },
                "model.hidden_layers"},
        BadCase{"CoxWithoutEvent",
                [](v1::TaskSpec* s) { s->mutable_model()->set_kind(v1::ModelSpec::COX_PH); },
                "dataset.event"},
        BadCase{"MomentumOutOfRange",
                [](v1::TaskSpec* s) { s->mutable_training()->set_momentum(1.5); },
                "training.momentum"},
        BadCase{"NegativeProximalMu",
                [](v1::TaskSpec* s) { s->mutable_training()->set_proximal_mu(-1); },
                "training.proximal_mu"},
        BadCase{"EpsilonWithoutDelta",
                [](v1::TaskSpec* s) {
                  s->mutable_privacy()->set_clip_norm(1);
                  s->mutable_privacy()->set_noise_multiplier(1);
                  s->mutable_privacy()->set_epsilon_budget(3);
                },
                "privacy.delta"},
        BadCase{"ClipTooSmallForTheNoise",
                [](v1::TaskSpec* s) {
                  s->mutable_privacy()->set_clip_norm(1);
                  s->mutable_privacy()->set_noise_multiplier(2);
                  s->mutable_privacy()->set_epsilon_budget(3);
                  s->mutable_privacy()->set_delta(1e-5);
                  s->mutable_secure_aggregation()->set_clip(5);
                },
                "secure_aggregation.clip"},
        BadCase{"AnalyticsWithAModel",
                [](v1::TaskSpec* s) { s->mutable_analytics()->add_queries()->set_column("a"); },
                "model"},
        BadCase{"ThresholdBelowMinClients",
                [](v1::TaskSpec* s) {
                  s->set_min_clients(5);
                  s->mutable_secure_aggregation()->set_threshold(3);
                },
                "secure_aggregation.threshold"},
        BadCase{"ThresholdNoCohortOfMinClientsAccepts",
                [](v1::TaskSpec* s) {
                  s->set_min_clients(6);
                  // floor(2 * 6 / 3) + 1 = 5: no cohort of 6 or more sites accepts 4.
                  s->mutable_secure_aggregation()->set_threshold(4);
                },
                "secure_aggregation.threshold"},
        BadCase{"SecAggPlusFewerThanFourSites",
                [](v1::TaskSpec* s) {
                  s->mutable_secure_aggregation()->mutable_secagg_plus()->set_min_sites(3);
                },
                "secure_aggregation.secagg_plus.min_sites"},
        BadCase{"SecAggPlusAThirdColluding",
                [](v1::TaskSpec* s) {
                  auto* plus = s->mutable_secure_aggregation()->mutable_secagg_plus();
                  plus->set_min_sites(200);
                  plus->set_colluding_fraction(0.34);
                },
                "secure_aggregation.secagg_plus.colluding_fraction"},
        BadCase{"SecAggPlusDropoutNotAFraction",
                [](v1::TaskSpec* s) {
                  auto* plus = s->mutable_secure_aggregation()->mutable_secagg_plus();
                  plus->set_min_sites(200);
                  plus->set_colluding_fraction(0.05);
                  plus->set_dropout_fraction(1);
                },
                "secure_aggregation.secagg_plus.dropout_fraction"},
        BadCase{"BadFeatureRange",
                [](v1::TaskSpec* s) { s->mutable_dataset()->add_features("px{9..3}"); },
                "dataset.features[2]"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(ApplyTaskDefaultsTest, FillsDefaultsAndIsIdempotent) {
  v1::TaskSpec spec = ValidSpec();
  ApplyTaskDefaults(&spec);
  EXPECT_EQ(spec.training().local_epochs(), 1u);
  EXPECT_EQ(spec.training().batch_size(), 32u);
  EXPECT_EQ(spec.min_clients(), 2u);
  EXPECT_EQ(spec.round_deadline_seconds(), 300u);
  // Not filled in: the spec hash of a task without it stays what it was.
  EXPECT_EQ(spec.approval_timeout_seconds(), 0u);
  EXPECT_EQ(spec.strategy().kind(), v1::StrategySpec::FEDAVG);
  EXPECT_EQ(spec.strategy().server_learning_rate(), 1.0);
  v1::TaskSpec again = spec;
  ApplyTaskDefaults(&again);
  EXPECT_EQ(again.SerializeAsString(), spec.SerializeAsString());
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty());
}

TEST(ApplyTaskDefaultsTest, SecAggPlusGetsFivePercentOfEachAndValidates) {
  v1::TaskSpec spec = ValidSpec();
  spec.mutable_secure_aggregation()->mutable_secagg_plus()->set_min_sites(200);
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty()) << "0 stands for the default";
  ApplyTaskDefaults(&spec);
  EXPECT_EQ(spec.secure_aggregation().secagg_plus().colluding_fraction(), 0.05);
  EXPECT_EQ(spec.secure_aggregation().secagg_plus().dropout_fraction(), 0.05);
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty());
}

TEST(ExpandFeatureRangesTest, RangesNameEveryColumnAndDefaultsExpandThem) {
  v1::TaskSpec spec = ValidSpec();
  spec.mutable_dataset()->clear_features();
  spec.mutable_dataset()->add_features("px{0..2}_raw");
  spec.mutable_dataset()->add_features("age");
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty());
  ApplyTaskDefaults(&spec);
  EXPECT_THAT(spec.dataset().features(),
              ::testing::ElementsAre("px0_raw", "px1_raw", "px2_raw", "age"));
  // A range that names a column twice is caught after expansion.
  spec.mutable_dataset()->add_features("px{1..1}_raw");
  EXPECT_THAT(Paths(ValidateTaskSpec(spec)), ::testing::Contains("dataset.features[4]"));
}

TEST(ValidateTaskSpecTest, AnalyticsTaskNeedsNoModelAndGetsOneRound) {
  v1::TaskSpec spec;
  spec.set_name("q");
  spec.mutable_dataset()->set_id("rotterdam");
  auto* q = spec.mutable_analytics()->add_queries();
  q->set_column("age");
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty());
  ApplyTaskDefaults(&spec);
  EXPECT_EQ(spec.rounds(), 1u);
  EXPECT_EQ(spec.analytics().min_cohort(), spec.min_clients());
  EXPECT_FALSE(spec.has_training());
  spec.set_rounds(3);
  EXPECT_THAT(Paths(ValidateTaskSpec(spec)), ::testing::Contains("rounds"));
}

TEST(ApplyTaskDefaultsTest, AdaptiveStrategiesGetTheirOwnDefaults) {
  v1::TaskSpec spec = ValidSpec();
  spec.mutable_strategy()->set_kind(v1::StrategySpec::FEDADAM);
  spec.mutable_strategy()->set_beta1(0);  // an explicit zero is kept
  ApplyTaskDefaults(&spec);
  EXPECT_EQ(spec.strategy().server_learning_rate(), 0.01);
  EXPECT_EQ(spec.strategy().beta1(), 0.0);
  EXPECT_EQ(spec.strategy().beta2(), 0.99);
  EXPECT_EQ(spec.strategy().tau(), 1e-3);
  EXPECT_EQ(spec.secure_aggregation().clip(), 10.0);
}

TEST(ValidateTaskSpecTest, EvaluationNoiseMultiplierIsFiniteAndNonNegative) {
  v1::TaskSpec spec = ValidSpec();
  v1::PrivacySpec* p = spec.mutable_privacy();
  p->set_clip_norm(0.1);
  p->set_noise_multiplier(1.5);
  p->set_epsilon_budget(10);
  p->set_delta(1e-5);
  // Unset (0: evaluation sums exact), a typical value and the upper bound are accepted.
  for (double sigma : {0.0, 0.5, 5.0, 1e6}) {
    p->set_evaluation_noise_multiplier(sigma);
    EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty()) << sigma;
  }
  for (double sigma :
       {-1e-9, -1.0, 1e6 * (1 + 1e-12), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    p->set_evaluation_noise_multiplier(sigma);
    EXPECT_THAT(Paths(ValidateTaskSpec(spec)),
                ::testing::ElementsAre("privacy.evaluation_noise_multiplier"))
        << sigma;
  }
}

// An analytics task with record-level DP: two queries, each with its value_range.
v1::TaskSpec NoisedQuery() {
  v1::TaskSpec spec;
  spec.set_name("q-dp");
  spec.mutable_dataset()->set_id("diabetes");
  for (const char* column : {"bmi", "s5"}) {
    auto* q = spec.mutable_analytics()->add_queries();
    q->set_column(column);
    q->add_value_range(0);
    q->add_value_range(60);
  }
  v1::PrivacySpec* p = spec.mutable_privacy();
  p->set_noise_multiplier(1);
  p->set_epsilon_budget(6);
  p->set_delta(1e-5);
  return spec;
}

TEST(ValidateTaskSpecTest, AnalyticsPrivacyTakesNoiseBudgetAndRangesOnly) {
  EXPECT_THAT(ValidateTaskSpec(NoisedQuery()), IsEmpty());
  {
    v1::TaskSpec spec = NoisedQuery();
    ApplyTaskDefaults(&spec);
    EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty()) << "defaults keep it valid";
  }
  // Training-only fields, each named.
  v1::TaskSpec clip = NoisedQuery();
  clip.mutable_privacy()->set_clip_norm(1);
  EXPECT_THAT(Paths(ValidateTaskSpec(clip)), ::testing::ElementsAre("privacy.clip_norm"));
  v1::TaskSpec evaluation = NoisedQuery();
  evaluation.mutable_privacy()->set_evaluation_noise_multiplier(2);
  EXPECT_THAT(Paths(ValidateTaskSpec(evaluation)),
              ::testing::ElementsAre("privacy.evaluation_noise_multiplier"));
  // The noise multiplier, budget and delta are required and bounded.
  for (double sigma : {0.0, -1.0, 1e6 * (1 + 1e-12), std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
    v1::TaskSpec spec = NoisedQuery();
    spec.mutable_privacy()->set_noise_multiplier(sigma);
    EXPECT_THAT(Paths(ValidateTaskSpec(spec)), ::testing::ElementsAre("privacy.noise_multiplier"))
        << sigma;
  }
  v1::TaskSpec largest = NoisedQuery();
  largest.mutable_privacy()->set_noise_multiplier(1e6);
  EXPECT_THAT(ValidateTaskSpec(largest), IsEmpty());
  v1::TaskSpec budget = NoisedQuery();
  budget.mutable_privacy()->clear_epsilon_budget();
  budget.mutable_privacy()->clear_delta();
  EXPECT_THAT(Paths(ValidateTaskSpec(budget)),
              ::testing::ElementsAre("privacy.epsilon_budget", "privacy.delta"));
}

TEST(ValidateTaskSpecTest, AnalyticsValueRangeIsRequiredWithNoiseAndWellFormed) {
  v1::TaskSpec missing = NoisedQuery();
  missing.mutable_analytics()->mutable_queries(1)->clear_value_range();
  EXPECT_THAT(Paths(ValidateTaskSpec(missing)),
              ::testing::ElementsAre("analytics.queries[1].value_range"));
  // Without privacy a range is refused: exact answers are not clipped.
  v1::TaskSpec exact = NoisedQuery();
  exact.clear_privacy();
  EXPECT_THAT(Paths(ValidateTaskSpec(exact)),
              ::testing::ElementsAre("analytics.queries[0].value_range",
                                     "analytics.queries[1].value_range"));
  exact.mutable_analytics()->mutable_queries(0)->clear_value_range();
  exact.mutable_analytics()->mutable_queries(1)->clear_value_range();
  EXPECT_THAT(ValidateTaskSpec(exact), IsEmpty());
  // Malformed ranges, each named (the filter's column needs none).
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::vector<double>> bad = {{1},
                                                {1, 2, 3},
                                                {2, 1},
                                                {1, 1},
                                                {0, inf},
                                                {-inf, 0},
                                                {0, std::numeric_limits<double>::quiet_NaN()},
                                                {0, 1e101},
                                                {0, 1e-101},
                                                {-1e-101, 1e-101}};
  for (const std::vector<double>& range : bad) {
    v1::TaskSpec spec = NoisedQuery();
    spec.mutable_analytics()->mutable_queries(0)->clear_value_range();
    for (double v : range) spec.mutable_analytics()->mutable_queries(0)->add_value_range(v);
    EXPECT_THAT(Paths(ValidateTaskSpec(spec)),
                ::testing::ElementsAre("analytics.queries[0].value_range"))
        << ::testing::PrintToString(range);
  }
  for (const std::vector<double>& range :
       std::vector<std::vector<double>>{{-1e100, 1e100}, {0, 1e-100}, {-5, -4}, {-0.5, 0}}) {
    v1::TaskSpec spec = NoisedQuery();
    spec.mutable_analytics()->mutable_queries(0)->clear_value_range();
    for (double v : range) spec.mutable_analytics()->mutable_queries(0)->add_value_range(v);
    EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty()) << ::testing::PrintToString(range);
  }
  v1::TaskSpec filtered = NoisedQuery();
  filtered.mutable_analytics()->mutable_filter()->set_column("age");
  filtered.mutable_analytics()->mutable_filter()->set_op(v1::AnalyticsSpec::Filter::GE);
  filtered.mutable_analytics()->mutable_filter()->set_value(40);
  EXPECT_THAT(ValidateTaskSpec(filtered), IsEmpty());
}

TEST(ValidateClientConfigTest, NamesEveryBadField) {
  v1::ClientConfig config;
  config.set_coordinator_address("nohost");
  auto* d = config.add_datasets();
  d->set_id("x");
  config.add_datasets()->set_id("x");
  config.mutable_policy()->add_allowed_spec_hashes("ABC");
  config.mutable_policy()->set_min_secagg_plus_colluding_fraction(0.01);
  auto paths = Paths(ValidateClientConfig(config));
  EXPECT_THAT(paths, ::testing::IsSupersetOf({"coordinator_address", "tls", "datasets[0].train_csv",
                                              "datasets[1].id", "policy.allowed_spec_hashes[0]",
                                              "policy.min_secagg_plus_colluding_fraction"}));
}

TEST(ValidateCoordinatorConfigTest, RequiresDataDirAndTls) {
  v1::CoordinatorConfig config;
  config.set_listen_address("127.0.0.1:99999");
  auto paths = Paths(ValidateCoordinatorConfig(config));
  EXPECT_THAT(paths, ::testing::IsSupersetOf({"listen_address", "data_dir", "tls"}));
  config.set_listen_address("127.0.0.1:0");
  config.set_data_dir("/tmp/x");
  config.mutable_tls()->set_ca_cert("ca.pem");
  config.mutable_tls()->set_cert("c.pem");
  config.mutable_tls()->set_key("k.pem");
  EXPECT_THAT(ValidateCoordinatorConfig(config), IsEmpty());
}

TEST(ValidateMonitoringConfigTest, MetricsListenerIsLoopbackUnlessAllowedAndLogFormatIsKnown) {
  v1::CoordinatorConfig config;
  config.set_data_dir("/tmp/x");
  config.mutable_tls()->set_ca_cert("ca.pem");
  config.mutable_tls()->set_cert("c.pem");
  config.mutable_tls()->set_key("k.pem");
  for (const char* ok : {"127.0.0.1:0", "127.0.0.1:9464", "localhost:9100", "[::1]:9464"}) {
    config.set_metrics_listen_address(ok);
    EXPECT_THAT(ValidateCoordinatorConfig(config), IsEmpty()) << ok;
  }
  config.set_metrics_listen_address("0.0.0.0:9464");
  EXPECT_THAT(Paths(ValidateCoordinatorConfig(config)), ElementsAre("metrics_listen_address"));
  config.set_metrics_allow_remote(true);
  EXPECT_THAT(ValidateCoordinatorConfig(config), IsEmpty());
  config.set_metrics_listen_address("no-port");
  EXPECT_THAT(Paths(ValidateCoordinatorConfig(config)), ElementsAre("metrics_listen_address"));
  config.set_metrics_listen_address("");
  config.set_log_format("xml");
  EXPECT_THAT(Paths(ValidateCoordinatorConfig(config)), ElementsAre("log_format"));
  config.set_log_format("json");
  EXPECT_THAT(ValidateCoordinatorConfig(config), IsEmpty());

  v1::ClientConfig client;
  client.set_metrics_listen_address("10.0.0.5:9464");
  client.set_log_format("text");
  EXPECT_THAT(Paths(ValidateClientConfig(client)),
              ::testing::IsSupersetOf({"metrics_listen_address", "log_format"}));
}

}  // namespace
}  // namespace tessera::proto
