// Issue 11, "Bounded inputs": a malicious site. Secure aggregation hides every site's
// input, so a site may mask any words it likes: random words of the right length, or its
// honest words plus 2^30 each. Measured before the fix: random FIT words took a real
// federation's accuracy from 0.96 to 0.36 in 5 rounds, and +2^30 per word made the decoded
// example count three times the pooled rows; the round committed the poisoned model.
//
// The fix (coordinator/sum_checks.h): the coordinator checks every decoded sum against
// what honest inputs must satisfy and refuses one that breaks a rule. Nothing of a refused
// sum is used: no model is committed from it, and the task fails naming the check; the
// sites of the session cannot send another input for that stage (once-only), and the
// coordinator cannot tell which of them cheated (docs/secure-aggregation.md, "What a
// malicious site can do to the sum").
//
// The sites are the coordinator tests' fake sites (real secure-aggregation client, real
// certificates) with a tampering hook; the coordinator is the real one, in process.
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "coordinator/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "tests/coordinator/fake_site.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::attack {
namespace {

using coordinator::Coordinator;
using coordinator::fake::FakeSite;
using coordinator::fake::FastOptions;
using coordinator::fake::SiteBehavior;
using coordinator::fake::ToySpec;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// Adds 2^30 to every word of the site's input of `stage` (wrapping mod 2^32).
SiteBehavior ShiftsBy2To30(v1::Stage stage) {
  SiteBehavior b{.train_rows = 10, .delta = 1};
  b.tamper_words = [stage](v1::Stage s, std::vector<uint32_t>& words) {
    if (s != stage) return;
    for (uint32_t& w : words) w += uint32_t{1} << 30;
  };
  return b;
}

// Replaces the site's input of `stage` by uniformly random words of the same length.
SiteBehavior SendsRandomWords(v1::Stage stage) {
  SiteBehavior b{.train_rows = 10, .delta = 1};
  b.tamper_words = [stage](v1::Stage s, std::vector<uint32_t>& words) {
    if (s != stage) return;
    std::mt19937 random(7);
    for (uint32_t& w : words) w = static_cast<uint32_t>(random());
  };
  return b;
}

class MaliciousSiteAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, tessera::testing::TestPki::Create(dir_.path()));
    ASSERT_OK_AND_ASSIGN(coordinator_,
                         Coordinator::Create(coordinator::NewMemoryStore(), common::Clock::Real(),
                                             FastOptions(*pki_)));
  }

  // Three honest sites (10 rows, delta 1) and `malicious`, a 2-round task with min_clients
  // 3; the finished task.
  v1::GetTaskResponse Run(const SiteBehavior& malicious, const v1::TaskSpec& spec = ToySpec(2, 3)) {
    FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
    FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
    FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 1});
    FakeSite d(coordinator_.get(), pki_.get(), "site-d", malicious);
    return coordinator::fake::RunToEnd(*coordinator_, spec);
  }

  // The FIT attack's outcome: the poisoned sum is refused, no round 1 is committed, and the
  // task fails naming the check and that the culprit is hidden.
  void ExpectFitRefused(const v1::GetTaskResponse& got) {
    EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
    EXPECT_EQ(got.task().last_committed_round(), 0) << "no model from the poisoned sum";
    EXPECT_EQ(got.rounds_size(), 1);
    EXPECT_THAT(got.task().state_reason(),
                AllOf(HasSubstr("round 1 failed"), HasSubstr("sum refused (fit."),
                      HasSubstr("hides which site")));
    // The refused session's record says so; every site of it sent its input.
    bool refused = false;
    for (const v1::StageAttempt& a : got.task().failed_round_attempts()) {
      if (a.stage() == v1::STAGE_FIT && !a.completed() &&
          a.outcome().rfind("sum refused (fit.", 0) == 0) {
        refused = true;
        EXPECT_EQ(a.sites_size(), 4);
      }
    }
    EXPECT_TRUE(refused);
  }

  tessera::testing::TempDir dir_;
  std::unique_ptr<tessera::testing::TestPki> pki_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(MaliciousSiteAttack, FitInputShiftedBy2To30IsRefusedAndNoPoisonedModelCommits) {
  ExpectFitRefused(Run(ShiftsBy2To30(v1::STAGE_FIT)));
}

TEST_F(MaliciousSiteAttack, FitInputOfRandomWordsIsRefusedAndNoPoisonedModelCommits) {
  ExpectFitRefused(Run(SendsRandomWords(v1::STAGE_FIT)));
}

TEST_F(MaliciousSiteAttack, StatisticsInputShiftedBy2To30IsRefused) {
  const v1::GetTaskResponse got = Run(ShiftsBy2To30(v1::STAGE_STATISTICS));
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_EQ(got.task().last_committed_round(), -1) << "no standardisation from the sum";
  EXPECT_THAT(got.task().state_reason(),
              AllOf(HasSubstr("statistics round failed"), HasSubstr("sum refused (statistics.")));
}

TEST_F(MaliciousSiteAttack, StatisticsInputOfRandomWordsIsRefused) {
  const v1::GetTaskResponse got = Run(SendsRandomWords(v1::STAGE_STATISTICS));
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_EQ(got.task().last_committed_round(), -1);
  EXPECT_THAT(got.task().state_reason(), HasSubstr("sum refused (statistics."));
}

// An evaluation sum only makes metrics: a refused one leaves the rounds without metrics
// (the honest model still commits), with the refusal in each round's drop lines.
TEST_F(MaliciousSiteAttack, EvaluationInputShiftedBy2To30IsRefusedAndNoMetricsCommit) {
  const v1::GetTaskResponse got = Run(ShiftsBy2To30(v1::STAGE_EVALUATE));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  ASSERT_EQ(got.rounds_size(), 3);
  for (int r = 1; r <= 2; ++r) {
    std::map<std::string, double> metrics;
    for (const v1::Metric& m : got.rounds(r).metrics()) metrics[m.name()] = m.value();
    EXPECT_FALSE(metrics.contains("accuracy")) << "round " << r;
    EXPECT_FALSE(metrics.contains("num_examples")) << "round " << r;
    EXPECT_THAT(got.rounds(r).drops(),
                Contains(HasSubstr("evaluation skipped: sum refused (evaluation.count)")));
    EXPECT_THAT(got.rounds(r).eval_participants(), ::testing::IsEmpty());
  }
}

TEST_F(MaliciousSiteAttack, AnalyticsInputShiftedBy2To30IsRefusedAndNoAnswerIsReleased) {
  v1::TaskSpec spec;
  spec.set_name("toy-query");
  spec.mutable_dataset()->set_id("toy");
  v1::AnalyticsSpec::Query* q = spec.mutable_analytics()->add_queries();
  q->set_column("x");
  q->add_histogram_edges(0);
  q->add_histogram_edges(1);
  spec.set_min_clients(3);
  spec.set_round_deadline_seconds(5);
  const v1::GetTaskResponse got = Run(ShiftsBy2To30(v1::STAGE_ANALYTICS), spec);
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_THAT(got.rounds(), ::testing::IsEmpty()) << "no answer from the refused sum";
  EXPECT_THAT(got.task().state_reason(),
              AllOf(HasSubstr("query failed"), HasSubstr("sum refused (analytics.count)")));
}

// Honest sites only, the same task: nothing is refused (the checks hold for honest sums,
// rounding included).
TEST_F(MaliciousSiteAttack, HonestFederationPassesEveryCheck) {
  const v1::GetTaskResponse got = Run({.train_rows = 30, .delta = -1});
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  ASSERT_EQ(got.rounds_size(), 3);
  for (int r = 1; r <= 2; ++r) {
    EXPECT_THAT(got.rounds(r).drops(), Not(Contains(HasSubstr("sum refused"))));
    std::map<std::string, double> metrics;
    for (const v1::Metric& m : got.rounds(r).metrics()) metrics[m.name()] = m.value();
    EXPECT_DOUBLE_EQ(metrics["train_examples"], 60);
    EXPECT_NEAR(metrics["accuracy"], 0.9, 1e-9);
  }
}

}  // namespace
}  // namespace tessera::attack
