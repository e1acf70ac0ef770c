// End-to-end: one misbehaving site among four cannot stall the federation ("Quarantine" in
// every name). Real daemons on loopback; the misbehaving site is tessera-client-under-test:
//   - TESSERA_TEST_GARBAGE_SHARES=1: every encrypted share it sends is random bytes. Its
//     peers abort naming it (the share "does not authenticate"), the coordinator
//     quarantines it, the retry runs with the three honest sites and the task completes;
//     `tessera clients list` shows it QUARANTINED with the reason, and once released (and
//     repaired) it is invited again.
//   - TESSERA_TEST_WRONG_MESSAGE=fit/masked_input,...: it answers those steps with a message of
//     another kind. The coordinator drops it at once, so the step closes when the three
//     others answered, not at its 120 s deadline.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/raw_http.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string>& FourSites() {
  static const std::vector<std::string> kSites = {"hospital-a", "hospital-b", "hospital-c",
                                                  "hospital-d"};
  return kSites;
}

bool Finished(const v1::TaskRecord& task) {
  return task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
         task.state() == v1::TASK_CANCELLED;
}

// The sessions (labels) of a task's committed rounds that invited `site`.
std::set<std::string> SessionsInviting(const v1::GetTaskResponse& got, const std::string& site) {
  std::set<std::string> out;
  auto scan = [&](const v1::StageAttempt& a) {
    for (const v1::SiteAnswer& s : a.sites()) {
      if (s.client_id() == site) out.insert(a.session());
    }
  };
  for (const v1::RoundRecord& r : got.rounds()) {
    for (const v1::StageAttempt& a : r.stage_attempts()) scan(a);
  }
  for (const v1::StageAttempt& a : got.task().failed_round_attempts()) scan(a);
  return out;
}

class E2eQuarantineTest : public FederationTest {
 protected:
  // The demo task cut to `rounds`, with a step deadline far longer than the test may take.
  static v1::TaskSpec Spec(uint32_t rounds) {
    absl::StatusOr<v1::TaskSpec> spec = LoadExampleTask();
    EXPECT_OK(spec.status());
    spec->set_rounds(rounds);
    spec->set_max_round_attempts(3);
    spec->mutable_secure_aggregation()->set_step_deadline_seconds(120);
    return *spec;
  }

  // Four sites; hospital-d runs with `fault` in its environment.
  void StartFederation(const std::map<std::string, std::string>& fault) {
    ASSERT_OK(MakeTestPki(FourSites()));
    ASSERT_OK(SplitData(FourSites()));
    edit_coordinator_config_ = [this](v1::CoordinatorConfig* c) {
      c->set_metrics_listen_address("127.0.0.1:0");
      c->set_metrics_ready_file(temp().File("coordinator-metrics"));
    };
    ASSERT_OK(StartCoordinator());
    for (const std::string& name : FourSites()) {
      ASSERT_OK(StartClient(name, "",
                            name == "hospital-d" ? fault : std::map<std::string, std::string>{},
                            /*min_cohort=*/3));
    }
    for (const std::string& name : FourSites()) ASSERT_OK(WaitClientReady(name));
  }

  // The coordinator's /metrics page.
  absl::StatusOr<std::string> Metrics() {
    ASSIGN_OR_RETURN(std::string bound,
                     WaitForFile(temp().File("coordinator-metrics"), *coordinator()));
    int port = 0;
    std::string address(absl::StripSuffix(bound, "\n"));
    if (!absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) {
      return absl::InternalError(absl::StrCat("no port in ", address));
    }
    return testing::RawHttpBody(testing::RawHttpGet(port, "/metrics"));
  }

  absl::StatusOr<v1::ClientRecord> Client(const std::string& id) {
    absl::StatusOr<std::vector<v1::ClientRecord>> clients = ListClients();
    if (!clients.ok()) return clients.status();
    for (const v1::ClientRecord& c : *clients) {
      if (c.client_id() == id) return c;
    }
    return absl::NotFoundError(id);
  }
};

TEST_F(E2eQuarantineTest, GarbageSharesSiteIsQuarantinedAndTaskCompletes) {
  ASSERT_NO_FATAL_FAILURE(StartFederation({{"TESSERA_TEST_GARBAGE_SHARES", "1"}}));
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(Spec(3)));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();

  // Only the first session invited the culprit: every later one ran with the honest three.
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(task_id));
  ASSERT_EQ(got.rounds_size(), 4);
  for (int r = 1; r <= 3; ++r) {
    EXPECT_THAT(got.rounds(r).fit_participants(),
                ElementsAre("hospital-a", "hospital-b", "hospital-c"))
        << "round " << r;
  }
  const std::set<std::string> invited = SessionsInviting(got, "hospital-d");
  EXPECT_EQ(invited.size(), 1u) << absl::StrJoin(invited, ", ");
  ASSERT_OK_AND_ASSIGN(CommandResult shown, Console({"tasks", "show"}, {task_id}));
  EXPECT_THAT(shown.out, HasSubstr("cohort    hospital-a, hospital-b, hospital-c (the sites in "
                                   "the pooled statistics: only they train)"));

  // Quarantined, with the reason, who named it and where.
  ASSERT_OK_AND_ASSIGN(v1::ClientRecord d, Client("hospital-d"));
  ASSERT_TRUE(d.has_quarantine());
  EXPECT_THAT(d.quarantine().reason(),
              AllOf(HasSubstr("SECAGG_CORRUPTED_SHARE"),
                    HasSubstr("the share from hospital-d does not authenticate")));
  EXPECT_THAT(d.quarantine().named_by(), ElementsAre("hospital-a", "hospital-b", "hospital-c"));
  EXPECT_EQ(d.quarantine().task_id(), task_id);
  EXPECT_GT(d.quarantine().since_unix_ms(), 0);
  for (const char* honest : {"hospital-a", "hospital-b", "hospital-c"}) {
    ASSERT_OK_AND_ASSIGN(v1::ClientRecord c, Client(honest));
    EXPECT_FALSE(c.has_quarantine()) << honest;
  }
  ASSERT_OK_AND_ASSIGN(CommandResult listed, Console({"clients", "list"}));
  ASSERT_EQ(listed.exit_code(), 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("hospital-d  QUARANTINED"));
  EXPECT_THAT(listed.out, AllOf(HasSubstr("hospital-d quarantined"),
                                HasSubstr("named by hospital-a, hospital-b, hospital-c"),
                                HasSubstr("the share from hospital-d does not authenticate"),
                                HasSubstr("tessera clients release hospital-d")));
  ASSERT_OK_AND_ASSIGN(std::string metrics, Metrics());
  EXPECT_THAT(metrics, HasSubstr("tessera_clients_held_back{reason=\"quarantined\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("tessera_clients_held_back{reason=\"disabled\"} 0\n"));

  // Repaired and released, it is invited again: a new task (other columns, so that its
  // statistics are pooled anew) runs with all four.
  ASSERT_OK(StopClient("hospital-d"));
  ASSERT_OK(StartClient("hospital-d", "", {}, /*min_cohort=*/3));
  ASSERT_OK(WaitClientReady("hospital-d"));
  ASSERT_OK_AND_ASSIGN(CommandResult released, Console({"clients", "release"}, {"hospital-d"}));
  ASSERT_EQ(released.exit_code(), 0) << released.err;
  EXPECT_THAT(released.out, HasSubstr("hospital-d released"));
  ASSERT_OK_AND_ASSIGN(d, Client("hospital-d"));
  EXPECT_FALSE(d.has_quarantine());
  ASSERT_OK_AND_ASSIGN(listed, Console({"clients", "list"}));
  EXPECT_THAT(listed.out, Not(HasSubstr("QUARANTINED")));
  ASSERT_OK_AND_ASSIGN(metrics, Metrics());
  EXPECT_THAT(metrics, HasSubstr("tessera_clients_held_back{reason=\"quarantined\"} 0\n"));
  ASSERT_OK_AND_ASSIGN(CommandResult again, Console({"clients", "release"}, {"hospital-d"}));
  EXPECT_NE(again.exit_code(), 0);
  EXPECT_THAT(again.err, HasSubstr("hospital-d is not quarantined"));

  v1::TaskSpec second = Spec(1);
  second.mutable_dataset()->mutable_features()->RemoveLast();
  ASSERT_OK_AND_ASSIGN(const std::string second_id, SubmitTask(second));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord second_done, WaitForTask(second_id, Finished));
  ASSERT_EQ(second_done.state(), v1::TASK_COMPLETED) << second_done.state_reason();
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse second_got, GetTask(second_id));
  ASSERT_EQ(second_got.rounds_size(), 2);
  EXPECT_THAT(second_got.rounds(1).fit_participants(),
              ElementsAre("hospital-a", "hospital-b", "hospital-c", "hospital-d"));
}

TEST_F(E2eQuarantineTest, WrongMessageTypeSiteIsDroppedAtOnceNotAtTheDeadline) {
  // Round 1 is a fit session, round 2 a fit_evaluate one (one session per round).
  ASSERT_NO_FATAL_FAILURE(StartFederation(
      {{"TESSERA_TEST_WRONG_MESSAGE", "fit/masked_input,fit_evaluate/masked_input"}}));
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(Spec(2)));
  // Each FIT session would wait out its 120 s step deadline if the site were not dropped.
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(100)));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(task_id));
  ASSERT_EQ(got.rounds_size(), 3);
  for (int r = 1; r <= 2; ++r) {
    const v1::RoundRecord& round = got.rounds(r);
    EXPECT_THAT(round.fit_participants(), ElementsAre("hospital-a", "hospital-b", "hospital-c"));
    EXPECT_THAT(round.drops(), ::testing::Contains(AllOf(HasSubstr("hospital-d: masked_input: "),
                                                         HasSubstr("SECAGG_DROP_WRONG_ROUND"))));
    for (const v1::StageAttempt& a : round.stage_attempts()) {
      if ((a.stage() != v1::STAGE_FIT && a.stage() != v1::STAGE_FIT_EVALUATE) || !a.completed()) {
        continue;
      }
      const int64_t ms = a.ended_unix_ms() - a.started_unix_ms();
      std::printf("round %d: FIT session %s took %lld ms\n", r, a.session().c_str(),
                  static_cast<long long>(ms));
      // Training and four steps; far below the 120 s step deadline.
      EXPECT_LT(ms, 30000) << a.session();
    }
  }
  std::printf("task with the wrong-message site: %lld ms\n",
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start)));
  // Dropped, not quarantined: a wrong answer blames nobody but the site, which is not
  // named by its peers.
  ASSERT_OK_AND_ASSIGN(v1::ClientRecord d, Client("hospital-d"));
  EXPECT_FALSE(d.has_quarantine());
}

}  // namespace
}  // namespace tessera::e2e
