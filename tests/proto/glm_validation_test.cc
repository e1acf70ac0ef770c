// Validation, defaults and layout of an exact regression task (ModelSpec.GlmSpec).
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/glm_layout.h"
#include "proto/task.pb.h"
#include "proto/validation.h"

namespace tessera::proto {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::TaskSpec GlmSpec() {
  v1::TaskSpec spec;
  spec.set_name("smoking-glm");
  spec.mutable_dataset()->set_id("smoking");
  spec.mutable_dataset()->add_features("ban");
  spec.mutable_dataset()->add_features("age");
  spec.mutable_dataset()->set_label("smoker");
  spec.mutable_model()->mutable_glm()->set_family(v1::GlmSpec::BINOMIAL);
  return spec;
}

std::vector<std::string> Paths(const v1::TaskSpec& spec) {
  std::vector<std::string> out;
  for (const auto& e : ValidateTaskSpec(spec)) out.push_back(e.path);
  return out;
}

TEST(GlmValidationTest, AGlmNeedsNoKindTrainingOrRoundsAndGetsRsDefaults) {
  v1::TaskSpec spec = GlmSpec();
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty());
  ApplyTaskDefaults(&spec);
  EXPECT_EQ(spec.model().kind(), v1::ModelSpec::GLM);
  EXPECT_EQ(spec.model().glm().link(), v1::GlmSpec::LOGIT);
  EXPECT_EQ(spec.model().glm().epsilon(), 1e-8);
  EXPECT_EQ(spec.rounds(), 25u);
  EXPECT_FALSE(spec.has_training());
  EXPECT_FALSE(spec.has_strategy());
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty());
  v1::TaskSpec again = spec;
  ApplyTaskDefaults(&again);
  EXPECT_EQ(again.SerializeAsString(), spec.SerializeAsString());

  v1::TaskSpec cox = GlmSpec();
  cox.mutable_model()->mutable_glm()->set_family(v1::GlmSpec::COX);
  cox.mutable_dataset()->set_event("event");
  EXPECT_THAT(ValidateTaskSpec(cox), IsEmpty());
  ApplyTaskDefaults(&cox);
  EXPECT_EQ(cox.model().glm().ties(), v1::GlmSpec::EFRON);
  EXPECT_EQ(cox.model().glm().epsilon(), 1e-9);
  EXPECT_EQ(cox.model().glm().link(), v1::GlmSpec::LINK_UNSPECIFIED);
}

struct Bad {
  std::string name;
  void (*mutate)(v1::TaskSpec*);
  std::string path;
};

class GlmBadSpecTest : public ::testing::TestWithParam<Bad> {};

TEST_P(GlmBadSpecTest, NamesTheField) {
  v1::TaskSpec spec = GlmSpec();
  GetParam().mutate(&spec);
  EXPECT_THAT(Paths(spec), Contains(GetParam().path));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GlmBadSpecTest,
    ::testing::Values(
        Bad{"NoFamily", [](v1::TaskSpec* s) { s->mutable_model()->mutable_glm()->clear_family(); },
            "model.glm.family"},
        Bad{"GlmKindWithoutGlm",
            [](v1::TaskSpec* s) {
              s->mutable_model()->clear_glm();
              s->mutable_model()->set_kind(v1::ModelSpec::GLM);
            },
            "model.glm"},
        Bad{"GlmOnAnotherKind",
            [](v1::TaskSpec* s) { s->mutable_model()->set_kind(v1::ModelSpec::MLP); }, "model.glm"},
        Bad{"NonCanonicalLink",
            [](v1::TaskSpec* s) { s->mutable_model()->mutable_glm()->set_link(v1::GlmSpec::LOG); },
            "model.glm.link"},
        Bad{"Training", [](v1::TaskSpec* s) { s->mutable_training()->set_learning_rate(0.1); },
            "training"},
        Bad{"Strategy",
            [](v1::TaskSpec* s) { s->mutable_strategy()->set_kind(v1::StrategySpec::FEDAVG); },
            "strategy"},
        Bad{"Privacy", [](v1::TaskSpec* s) { s->mutable_privacy()->set_noise_multiplier(1); },
            "privacy"},
        Bad{"Penalty", [](v1::TaskSpec* s) { s->mutable_model()->set_l2(0.1); }, "model.l2"},
        Bad{"TwoRounds", [](v1::TaskSpec* s) { s->set_rounds(2); }, "rounds"},
        Bad{"TooManyRounds", [](v1::TaskSpec* s) { s->set_rounds(101); }, "rounds"},
        Bad{"EpsilonTooLarge",
            [](v1::TaskSpec* s) { s->mutable_model()->mutable_glm()->set_epsilon(0.1); },
            "model.glm.epsilon"},
        Bad{"OffsetIsAFeature",
            [](v1::TaskSpec* s) { s->mutable_model()->mutable_glm()->set_offset("age"); },
            "model.glm.offset"},
        Bad{"WeightsAreTheLabel",
            [](v1::TaskSpec* s) { s->mutable_model()->mutable_glm()->set_weights("smoker"); },
            "model.glm.weights"},
        Bad{"LogOffsetWithoutOffset",
            [](v1::TaskSpec* s) { s->mutable_model()->mutable_glm()->set_log_offset(true); },
            "model.glm.log_offset"},
        Bad{"EventWithoutCox", [](v1::TaskSpec* s) { s->mutable_dataset()->set_event("e"); },
            "dataset.event"},
        Bad{"PooledGridWithoutCox",
            [](v1::TaskSpec* s) {
              s->mutable_model()->mutable_glm()->mutable_pooled_time_grid()->set_unit(30);
              s->mutable_model()->mutable_glm()->mutable_pooled_time_grid()->set_points(10);
            },
            "model.glm.pooled_time_grid"},
        Bad{"PooledGridWithoutAUnit",
            [](v1::TaskSpec* s) {
              s->mutable_model()->mutable_glm()->set_family(v1::GlmSpec::COX);
              s->mutable_dataset()->set_event("e");
              s->mutable_model()->mutable_glm()->mutable_pooled_time_grid()->set_points(10);
            },
            "model.glm.pooled_time_grid.unit"},
        Bad{"PooledGridTooFine",
            [](v1::TaskSpec* s) {
              s->mutable_model()->mutable_glm()->set_family(v1::GlmSpec::COX);
              s->mutable_dataset()->set_event("e");
              s->mutable_model()->mutable_glm()->mutable_pooled_time_grid()->set_unit(1);
              s->mutable_model()->mutable_glm()->mutable_pooled_time_grid()->set_points(100001);
            },
            "model.glm.pooled_time_grid.points"},
        Bad{"CoxWithoutEvent",
            [](v1::TaskSpec* s) {
              s->mutable_model()->mutable_glm()->set_family(v1::GlmSpec::COX);
            },
            "dataset.event"},
        Bad{"CoxWithFixedEffects",
            [](v1::TaskSpec* s) {
              s->mutable_model()->mutable_glm()->set_family(v1::GlmSpec::COX);
              s->mutable_dataset()->set_event("e");
              s->mutable_model()->mutable_glm()->set_site_fixed_effects(true);
            },
            "model.glm.site_fixed_effects"},
        Bad{"TiesWithoutCox",
            [](v1::TaskSpec* s) {
              s->mutable_model()->mutable_glm()->set_ties(v1::GlmSpec::BRESLOW);
            },
            "model.glm.ties"}),
    [](const ::testing::TestParamInfo<Bad>& info) { return info.param.name; });

TEST(GlmLayoutTest, CoefficientsAndContributionLength) {
  v1::TaskSpec spec = GlmSpec();
  EXPECT_EQ(*GlmCoefficientCount(spec, 3), 3u);
  EXPECT_THAT(*GlmCoefficientNames(spec, {"a", "b", "c"}),
              ElementsAre("(Intercept)", "ban", "age"));
  EXPECT_EQ(GlmContributionLength(spec, 3), 6u + 3u + 8u);

  spec.mutable_model()->mutable_glm()->set_site_fixed_effects(true);
  EXPECT_EQ(*GlmCoefficientCount(spec, 3), 5u);
  EXPECT_THAT(*GlmCoefficientNames(spec, {"a", "b", "c"}),
              ElementsAre("(Intercept):a", "(Intercept):b", "(Intercept):c", "ban", "age"));
  EXPECT_FALSE(GlmCoefficientCount(spec, 0).ok());

  spec.mutable_model()->mutable_glm()->set_site_fixed_effects(false);
  spec.mutable_model()->mutable_glm()->set_family(v1::GlmSpec::COX);
  EXPECT_THAT(*GlmCoefficientNames(spec, {}), ElementsAre("ban", "age"));
  EXPECT_EQ(GlmContributionLength(spec, 2), 1u + 2u + 3u + 2u);

  v1::TaskSpec other = GlmSpec();
  other.mutable_model()->clear_glm();
  other.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  EXPECT_FALSE(IsGlmTask(other));
  EXPECT_FALSE(GlmCoefficientCount(other, 3).ok());
}

}  // namespace
}  // namespace tessera::proto
