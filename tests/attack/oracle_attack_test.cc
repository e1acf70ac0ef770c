// Attack 3 of the privacy issue: declines as an oracle. A site used to accept whatever
// encoding the coordinator sent and, when a value did not fit it, decline naming the value's
// index; the coordinator also supplies N, the pooled row count a FIT weight is divided by.
// Choosing an encoding in which the weight w = n / N fits only while n < N and searching
// over N, the coordinator learns the site's exact row count from yes/no answers alone.
//
// The fix: a site derives the encoding from the spec itself, clips rather than declines on
// a value, binds N into the signed set-up, and its declines carry fixed texts. The tests
// check the property that matters: two sites with different data give the same answer to
// every probe, so the answers carry nothing about the data.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "secagg/vector_codec.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

// What a coordinator sees of a first-step answer: declined (reason and detail) or joined.
std::string Observed(const v1::PushResultRequest& answer) {
  if (answer.has_decline()) {
    return absl::StrCat("decline ", v1::Decline::Reason_Name(answer.decline().reason()), ": ",
                        answer.decline().detail());
  }
  return "joined the session";
}

class DeclineOracleAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    // 455 training rows over 3 sites: 152, 152 and 151.
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(3));
    ASSERT_OK_AND_ASSIGN(spec_, AttackFederation::ExampleSpec());
    ASSERT_OK_AND_ASSIGN(standardization_, federation_->PooledStandardization(spec_));
    ASSERT_OK_AND_ASSIGN(model_, proto::InitialParameters(spec_.model(), 30, spec_.seed()));
    ASSERT_NE(federation_->train_rows("site-1"), federation_->train_rows("site-3"));
  }

  // A FIT probe with pooled row count `n_claimed` and an encoding whose weight segment is
  // WIDE with one limb of 29 bits and 28 fraction bits: w = min(n / N, 1) fits only if
  // w < 1, i.e. n < N.
  StagePlan Probe(uint64_t n_claimed, uint32_t attempt) {
    StagePlan plan;
    plan.stage = v1::STAGE_FIT;
    plan.attempt = attempt;
    plan.cohort = federation_->ids();
    plan.spec = spec_;
    plan.model = model_;
    plan.standardization = standardization_;
    plan.standardization.set_num_train_rows(n_claimed);
    v1::SecAggEncoding encoding = DefaultEncoding(plan);
    v1::SecAggSegment* weight = encoding.mutable_segments(0);
    weight->set_kind(v1::SecAggSegment::WIDE);
    weight->set_bits(29);
    weight->set_fraction_bits(28);
    weight->set_limbs(1);
    weight->clear_bound();
    plan.encoding = encoding;
    return plan;
  }

  // The row count the coordinator infers for `site` by bisection over N in [1, 4096]:
  // the least N at which the site joins.
  uint64_t Bisect(const std::string& site, std::vector<std::string>* seen) {
    uint64_t lo = 1, hi = 4096;  // joins at hi, declines below lo
    uint32_t attempt = 1;
    while (lo < hi) {
      const uint64_t mid = (lo + hi) / 2;
      const std::string observed =
          Observed(AskFirstStep(*federation_, Probe(mid, attempt++), site));
      seen->push_back(observed);
      if (observed == "joined the session") {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo - 1;  // joins iff n < N: n = least joining N minus one
  }

  std::unique_ptr<AttackFederation> federation_;
  v1::TaskSpec spec_;
  v1::Standardization standardization_;
  std::vector<float> model_;
};

// Bisection over N recovers no row count: the two sites, with different numbers of rows,
// answer every probe alike.
TEST_F(DeclineOracleAttack, BisectionOverNFindsNoRowCount) {
  std::vector<std::string> seen_1, seen_3;
  const uint64_t inferred_1 = Bisect("site-1", &seen_1);
  const uint64_t inferred_3 = Bisect("site-3", &seen_3);
  EXPECT_NE(inferred_1, federation_->train_rows("site-1")) << "site-1's row count leaked";
  EXPECT_NE(inferred_3, federation_->train_rows("site-3")) << "site-3's row count leaked";
  EXPECT_EQ(seen_1, seen_3) << "sites with different data answered the probes differently";
}

// The probes that straddle the true counts: each site gets the very same answer at N = 151,
// 152 and 153, whatever its own count.
TEST_F(DeclineOracleAttack, SitesWithDifferentCountsAnswerEveryProbeAlike) {
  uint32_t attempt = 100;
  for (uint64_t n : {150u, 151u, 152u, 153u}) {
    const std::string a = Observed(AskFirstStep(*federation_, Probe(n, attempt++), "site-1"));
    const std::string b = Observed(AskFirstStep(*federation_, Probe(n, attempt++), "site-3"));
    EXPECT_EQ(a, b) << "N = " << n;
    EXPECT_THAT(a, ::testing::Not(::testing::HasSubstr("index"))) << a;
  }
}

// Every kind of bad first item gets a decline whose words do not depend on the site's data:
// two sites with different data decline each alike.
TEST_F(DeclineOracleAttack, DeclinesAreTheSameWhateverTheData) {
  std::vector<std::pair<std::string, std::function<void(v1::WorkItem&)>>> tampers = {
      {"model hash", [](v1::WorkItem& i) { i.set_model_hash(std::string(32, 'x')); }},
      {"spec hash", [](v1::WorkItem& i) { i.set_spec_hash(std::string(32, 'x')); }},
      {"standardisation", [](v1::WorkItem& i) { i.mutable_standardization()->clear_mean(); }},
      {"huge N", [](v1::WorkItem& i) { i.mutable_standardization()->set_num_train_rows(1); }},
      {"tiny encoding",
       [](v1::WorkItem& i) {
         v1::SecAggSegment* s =
             i.mutable_secagg()->mutable_setup()->mutable_encoding()->mutable_segments(1);
         s->set_kind(v1::SecAggSegment::WIDE);
         s->set_bits(8);
         s->set_fraction_bits(0);
         s->set_limbs(1);
       }},
  };
  uint32_t attempt = 200;
  for (const auto& [what, tamper] : tampers) {
    StagePlan plan;
    plan.stage = v1::STAGE_FIT;
    plan.cohort = federation_->ids();
    plan.spec = spec_;
    plan.model = model_;
    plan.standardization = standardization_;
    plan.tamper_first_item = [&tamper = tamper](const std::string&, v1::WorkItem& item) {
      tamper(item);
    };
    plan.attempt = attempt++;
    const std::string a = Observed(AskFirstStep(*federation_, plan, "site-1"));
    plan.attempt = attempt++;
    const std::string b = Observed(AskFirstStep(*federation_, plan, "site-3"));
    EXPECT_EQ(a, b) << what;
  }
}

}  // namespace
}  // namespace tessera::attack
