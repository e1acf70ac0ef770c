// End-to-end: why a task does not progress, as the operator reads it in `tessera tasks show
// --json` and `tessera clients list --json`, with real daemons on loopback. Checked, each
// within one deadline (polled, never slept): a site whose local policy refuses the task (the
// task fails after its first session naming the site, POLICY_REFUSED and the rule, and the
// attempt lists each site's answer); a site out of the round in flight (`tasks show` names it
// and its reason while the round goes on); a task over a dataset no site holds (it waits, saying so
// and naming the datasets the sites do announce); a column the sites lack (DATA_ERROR named); and a
// frozen site (SIGSTOP: its TCP connection stays open) that turns STALE, then fails the task as not
// connected.
#include <csignal>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/admin.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

bool Finished(const v1::TaskRecord& task) {
  return task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
         task.state() == v1::TASK_CANCELLED;
}

// `site`'s answer in `attempt`; UNSPECIFIED if it was not invited.
v1::SiteAnswer AnswerOf(const v1::StageAttempt& attempt, const std::string& site) {
  for (const v1::SiteAnswer& a : attempt.sites()) {
    if (a.client_id() == site) return a;
  }
  return v1::SiteAnswer();
}

class E2eDiagnosticsTest : public FederationTest {
 protected:
  // The demo task cut to one round, with short deadlines and `attempts` per round.
  static v1::TaskSpec Spec(uint32_t attempts) {
    absl::StatusOr<v1::TaskSpec> spec = LoadExampleTask();
    EXPECT_OK(spec.status());
    spec->set_rounds(1);
    spec->set_round_deadline_seconds(3);
    spec->set_max_round_attempts(attempts);
    spec->mutable_secure_aggregation()->set_step_deadline_seconds(10);
    return *spec;
  }

  void StartFederation() {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(SplitData());
    ASSERT_OK(StartCoordinator());
    ASSERT_OK(StartClients());
  }

  // `tessera tasks show --json TASK`, parsed.
  v1::GetTaskResponse ShowJson(const std::string& task_id, std::string* raw = nullptr) {
    absl::StatusOr<CommandResult> shown = Console({"tasks", "show"}, {"--json", task_id});
    EXPECT_OK(shown.status());
    if (!shown.ok()) return {};
    EXPECT_EQ(shown->exit_code(), 0) << shown->err;
    v1::GetTaskResponse parsed;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(shown->out, &parsed).ok())
        << shown->out;
    if (raw != nullptr) *raw = shown->out;
    return parsed;
  }
};

TEST_F(E2eDiagnosticsTest, PolicyRefusalFailsTheTaskNamingTheSiteAndTheRule) {
  site("hospital-c").policy.add_allowed_task_names("another-task");
  ASSERT_NO_FATAL_FAILURE(StartFederation());
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(Spec(2)));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(60)));
  ASSERT_EQ(done.state(), v1::TASK_FAILED) << done.state_reason();
  const std::string rule = "policy.allowed_task_names: ";
  // A refusal no retry can fix: hospital-c is out of the round and the two sites left cannot
  // reach the cohort of 3, so the task ends after the first session (issue 11).
  EXPECT_THAT(done.state_reason(),
              HasSubstr(absl::StrCat("statistics round failed: hospital-c declined "
                                     "POLICY_REFUSED: ",
                                     rule)));
  EXPECT_THAT(done.state_reason(),
              HasSubstr("only 2 known sites holding the dataset can still take part, 3 needed"));

  std::string raw;
  v1::GetTaskResponse shown = ShowJson(task_id, &raw);
  EXPECT_EQ(shown.task().state_reason(), done.state_reason());
  ASSERT_EQ(shown.task().failed_round_attempts_size(), 1) << raw;
  for (const v1::StageAttempt& attempt : shown.task().failed_round_attempts()) {
    EXPECT_EQ(attempt.stage(), v1::STAGE_STATISTICS);
    EXPECT_FALSE(attempt.completed());
    EXPECT_THAT(attempt.outcome(), HasSubstr("SECAGG_SERVER_TOO_FEW_CLIENTS"));
    const v1::SiteAnswer c = AnswerOf(attempt, "hospital-c");
    EXPECT_EQ(c.kind(), v1::SITE_ANSWER_DECLINED);
    EXPECT_EQ(c.decline_reason(), v1::Decline::POLICY_REFUSED);
    EXPECT_EQ(c.step(), v1::SECAGG_ADVERTISE_KEYS);
    EXPECT_THAT(c.detail(), HasSubstr(rule));
    // The other two advertised their keys, then the session had too few sites for a sum.
    EXPECT_EQ(AnswerOf(attempt, "hospital-a").kind(), v1::SITE_ANSWER_NO_SUM);
    EXPECT_EQ(AnswerOf(attempt, "hospital-b").kind(), v1::SITE_ANSWER_NO_SUM);
  }
  // The words the operator greps for, in the JSON as printed.
  EXPECT_THAT(raw, HasSubstr("\"SITE_ANSWER_DECLINED\""));
  EXPECT_THAT(raw, HasSubstr("\"POLICY_REFUSED\""));
  // And in the table.
  ASSERT_OK_AND_ASSIGN(CommandResult table, Console({"tasks", "show"}, {task_id}));
  EXPECT_THAT(table.out, HasSubstr("hospital-c  DECLINED POLICY_REFUSED"));
}

TEST_F(E2eDiagnosticsTest, ASiteOutOfTheRoundInFlightIsShownWithItsReason) {
  // Four sites, three needed: hospital-d refuses the task by policy, hospital-c is frozen
  // (SIGSTOP) yet still invited. The first attempt ends at the step deadline with hospital-d
  // out of the round; the second waits for hospital-c, and meanwhile `tasks show` says who
  // is out and why.
  const std::vector<std::string> sites = {"hospital-a", "hospital-b", "hospital-c", "hospital-d"};
  site("hospital-d").policy.add_allowed_task_names("another-task");
  ASSERT_OK(MakeTestPki(sites));
  ASSERT_OK(SplitData(sites));
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients(sites));
  ASSERT_OK(site("hospital-c").process->Stop());
  v1::TaskSpec spec = Spec(2);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(4);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));

  // The table and the JSON, both taken while hospital-d is out of the round in flight (the
  // round ends at the next step deadline).
  std::string table;
  v1::GetTaskResponse shown;
  ASSERT_OK(WaitFor(
      "hospital-d out of the round in flight",
      [&] {
        absl::StatusOr<CommandResult> printed = Console({"tasks", "show"}, {task_id});
        if (!printed.ok() || printed->exit_code() != 0) return false;
        table = printed->out;
        if (!absl::StrContains(table, ": hospital-d declined POLICY_REFUSED")) return false;
        shown = ShowJson(task_id);
        return shown.in_flight().sites_out_size() > 0;
      },
      absl::Seconds(60)));
  EXPECT_THAT(table,
              ::testing::ContainsRegex("out of round [0-9]+: hospital-d declined POLICY_REFUSED: "
                                       "policy.allowed_task_names: "));
  EXPECT_THAT(table, ::testing::Not(HasSubstr(": hospital-c declined")));
  // The same in the JSON, and only hospital-d.
  ASSERT_EQ(shown.in_flight().sites_out_size(), 1) << table;
  EXPECT_EQ(shown.in_flight().sites_out(0).client_id(), "hospital-d");
  ASSERT_OK(site("hospital-c").process->Continue());
}

TEST_F(E2eDiagnosticsTest, DatasetNoSiteHoldsKeepsTheTaskWaitingAndSaysWhy) {
  ASSERT_NO_FATAL_FAILURE(StartFederation());
  v1::TaskSpec spec = Spec(2);
  spec.mutable_dataset()->set_id("breast_cancr");  // misspelt
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(
      v1::TaskRecord waiting,
      WaitForTask(
          task_id, [](const v1::TaskRecord& t) { return t.has_waiting(); }, absl::Seconds(30)));
  EXPECT_EQ(waiting.state(), v1::TASK_RUNNING);
  v1::GetTaskResponse shown = ShowJson(task_id);
  EXPECT_EQ(shown.task().waiting().message(),
            "waiting for 3 sites holding dataset breast_cancr (have 0); no known site announces "
            "dataset breast_cancr (known sites announce: breast_cancer)");
  EXPECT_EQ(shown.task().waiting().needed(), 3u);
  EXPECT_EQ(shown.task().waiting().have(), 0u);
  ASSERT_OK_AND_ASSIGN(CommandResult table, Console({"tasks", "show"}, {task_id}));
  EXPECT_THAT(table.out, HasSubstr("waiting   waiting for 3 sites holding dataset breast_cancr"));
}

TEST_F(E2eDiagnosticsTest, MissingColumnFailsTheTaskNamingTheSitesDataError) {
  ASSERT_NO_FATAL_FAILURE(StartFederation());
  v1::TaskSpec spec = Spec(1);
  spec.mutable_dataset()->set_features(0, "no_such_column");
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(60)));
  ASSERT_EQ(done.state(), v1::TASK_FAILED) << done.state_reason();
  EXPECT_THAT(done.state_reason(),
              HasSubstr("statistics round failed after 1 attempt: hospital-a declined "
                        "DATA_ERROR: the task's column 'no_such_column' is not in the local "
                        "dataset (details in the site's log)"));
  v1::GetTaskResponse shown = ShowJson(task_id);
  ASSERT_EQ(shown.task().failed_round_attempts_size(), 1);
  for (const std::string& name : Sites()) {
    const v1::SiteAnswer a = AnswerOf(shown.task().failed_round_attempts(0), name);
    EXPECT_EQ(a.kind(), v1::SITE_ANSWER_DECLINED) << name;
    EXPECT_EQ(a.decline_reason(), v1::Decline::DATA_ERROR) << name;
  }
}

TEST_F(E2eDiagnosticsTest, FrozenSiteTurnsStaleAndFailsTheTaskAsNotConnected) {
  // A long-poll of 1 s: a frozen site's open PullWork returns within 1 s, and it is STALE
  // 2 s (twice the long-poll) after that.
  edit_coordinator_config_ = [](v1::CoordinatorConfig* c) { c->set_long_poll_seconds(1); };
  ASSERT_NO_FATAL_FAILURE(StartFederation());
  Process* frozen = site("hospital-c").process.get();
  ASSERT_OK(frozen->Stop());
  const absl::Time stopped = absl::Now();
  auto status_of = [&](const std::string& name) {
    absl::StatusOr<std::vector<v1::ClientRecord>> clients = ListClients();
    if (!clients.ok()) return v1::CLIENT_STATUS_UNSPECIFIED;
    for (const v1::ClientRecord& c : *clients) {
      if (c.client_id() == name) return c.status();
    }
    return v1::CLIENT_STATUS_UNSPECIFIED;
  };
  ASSERT_OK(WaitFor(
      "hospital-c STALE", [&] { return status_of("hospital-c") == v1::CLIENT_STALE; },
      absl::Seconds(20)));
  std::fprintf(stderr, "hospital-c STALE %.1f s after SIGSTOP\n",
               absl::ToDoubleSeconds(absl::Now() - stopped));
  ASSERT_OK_AND_ASSIGN(CommandResult listed, Console({"clients", "list"}, {"--json"}));
  ASSERT_EQ(listed.exit_code(), 0) << listed.err;
  v1::ListClientsResponse clients;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(listed.out, &clients).ok());
  ASSERT_EQ(clients.clients_size(), 3);
  for (const v1::ClientRecord& c : clients.clients()) {
    EXPECT_EQ(c.status(), c.client_id() == "hospital-c" ? v1::CLIENT_STALE : v1::CLIENT_ACTIVE)
        << c.client_id();
  }
  EXPECT_EQ(clients.stale_after_ms(), 2000);
  EXPECT_EQ(clients.offline_after_ms(), 90000);
  ASSERT_OK_AND_ASSIGN(CommandResult table, Console({"clients", "list"}));
  EXPECT_THAT(table.out, HasSubstr("hospital-c  STALE"));

  // Still within the liveness window, it is invited, and never fetches the work: while the
  // session's first step is open, the round in flight says so.
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(Spec(1)));
  ASSERT_OK(WaitFor(
      "hospital-c pending in the round in flight",
      [&] {
        absl::StatusOr<v1::GetTaskResponse> t = GetTask(task_id);
        if (!t.ok() || t->in_flight().stage_attempts().empty()) return false;
        const v1::StageAttempt& a = t->in_flight().stage_attempts(0);
        const v1::SiteAnswer c = AnswerOf(a, "hospital-c");
        return c.kind() == v1::SITE_ANSWER_PENDING &&
               c.detail() == "has not fetched the work yet" &&
               AnswerOf(a, "hospital-a").kind() == v1::SITE_ANSWER_PENDING;
      },
      absl::Seconds(20)));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(60)));
  ASSERT_EQ(done.state(), v1::TASK_FAILED) << done.state_reason();
  EXPECT_THAT(done.state_reason(),
              HasSubstr("statistics round failed after 1 attempt: hospital-c was not connected "
                        "(never fetched the work)"));
  v1::GetTaskResponse shown = ShowJson(task_id);
  ASSERT_EQ(shown.task().failed_round_attempts_size(), 1);
  EXPECT_EQ(AnswerOf(shown.task().failed_round_attempts(0), "hospital-c").kind(),
            v1::SITE_ANSWER_NOT_CONNECTED);

  // Thawed, it polls again and is ACTIVE.
  ASSERT_OK(frozen->Continue());
  ASSERT_OK(WaitFor(
      "hospital-c ACTIVE again", [&] { return status_of("hospital-c") == v1::CLIENT_ACTIVE; },
      absl::Seconds(20)));
}

}  // namespace
}  // namespace tessera::e2e
