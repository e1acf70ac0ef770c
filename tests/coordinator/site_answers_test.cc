// Each site's answer in a session (site_answers.h), the failure cause and the wait for sites
// worded from them, and the clients' ACTIVE / STALE / OFFLINE status (client_registry.h).
#include "coordinator/site_answers.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "coordinator/client_registry.h"
#include "coordinator/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

v1::Decline MakeDecline(v1::Decline::Reason reason, const std::string& detail) {
  v1::Decline d;
  d.set_reason(reason);
  d.set_detail(detail);
  return d;
}

// Five sites of an ended session that aborted after its first step.
SessionFacts AbortedSession() {
  SessionFacts f;
  f.invited = {"site-e", "site-d", "site-c", "site-b", "site-a"};
  f.declines["site-c"] = {v1::SECAGG_ADVERTISE_KEYS,
                          MakeDecline(v1::Decline::POLICY_REFUSED, "rule: min_cohort 5\n")};
  f.drops = {{"site-c", v1::SECAGG_ADVERTISE_KEYS, v1::SECAGG_DROP_CLIENT_ABORTED, "POLICY"},
             {"site-d", v1::SECAGG_ADVERTISE_KEYS, v1::SECAGG_DROP_NO_ANSWER, ""},
             {"site-e", v1::SECAGG_ADVERTISE_KEYS, v1::SECAGG_DROP_NO_ANSWER, ""},
             {"site-b", v1::SECAGG_SHARE_KEYS, v1::SECAGG_DROP_MALFORMED, "3 shares, 4 expected"}};
  f.fetched_first = {"site-a", "site-b", "site-c", "site-e"};
  return f;
}

TEST(SiteAnswersTest, EachInvitedSiteGetsOneAnswerSortedById) {
  std::vector<v1::SiteAnswer> answers = SiteAnswersOf(AbortedSession());
  ASSERT_EQ(answers.size(), 5u);
  EXPECT_EQ(answers[0].client_id(), "site-a");
  EXPECT_EQ(answers[0].kind(), v1::SITE_ANSWER_NO_SUM);
  EXPECT_EQ(answers[1].kind(), v1::SITE_ANSWER_DROPPED);
  EXPECT_EQ(answers[1].step(), v1::SECAGG_SHARE_KEYS);
  EXPECT_EQ(answers[1].drop_reason(), v1::SECAGG_DROP_MALFORMED);
  EXPECT_EQ(answers[1].detail(), "3 shares, 4 expected");
  // The decline's own reason and detail (control characters replaced), not the drop's.
  EXPECT_EQ(answers[2].kind(), v1::SITE_ANSWER_DECLINED);
  EXPECT_EQ(answers[2].decline_reason(), v1::Decline::POLICY_REFUSED);
  EXPECT_EQ(answers[2].detail(), "rule: min_cohort 5?");
  // Silent in the first step: never fetched the work, or fetched it and never answered.
  EXPECT_EQ(answers[3].kind(), v1::SITE_ANSWER_NOT_CONNECTED);
  EXPECT_EQ(answers[4].kind(), v1::SITE_ANSWER_NO_ANSWER);
}

TEST(SiteAnswersTest, CompletedSessionContributorsAndRunningSessionPending) {
  SessionFacts done;
  done.invited = {"site-a", "site-b"};
  done.completed = true;
  done.survivors = {"site-a", "site-b"};
  for (const v1::SiteAnswer& a : SiteAnswersOf(done)) {
    EXPECT_EQ(a.kind(), v1::SITE_ANSWER_CONTRIBUTED) << a.client_id();
  }
  SessionFacts running;
  running.invited = {"site-a", "site-b"};
  running.running = true;
  running.step = v1::SECAGG_ADVERTISE_KEYS;
  running.invited.push_back("site-c");
  running.pending = {"site-a", "site-b"};
  running.fetched_first = {"site-a", "site-c"};
  std::vector<v1::SiteAnswer> answers = SiteAnswersOf(running);
  EXPECT_EQ(answers[0].kind(), v1::SITE_ANSWER_PENDING);
  EXPECT_EQ(answers[0].step(), v1::SECAGG_ADVERTISE_KEYS);
  EXPECT_EQ(answers[0].detail(), "computing its contribution");
  EXPECT_EQ(answers[1].detail(), "has not fetched the work yet");
  EXPECT_EQ(answers[2].detail(), "answered this step");
}

v1::StageAttempt Attempt(uint32_t n, const SessionFacts& facts, const std::string& outcome) {
  v1::StageAttempt a;
  a.set_attempt(n);
  a.set_session("task-1/r0/statistics/a" + std::to_string(n));
  a.set_ended_unix_ms(1000 * n);
  a.set_outcome(outcome);
  for (const v1::SiteAnswer& s : SiteAnswersOf(facts)) *a.add_sites() = s;
  return a;
}

TEST(SiteAnswersTest, KeepAttemptReplacesTheSameSessionAndKeepsTheLastTen) {
  google::protobuf::RepeatedPtrField<v1::StageAttempt> kept;
  for (uint32_t n = 1; n <= 12; ++n) KeepAttempt(Attempt(n, AbortedSession(), "x"), &kept);
  ASSERT_EQ(kept.size(), kMaxAttemptsKept);
  EXPECT_EQ(kept.Get(0).attempt(), 3u);
  EXPECT_EQ(kept.Get(9).attempt(), 12u);
  // A resumed session knows site-c's drop but no longer its decline: the decline stays.
  SessionFacts resumed = AbortedSession();
  resumed.declines.clear();
  KeepAttempt(Attempt(12, resumed, "y"), &kept);
  ASSERT_EQ(kept.size(), kMaxAttemptsKept);
  EXPECT_EQ(kept.Get(9).outcome(), "y");
  EXPECT_EQ(kept.Get(9).sites(2).kind(), v1::SITE_ANSWER_DECLINED);
  EXPECT_EQ(kept.Get(9).sites(2).decline_reason(), v1::Decline::POLICY_REFUSED);
}

TEST(SiteAnswersTest, FailureCauseNamesEachSiteThatDidNotContribute) {
  google::protobuf::RepeatedPtrField<v1::StageAttempt> kept;
  EXPECT_EQ(FailureCause(kept), "");
  SessionFacts first = AbortedSession();
  first.declines.erase("site-c");
  first.drops.erase(first.drops.begin());  // site-c pending in the first attempt only
  KeepAttempt(Attempt(1, first, "SECAGG_SERVER_TOO_FEW_CLIENTS: 1 < 3"), &kept);
  KeepAttempt(Attempt(2, AbortedSession(), "SECAGG_SERVER_TOO_FEW_CLIENTS: 1 < 3"), &kept);
  const std::string cause = FailureCause(kept);
  EXPECT_THAT(cause, HasSubstr("site-c declined POLICY_REFUSED: rule: min_cohort 5?; "));
  EXPECT_THAT(cause, Not(HasSubstr("site-c declined POLICY_REFUSED: rule: min_cohort 5? (every")));
  EXPECT_THAT(cause, HasSubstr("site-b was dropped at share_keys: MALFORMED: 3 shares, 4 "
                               "expected (every attempt)"));
  EXPECT_THAT(cause, HasSubstr("site-d was not connected (never fetched the work)"));
  EXPECT_THAT(cause, HasSubstr("site-e did not answer in time"));
  EXPECT_THAT(cause, HasSubstr("last session: SECAGG_SERVER_TOO_FEW_CLIENTS: 1 < 3"));
  EXPECT_THAT(cause, Not(HasSubstr("site-a")));
}

TEST(SiteAnswersTest, WaitingSaysWhoIsMissingOrThatNoSiteHoldsTheDataset) {
  v1::TaskWaiting w = MakeWaiting("breast_cancer", 3, 2, {"hospital-c"}, 0, 0, {"breast_cancer"});
  EXPECT_EQ(w.message(),
            "waiting for 3 sites holding dataset breast_cancer (have 2); known but not "
            "connected: hospital-c");
  EXPECT_THAT(w.not_connected(), ElementsAre("hospital-c"));
  w = MakeWaiting("breast_cancr", 3, 0, {}, 0, 0, {"breast_cancer", "heart"});
  EXPECT_EQ(w.message(),
            "waiting for 3 sites holding dataset breast_cancr (have 0); no known site "
            "announces dataset breast_cancr (known sites announce: breast_cancer, heart)");
  EXPECT_TRUE(SameWaiting(w, w));
  EXPECT_FALSE(SameWaiting(w, MakeWaiting("breast_cancr", 3, 1, {}, 0, 0, {})));
}

// Sites an operator's decision keeps out are named as such, with how to let them back in,
// not as sites that are not connected.
TEST(SiteAnswersTest, WaitingNamesQuarantinedAndDisabledHoldersApart) {
  v1::TaskWaiting w = MakeWaiting("breast_cancer", 4, 2, {"hospital-c"}, 0, 0, {"breast_cancer"},
                                  {"hospital-d"}, {"hospital-e"});
  EXPECT_EQ(w.message(),
            "waiting for 4 sites holding dataset breast_cancer (have 2); known but not "
            "connected: hospital-c; quarantined: hospital-d (named by honest sites; 'tessera "
            "clients release ID' lets one back in); disabled by an operator: hospital-e "
            "('tessera clients enable ID')");
  EXPECT_THAT(w.not_connected(), ElementsAre("hospital-c"));
  EXPECT_THAT(w.quarantined(), ElementsAre("hospital-d"));
  EXPECT_THAT(w.disabled(), ElementsAre("hospital-e"));
  // Only quarantined holders: the dataset is known, so no "no known site" hint.
  w = MakeWaiting("breast_cancer", 3, 0, {}, 0, 0, {"breast_cancer"}, {"hospital-d"});
  EXPECT_THAT(w.message(), Not(HasSubstr("no known site")));
}

using ::tessera::testing::FakeClock;

v1::ClientStatus StatusOf(const ClientRegistry& registry) {
  std::vector<v1::ClientRecord> all = registry.List();
  return all.empty() ? v1::CLIENT_STATUS_UNSPECIFIED : all[0].status();
}

TEST(ClientStatusTest, ActiveWhilePollingThenStaleThenOffline) {
  FakeClock clock;
  std::unique_ptr<Store> store = NewMemoryStore();
  std::atomic<int> waiting{0};
  ClientRegistry registry(
      store.get(), &clock, absl::Seconds(90), [&](const std::string&) { return waiting.load(); },
      absl::Seconds(40));
  EXPECT_EQ(registry.stale_after(), absl::Seconds(40));
  EXPECT_EQ(registry.offline_after(), absl::Seconds(90));
  ASSERT_OK(registry.Hello("site-a", "fp", {"d"}, "1"));
  EXPECT_EQ(StatusOf(registry), v1::CLIENT_ACTIVE);
  // A long-poll open keeps it ACTIVE however long ago it last called (a frozen process's
  // call stays open until the coordinator's long-poll deadline).
  waiting = 1;
  clock.Advance(absl::Seconds(60));
  EXPECT_EQ(StatusOf(registry), v1::CLIENT_ACTIVE);
  registry.Seen("site-a");  // its long-poll returned
  waiting = 0;
  clock.Advance(absl::Seconds(40));
  EXPECT_EQ(StatusOf(registry), v1::CLIENT_ACTIVE);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(StatusOf(registry), v1::CLIENT_STALE);
  EXPECT_THAT(registry.Connected("d"), ElementsAre("site-a")) << "STALE is still picked";
  clock.Advance(absl::Seconds(50));
  EXPECT_EQ(StatusOf(registry), v1::CLIENT_OFFLINE);
  EXPECT_THAT(registry.Connected("d"), ElementsAre());
  registry.Seen("site-a");  // it came back
  EXPECT_EQ(StatusOf(registry), v1::CLIENT_ACTIVE);
  // The stored record keeps ACTIVE: the status is computed when read.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ClientRecord> stored, store->ListClients());
  EXPECT_EQ(stored[0].status(), v1::CLIENT_ACTIVE);
}

TEST(ClientStatusTest, StaleThresholdIsAtMostTheLivenessWindow) {
  FakeClock clock;
  std::unique_ptr<Store> store = NewMemoryStore();
  ClientRegistry registry(
      store.get(), &clock, absl::Seconds(10), [](const std::string&) { return 0; },
      absl::Seconds(40));
  EXPECT_EQ(registry.stale_after(), absl::Seconds(10));
}

}  // namespace
}  // namespace tessera::coordinator
