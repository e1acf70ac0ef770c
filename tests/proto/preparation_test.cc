// The rules of a task's data preparation (proto/preparation.h): names, file columns,
// validation and the pooled means of IMPUTE_MEAN columns.
#include "proto/preparation.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/contribution_layout.h"
#include "proto/task.pb.h"
#include "proto/validation.h"

namespace tessera::proto {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Prep = v1::ColumnPreparation;

v1::TaskSpec Spec() {
  v1::TaskSpec spec;
  spec.set_name("prepared");
  v1::DatasetSpec* ds = spec.mutable_dataset();
  ds->set_id("d");
  for (const char* f : {"age", "age:missing", "sex=female", "bmi"}) ds->add_features(f);
  ds->set_label("y");
  Prep* age = ds->add_prepare();
  age->set_column("age");
  age->set_missing(Prep::INDICATOR);
  Prep* sex = ds->add_prepare();
  sex->set_column("sex");
  sex->add_levels("male");
  sex->add_levels("female");
  Prep* bmi = ds->add_prepare();
  bmi->set_column("bmi");
  bmi->set_missing(Prep::IMPUTE_MEAN);
  bmi->set_transform(Prep::LOG);
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.mutable_training()->set_learning_rate(0.1);
  spec.set_rounds(3);
  return spec;
}

std::vector<std::string> Paths(const v1::TaskSpec& spec) {
  std::vector<std::string> out;
  for (const auto& e : ValidateTaskSpec(spec)) out.push_back(e.path);
  return out;
}

TEST(PreparationTest, NamesResolveToTheirFileColumns) {
  const v1::TaskSpec spec = Spec();
  EXPECT_THAT(ValidateTaskSpec(spec), IsEmpty());
  const v1::DatasetSpec& ds = spec.dataset();
  EXPECT_EQ(ResolveName(ds, "sex=female")->column, "sex");
  EXPECT_EQ(ResolveName(ds, "sex=female")->level, 1);
  EXPECT_EQ(ResolveName(ds, "age:missing")->kind, PreparedName::Kind::kMissingIndicator);
  EXPECT_EQ(ResolveName(ds, "bmi")->preparation->missing(), Prep::IMPUTE_MEAN);
  EXPECT_EQ(ResolveName(ds, "ban")->preparation, nullptr);
  EXPECT_FALSE(ResolveName(ds, "sex").has_value());       // the categorical column itself
  EXPECT_FALSE(ResolveName(ds, "sex=male").has_value());  // the reference level
  EXPECT_FALSE(ResolveName(ds, "sex=other").has_value());
  EXPECT_THAT(FileColumns(spec), ElementsAre("age", "bmi", "sex", "y"));
  EXPECT_EQ(ImputedMeanEntries(ds).size(), 1u);
}

struct Bad {
  std::string name;
  void (*mutate)(v1::TaskSpec*);
  std::string path;
};

class BadPreparationTest : public ::testing::TestWithParam<Bad> {};

TEST_P(BadPreparationTest, NamesTheField) {
  v1::TaskSpec spec = Spec();
  GetParam().mutate(&spec);
  EXPECT_THAT(Paths(spec), Contains(GetParam().path));
}

Prep* Entry(v1::TaskSpec* s, int i) { return s->mutable_dataset()->mutable_prepare(i); }

INSTANTIATE_TEST_SUITE_P(
    Cases, BadPreparationTest,
    ::testing::Values(
        Bad{"TheCategoricalColumnItself",
            [](v1::TaskSpec* s) { s->mutable_dataset()->add_features("sex"); },
            "dataset.features[4]"},
        Bad{"AnUndeclaredLevel",
            [](v1::TaskSpec* s) { s->mutable_dataset()->set_features(2, "sex=other"); },
            "dataset.features[2]"},
        Bad{"PreparedTwice",
            [](v1::TaskSpec* s) { *s->mutable_dataset()->add_prepare() = *Entry(s, 0); },
            "dataset.prepare[3].column"},
        Bad{"StandardizeForATrainedModel",
            [](v1::TaskSpec* s) { Entry(s, 2)->set_standardize(true); },
            "dataset.prepare[2].standardize"},
        Bad{"StandardizeACategoricalColumn",
            [](v1::TaskSpec* s) {
              s->clear_training();
              s->mutable_model()->Clear();
              s->mutable_model()->mutable_glm()->set_family(v1::GlmSpec::BINOMIAL);
              s->set_rounds(0);
              Entry(s, 1)->set_standardize(true);
            },
            "dataset.prepare[1].standardize"},
        Bad{"OneLevel", [](v1::TaskSpec* s) { Entry(s, 1)->mutable_levels()->RemoveLast(); },
            "dataset.prepare[1].levels"},
        Bad{"RepeatedLevel", [](v1::TaskSpec* s) { Entry(s, 1)->add_levels("male"); },
            "dataset.prepare[1].levels"},
        Bad{"CategoricalWithATransform",
            [](v1::TaskSpec* s) { Entry(s, 1)->set_transform(Prep::LOG); },
            "dataset.prepare[1].transform"},
        Bad{"CategoricalMeanImputed",
            [](v1::TaskSpec* s) { Entry(s, 1)->set_missing(Prep::IMPUTE_MEAN); },
            "dataset.prepare[1].missing"},
        Bad{"ABadClip",
            [](v1::TaskSpec* s) {
              Entry(s, 2)->add_clip(5);
              Entry(s, 2)->add_clip(1);
            },
            "dataset.prepare[2].clip"},
        Bad{"AnImputedLabel",
            [](v1::TaskSpec* s) {
              Prep* y = s->mutable_dataset()->add_prepare();
              y->set_column("y");
              y->set_missing(Prep::IMPUTE_CONSTANT);
            },
            "dataset.prepare[3].missing"},
        Bad{"AnUnusedColumn",
            [](v1::TaskSpec* s) { s->mutable_dataset()->add_prepare()->set_column("notes"); },
            "dataset.prepare[3].column"},
        Bad{"MeanImputedButNoFeature",
            [](v1::TaskSpec* s) {
              s->mutable_dataset()->set_features(3, "age");
              s->mutable_dataset()->mutable_features()->RemoveLast();
              s->mutable_dataset()->add_features("bmi:missing");
            },
            "dataset.prepare[2].missing"},
        Bad{"OnAnAnalyticsTask",
            [](v1::TaskSpec* s) {
              s->clear_model();
              s->clear_training();
              s->mutable_analytics()->add_queries()->set_column("age");
            },
            "dataset.prepare"}),
    [](const ::testing::TestParamInfo<Bad>& info) { return info.param.name; });

TEST(PreparationTest, PooledMeansAreThoseOfThePresentCellsAndTheSpreadIsOverAllRows) {
  v1::TaskSpec spec = Spec();
  // Pooled over 4 rows: bmi present in 2 (values 2 and 4, the 2 missing counted as 0),
  // the other features anything.
  const size_t d = 4;
  std::vector<double> summed =
      EncodeStatistics(4, std::vector<double>{1, 1, 1, 6}, std::vector<double>{1, 1, 1, 20});
  summed.push_back(2);  // bmi's present cells
  PooledStatistics pooled;
  pooled.num_rows = 4;
  pooled.mean.assign(d, 0);
  pooled.stddev.assign(d, 1);
  absl::StatusOr<PooledImputations> pooled_imputations =
      PoolImputations(spec.dataset(), summed, d, &pooled);
  ASSERT_TRUE(pooled_imputations.ok()) << pooled_imputations.status();
  EXPECT_THAT(pooled_imputations->means, ElementsAre(3.0));
  EXPECT_THAT(pooled_imputations->modes, IsEmpty());
  EXPECT_EQ(pooled.mean[3], 3.0);
  // Imputed column {2, 4, 3, 3}: variance 0.5.
  EXPECT_DOUBLE_EQ(pooled.stddev[3], std::sqrt(0.5));
  summed.back() = 0;
  EXPECT_FALSE(PoolImputations(spec.dataset(), summed, d, &pooled).ok());
  summed.back() = 2.5;
  EXPECT_FALSE(PoolImputations(spec.dataset(), summed, d, &pooled).ok());
  summed.pop_back();
  EXPECT_FALSE(PoolImputations(spec.dataset(), summed, d, &pooled).ok());
}

TEST(PreparationTest, PooledModeIsTheMostFrequentLevelAndItsOneHotColumnGainsTheMissing) {
  v1::TaskSpec spec = Spec();
  spec.mutable_dataset()->mutable_prepare(1)->set_missing(Prep::IMPUTE_MODE);
  spec.mutable_dataset()->mutable_prepare(2)->set_missing(Prep::DROP_ROW);
  ASSERT_THAT(ValidateTaskSpec(spec), IsEmpty());
  EXPECT_EQ(ImputationCountLength(spec.dataset()), 2u);  // sex's two levels
  // 10 rows: 3 male, 5 female, 2 missing; feature 2 is "sex=female" (its sum 5 so far).
  const size_t d = 4;
  std::vector<double> summed =
      EncodeStatistics(10, std::vector<double>{1, 1, 5, 1}, std::vector<double>{1, 1, 5, 1});
  summed.push_back(3);
  summed.push_back(5);
  PooledStatistics pooled;
  pooled.num_rows = 10;
  pooled.mean.assign(d, 0);
  pooled.stddev.assign(d, 1);
  absl::StatusOr<PooledImputations> out = PoolImputations(spec.dataset(), summed, d, &pooled);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->modes, ElementsAre(1u));  // female
  EXPECT_DOUBLE_EQ(pooled.mean[2], 0.7);     // 5 + the 2 imputed, of 10
  EXPECT_DOUBLE_EQ(pooled.stddev[2], std::sqrt(0.7 * 0.3));
  // A tie goes to the level declared first; more counts than rows are refused.
  summed[summed.size() - 2] = 5;
  EXPECT_THAT(PoolImputations(spec.dataset(), summed, d, &pooled)->modes, ElementsAre(0u));
  summed[summed.size() - 2] = 8;
  EXPECT_FALSE(PoolImputations(spec.dataset(), summed, d, &pooled).ok());
  v1::TaskSpec numeric = Spec();
  numeric.mutable_dataset()->mutable_prepare(2)->set_missing(Prep::IMPUTE_MODE);
  EXPECT_THAT(Paths(numeric), Contains("dataset.prepare[2].missing"));
}

}  // namespace
}  // namespace tessera::proto
