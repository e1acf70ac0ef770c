// One misbehaving site among honest ones, driven through the coordinator core with
// in-process fake sites (fake_site.h): a site whose encrypted shares are garbage is named
// by its peers and quarantined (persisted, left out of every later cohort, released by an
// operator); a site answering a step with the wrong message type is dropped at once; and
// the blame rule of coordinator/culprits.h, case by case.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/client_registry.h"
#include "coordinator/coordinator.h"
#include "coordinator/culprits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_site.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::coordinator {
namespace {

using fake::Eventually;
using fake::FakeSite;
using fake::FastOptions;
using fake::Finished;
using fake::ToySpec;
using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---- the blame rule ----

std::vector<std::string> Quarantined(const std::map<std::string, Accusation>& accusations) {
  std::vector<std::string> out;
  for (const Verdict& v : JudgeCulprits(accusations)) out.push_back(v.client_id);
  return out;
}

TEST(QuarantineCulpritsTest, ASiteNamedByUnnamedSitesIsQuarantinedWithWhoNamedIt) {
  const std::vector<Verdict> verdicts = JudgeCulprits({{"a", {"d", "share from d bad"}},
                                                       {"b", {"d", "share from d bad"}},
                                                       {"c", {"d", "share from d bad"}}});
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].client_id, "d");
  EXPECT_THAT(verdicts[0].named_by, ElementsAre("a", "b", "c"));
  EXPECT_EQ(verdicts[0].reason, "share from d bad");
}

TEST(QuarantineCulpritsTest, ACulpritNamingAnHonestSiteBackCannotSaveItselfOrBlameIt) {
  // d sends garbage to everyone; a, b, c name it; d names a in return.
  EXPECT_THAT(Quarantined({{"a", {"d", ""}}, {"b", {"d", ""}}, {"c", {"d", ""}}, {"d", {"a", ""}}}),
              ElementsAre("d"));
}

TEST(QuarantineCulpritsTest, TwoSitesNamingOnlyEachOtherAreNeitherQuarantined) {
  EXPECT_THAT(Quarantined({{"a", {"b", ""}}, {"b", {"a", ""}}}), IsEmpty());
}

TEST(QuarantineCulpritsTest, ALoneAccuserWhoIsNotNamedCounts) {
  // A lying site can get an honest one quarantined (availability only: docs).
  EXPECT_THAT(Quarantined({{"m", {"h", ""}}}), ElementsAre("h"));
}

TEST(QuarantineCulpritsTest, NamingItselfCountsForNothing) {
  EXPECT_THAT(Quarantined({{"a", {"a", ""}}}), IsEmpty());
  EXPECT_THAT(Quarantined({}), IsEmpty());
}

// ---- the coordinator ----

class QuarantineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, tessera::testing::TestPki::Create(dir_.path()));
    ASSERT_OK_AND_ASSIGN(coordinator_, Coordinator::Create(NewMemoryStore(), common::Clock::Real(),
                                                           FastOptions(*pki_)));
  }

  std::optional<v1::ClientRecord> Client(const std::string& id) const {
    for (const v1::ClientRecord& c : coordinator_->ListClients()) {
      if (c.client_id() == id) return c;
    }
    return std::nullopt;
  }

  TempDir dir_;
  std::unique_ptr<tessera::testing::TestPki> pki_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(QuarantineTest, GarbageSharesSiteIsQuarantinedAndTheRetryCompletesWithoutIt) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 1});
  FakeSite d(coordinator_.get(), pki_.get(), "site-d",
             {.train_rows = 10, .delta = 9, .garbage_shares = true});
  v1::TaskSpec spec = ToySpec(2, 3);
  spec.set_max_round_attempts(2);
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  const std::string& task = submitted.task_id();
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, task); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(task));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  for (int r = 1; r <= 2; ++r) {
    EXPECT_THAT(got.rounds(r).fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
  }
  // Only the first session ever invited site-d.
  EXPECT_THAT(d.sessions_seen(), ElementsAre(task + "/r0/statistics/a1"));

  std::optional<v1::ClientRecord> record = Client("site-d");
  ASSERT_TRUE(record.has_value());
  ASSERT_TRUE(record->has_quarantine());
  EXPECT_EQ(record->quarantine().reason(),
            "SECAGG_CORRUPTED_SHARE: the share from site-d does not authenticate");
  EXPECT_THAT(record->quarantine().named_by(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_EQ(record->quarantine().task_id(), task);
  EXPECT_EQ(record->quarantine().session(), task + "/r0/statistics/a1");
  EXPECT_GT(record->quarantine().since_unix_ms(), 0);
  for (const std::string id : {"site-a", "site-b", "site-c"}) {
    EXPECT_FALSE(Client(id)->has_quarantine()) << id;
  }
  // Persisted: the store's record says so (a restarted coordinator loads it).
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ClientRecord> stored, coordinator_->store()->ListClients());
  bool stored_quarantine = false;
  for (const v1::ClientRecord& r : stored) {
    if (r.client_id() == "site-d") stored_quarantine = r.has_quarantine();
  }
  EXPECT_TRUE(stored_quarantine);

  // A task needing all four sites waits, naming site-d as quarantined (not as a site that
  // is not connected) and how to let it back in.
  v1::TaskSpec four = ToySpec(1, 4);
  four.set_name("toy-four");
  four.mutable_dataset()->set_features(0, "w1");
  four.mutable_dataset()->set_features(1, "w2");
  ASSERT_OK_AND_ASSIGN(auto waits, coordinator_->SubmitTask("op", four));
  ASSERT_TRUE(Eventually([&] {
    auto t = coordinator_->GetTask(waits.task_id());
    return t.ok() && t->task().has_waiting();
  }));
  ASSERT_OK_AND_ASSIGN(got, coordinator_->GetTask(waits.task_id()));
  EXPECT_THAT(got.task().waiting().quarantined(), ElementsAre("site-d"));
  EXPECT_THAT(got.task().waiting().not_connected(), ::testing::IsEmpty());
  EXPECT_THAT(got.task().waiting().message(),
              HasSubstr("quarantined: site-d (named by honest sites; 'tessera clients release "
                        "ID' lets one back in)"));
  ASSERT_OK(coordinator_->CancelTask("op", waits.task_id(), "needs site-d"));

  // Released by an operator, it is invited again (and, still sending garbage, named again).
  EXPECT_THAT(coordinator_->ReleaseClient("op", "site-z"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(v1::ClientRecord released, coordinator_->ReleaseClient("op", "site-d"));
  EXPECT_FALSE(released.has_quarantine());
  EXPECT_THAT(coordinator_->ReleaseClient("op", "site-d"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not quarantined")));
  // Other columns, so that the task pools its own statistics with site-d in the cohort (a
  // task reusing the first task's pooled statistics invites only their cohort).
  spec.set_name("toy-again");
  spec.mutable_dataset()->set_features(0, "z1");
  spec.mutable_dataset()->set_features(1, "z2");
  ASSERT_OK_AND_ASSIGN(auto again, coordinator_->SubmitTask("op", spec));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, again.task_id()); }));
  ASSERT_OK_AND_ASSIGN(got, coordinator_->GetTask(again.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  bool invited_again = false;
  for (const std::string& s : d.sessions_seen()) {
    invited_again = invited_again || absl::StartsWith(s, again.task_id() + "/");
  }
  EXPECT_TRUE(invited_again);
  EXPECT_TRUE(Client("site-d")->has_quarantine());
}

// A site answering the masked-input step with a consistency signature is dropped at once:
// the step closes when the three others answered, not at its 60 s deadline.
TEST_F(QuarantineTest, WrongMessageTypeIsDroppedAtOnceNotAtTheStepDeadline) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 1});
  FakeSite d(coordinator_.get(), pki_.get(), "site-d",
             {.train_rows = 10, .delta = 9, .wrong_message_in_fit = true});
  v1::TaskSpec spec = ToySpec(1, 3);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(60);
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  const absl::Duration took = absl::Now() - start;
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  const v1::RoundRecord& round = got.rounds(1);
  EXPECT_THAT(round.fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_THAT(round.drops(), Contains(AllOf(HasSubstr("site-d: masked_input: "),
                                            HasSubstr("SECAGG_DROP_WRONG_ROUND"))));
  EXPECT_EQ(round.attempts(), 1u);
  EXPECT_LT(took, absl::Seconds(20)) << "the step waited for its deadline";
  std::printf("task with a wrong-message site (step deadline 60 s): %lld ms\n",
              static_cast<long long>(absl::ToInt64Milliseconds(took)));
}

}  // namespace
}  // namespace tessera::coordinator
