// Attack 4 of the privacy issue: analytics singles out a person. The minimum cohort counted
// sites, not people: a filter that keeps one row of the whole federation returned that
// person's exact values, and a query over a handful of rows their mean and variance.
//
// The fix: each site withholds every cell in which it holds between 1 and k - 1 rows (k the
// task's minimum cell size, at least the site's own), so even a coordinator that ignores
// the release rule never unmasks a sum over fewer than k of one site's rows; an honest
// coordinator also suppresses every cell below k rows federation-wide.
#include <cmath>
#include <string>
#include <vector>

#include "client/csv.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/validation.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

AttackData Diabetes() {
  AttackData data;
  data.csv = "deploy/data/diabetes_progression.csv";
  data.test_rows = "deploy/data/splits/diabetes_progression.test_rows.txt";
  data.dataset_id = "diabetes";
  return data;
}

absl::StatusOr<v1::TaskSpec> Query(const std::string& filter_column, double at_least) {
  v1::TaskSpec spec;
  RETURN_IF_ERROR(
      common::ParseTextProto(absl::StrCat(R"pb(
                                            name: "single-out"
                                            dataset { id: "diabetes" }
                                            analytics { queries { column: "s6" }
                                                        queries { column: "age" }
                                                        filter { column: ")pb",
                                          filter_column, R"pb(" op: GE value: )pb", at_least, R"pb(}
                                                                                                   min_cohort: 3
        }
        min_clients: 3
      )pb"),
                             "query", &spec, nullptr));
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec), "query", nullptr));
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

// The rows of the whole file whose `column` is at least `at_least`, as (s6, age).
std::vector<std::pair<double, double>> KeptRows(const std::string& column, double at_least) {
  auto table = client::LoadCsv(SourcePath("deploy/data/diabetes_progression.csv"));
  EXPECT_OK(table.status());
  std::vector<std::pair<double, double>> kept;
  auto index = [&](const std::string& name) {
    return std::find(table->header.begin(), table->header.end(), name) - table->header.begin();
  };
  const size_t w = table->header.size();
  for (size_t r = 0; r < table->num_rows; ++r) {
    if (table->values[r * w + index(column)] >= at_least) {
      kept.emplace_back(table->values[r * w + index("s6")], table->values[r * w + index("age")]);
    }
  }
  return kept;
}

class AnalyticsAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(3, Diabetes()));
  }

  // Runs the query over every site as a coordinator that ignores any release rule: the
  // unmasked sum, as the coordinator holds it.
  std::vector<double> Unmask(const v1::TaskSpec& spec) {
    StagePlan plan;
    plan.stage = v1::STAGE_ANALYTICS;
    plan.cohort = federation_->ids();
    plan.spec = spec;
    const StageOutcome outcome = RunStage(*federation_, plan);
    EXPECT_TRUE(outcome.completed) << outcome.abort;
    EXPECT_EQ(outcome.sums.size(), proto::AnalyticsLength(spec.analytics()));
    return outcome.sums;
  }

  // The entries of query `q`'s main cell (queries without histograms: 10 values each): the
  // count, the number of sites that withheld it, then the parts of the sum and of the sum of
  // squares.
  static std::vector<double> MainCell(const std::vector<double>& sums, int q) {
    if (sums.size() < 10 * (static_cast<size_t>(q) + 1)) return {};
    return std::vector<double>(sums.begin() + 10 * q, sums.begin() + 10 * (q + 1));
  }

  // Nothing of the kept rows is in the cell: no count, no part of any sum.
  static void ExpectNothingOfTheRows(const std::vector<double>& cell, const char* what) {
    ASSERT_EQ(cell.size(), 10u);
    EXPECT_EQ(cell[0], 0) << what << ": the rows were counted in the unmasked sum";
    for (int i = 2; i < 10; ++i) {
      EXPECT_EQ(cell[i], 0) << what << ": part " << i << " of its sums was unmasked";
    }
    EXPECT_GE(cell[1], 1) << what << ": no site says it withheld the cell";
  }

  std::unique_ptr<AttackFederation> federation_;
};

// bmi >= 42 keeps one person of the 442: the coordinator must not get her glucose or age.
TEST_F(AnalyticsAttack, FilterKeepingOnePersonRevealsNothingOfHer) {
  const std::vector<std::pair<double, double>> kept = KeptRows("bmi", 42);
  ASSERT_EQ(kept.size(), 1u);
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, Query("bmi", 42));
  const std::vector<double> sums = Unmask(spec);
  ExpectNothingOfTheRows(MainCell(sums, 0), "her glucose (s6)");
  ExpectNothingOfTheRows(MainCell(sums, 1), "her age");
}

// age >= 75 keeps four people: their mean and variance must not be unmasked either.
TEST_F(AnalyticsAttack, FilterKeepingFourPeopleRevealsNoMeanOrVariance) {
  const std::vector<std::pair<double, double>> kept = KeptRows("age", 75);
  ASSERT_EQ(kept.size(), 4u);
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, Query("age", 75));
  const std::vector<double> sums = Unmask(spec);
  ExpectNothingOfTheRows(MainCell(sums, 0), "the four people's glucose");
  ExpectNothingOfTheRows(MainCell(sums, 1), "the four people's age");
}

// A histogram of 1001 bins (one person per bin, in effect) is refused by the sites.
TEST_F(AnalyticsAttack, ThousandBinHistogramIsRefusedBySites) {
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, Query("age", 0));
  v1::AnalyticsSpec::Query* q = spec.mutable_analytics()->mutable_queries(0);
  for (int i = 0; i <= 1000; ++i) q->add_histogram_edges(50 + 0.1 * i);
  StagePlan plan;
  plan.stage = v1::STAGE_ANALYTICS;
  plan.cohort = federation_->ids();
  plan.spec = spec;
  const v1::PushResultRequest answer = AskFirstStep(*federation_, plan, "site-1");
  ASSERT_TRUE(answer.has_decline()) << "the site accepted a 1001-bin histogram";
  EXPECT_EQ(answer.decline().reason(), v1::Decline::BAD_WORK_ITEM);
  EXPECT_THAT(answer.decline().detail(), ::testing::HasSubstr("histogram_edges"));
}

}  // namespace
}  // namespace tessera::attack
