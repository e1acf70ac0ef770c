// The approval queue and the policy reload with real daemons (tests/e2e/federation.h): a task
// arrives pending at two sites whose policy requires approval, `tessera-client tasks pending`
// (a real process, through each daemon's control socket) shows it, `tasks show` prints the
// coordinator's spec hash, both sites approve through the socket without a restart, and the
// task completes. A reload (SIGHUP, and `tasks reload` through the socket) turns the queue on
// in running daemons; a refused file changes nothing and the error names the field. A
// rejection through the socket ends the task with the site's reason. The coordinator shows
// each site's decision (`tessera tasks show`) and keeps a pending task waiting.

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/process.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kDeadline = absl::Seconds(60);

class ApprovalE2eTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(SplitData());
    ASSERT_OK(StartCoordinator());
  }

  void RequireApproval(const std::string& name) { site(name).policy.set_require_approval(true); }

  absl::StatusOr<CommandResult> Tasks(const std::string& name,
                                      const std::vector<std::string>& words) {
    std::vector<std::string> argv = {ClientBinary(), "tasks"};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.insert(argv.end(), {"--config", site(name).config_path});
    return RunCommand(argv);
  }

  // Polls `tasks pending` at `name` until it lists `task_id`.
  absl::Status WaitPending(const std::string& name, const std::string& task_id) {
    const absl::Time until = absl::Now() + kDeadline;
    std::string last;
    while (absl::Now() < until) {
      ASSIGN_OR_RETURN(CommandResult r, Tasks(name, {"pending"}));
      if (r.exit_code() == 0 && absl::StrContains(r.out, task_id)) return absl::OkStatus();
      last = r.out + r.err;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::DeadlineExceededError(
        absl::StrCat(name, ": ", task_id, " never pending; last output:\n", last));
  }

  // Polls the daemon's log until it holds `text`.
  absl::Status WaitLog(const std::string& name, const std::string& text) {
    const absl::Time until = absl::Now() + kDeadline;
    while (absl::Now() < until) {
      if (absl::StrContains(site(name).process->Log(), text)) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::DeadlineExceededError(absl::StrCat(name, "'s log never said ", text));
  }

  // Polls the coordinator until it shows `name` waiting for its staff on `task_id`.
  absl::Status WaitCoordinatorSeesWaiting(const std::string& task_id, const std::string& name) {
    return WaitForTask(task_id,
                       [&](const v1::TaskRecord& t) {
                         for (const v1::SiteDecision& d : t.site_decisions()) {
                           if (d.client_id() == name)
                             return d.state() == v1::SITE_AWAITING_APPROVAL;
                         }
                         return false;
                       })
        .status();
  }

  absl::StatusOr<std::string> Submit() {
    ASSIGN_OR_RETURN(v1::TaskSpec spec, LoadExampleTask());
    spec.set_rounds(3);
    return SubmitTask(spec);
  }

  // Approves `task_id` at each site as soon as it is pending there, then waits for it.
  void ApproveAndComplete(const std::string& task_id, const std::vector<std::string>& sites) {
    ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse submitted, GetTask(task_id));
    const std::string hash = crypto::ToHex(submitted.task().spec_hash());
    for (const std::string& name : sites) {
      ASSERT_OK(WaitPending(name, task_id));
      ASSERT_OK(WaitCoordinatorSeesWaiting(task_id, name));
      ASSERT_OK_AND_ASSIGN(CommandResult shown, Tasks(name, {"show", task_id}));
      ASSERT_EQ(shown.exit_code(), 0) << shown.err;
      EXPECT_THAT(shown.out, HasSubstr("spec_sha256:  " + hash));
      EXPECT_THAT(shown.out, HasSubstr("status:       pending"));
      EXPECT_THAT(shown.out, HasSubstr("fit        32 values"));  // 31 parameters and the weight
      ASSERT_OK_AND_ASSIGN(CommandResult approved,
                           Tasks(name, {"approve", task_id, "--reason", "ethics ok"}));
      ASSERT_EQ(approved.exit_code(), 0) << approved.err;
      EXPECT_THAT(approved.out, HasSubstr("approved by root (uid 0)"));
    }
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, [](const v1::TaskRecord& t) {
                           return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                         }));
    EXPECT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  }

  // Rewrites `name`'s config file with `edit` applied.
  void EditConfigFile(const std::string& name, const std::function<void(v1::ClientConfig&)>& edit) {
    v1::ClientConfig config;
    ASSERT_OK(common::LoadProtoFile(site(name).config_path, &config, nullptr));
    edit(config);
    ASSERT_OK(common::WriteFileAtomic(site(name).config_path, common::ToTextProto(config)));
  }
};

TEST_F(ApprovalE2eTest, TaskPendingAtTwoSitesIsApprovedThroughTheSocketAndCompletes) {
  if (::geteuid() != 0) GTEST_SKIP() << "the approvals name root as the caller";
  RequireApproval("hospital-a");
  RequireApproval("hospital-b");
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(CommandResult none, Tasks("hospital-a", {"pending"}));
  EXPECT_THAT(none.out, HasSubstr("no task is waiting"));
  ASSERT_OK_AND_ASSIGN(std::string task_id, Submit());
  ApproveAndComplete(task_id, {"hospital-a", "hospital-b"});
  ASSERT_OK_AND_ASSIGN(CommandResult after, Tasks("hospital-b", {"pending"}));
  EXPECT_THAT(after.out, HasSubstr("no task is waiting"));
  EXPECT_THAT(site("hospital-a").process->Log(), HasSubstr("reason=AWAITING_APPROVAL"));
}

TEST_F(ApprovalE2eTest, TaskRejectedThroughTheSocketEndsWithTheSitesReason) {
  RequireApproval("hospital-c");
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(std::string task_id, Submit());
  ASSERT_OK(WaitPending("hospital-c", task_id));
  ASSERT_OK_AND_ASSIGN(CommandResult no_reason, Tasks("hospital-c", {"reject", task_id}));
  EXPECT_EQ(no_reason.exit_code(), 2);
  EXPECT_THAT(no_reason.err, HasSubstr("--reason"));
  ASSERT_OK(WaitCoordinatorSeesWaiting(task_id, "hospital-c"));
  ASSERT_OK_AND_ASSIGN(CommandResult shown_console, Console({"tasks", "show"}, {task_id}));
  EXPECT_THAT(shown_console.out, HasSubstr("AWAITING_APPROVAL"));
  ASSERT_OK_AND_ASSIGN(
      CommandResult rejected,
      Tasks("hospital-c", {"reject", task_id, "--reason", "outside our ethics approval"}));
  ASSERT_EQ(rejected.exit_code(), 0) << rejected.err;
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  EXPECT_EQ(done.state(), v1::TASK_FAILED);
  EXPECT_THAT(done.state_reason(),
              HasSubstr("hospital-c rejected the task: outside our ethics approval"));
  ASSERT_OK_AND_ASSIGN(CommandResult shown, Tasks("hospital-c", {"show", task_id}));
  EXPECT_THAT(shown.out, HasSubstr("rejected by root (uid 0)"));
}

TEST_F(ApprovalE2eTest, PolicyReloadBySighupAndSocketTakesEffectWithoutRestart) {
  if (::geteuid() != 0) GTEST_SKIP() << "the approvals name root as the caller";
  ASSERT_OK(StartClients());
  // A refused file: the socket's caller gets the error naming the field; SIGHUP logs it.
  EditConfigFile("hospital-b",
                 [](v1::ClientConfig& c) { c.mutable_policy()->set_min_threshold_fraction(2); });
  ASSERT_OK_AND_ASSIGN(CommandResult refused, Tasks("hospital-b", {"reload"}));
  EXPECT_NE(refused.exit_code(), 0);
  EXPECT_THAT(refused.err, HasSubstr("policy.min_threshold_fraction"));
  ASSERT_OK(site("hospital-b").process->Kill(SIGHUP));
  ASSERT_OK(WaitLog("hospital-b", "policy_reload_refused via=SIGHUP"));
  // Valid files: b through the socket (reporting a field that needs a restart), c by SIGHUP.
  EditConfigFile("hospital-b", [](v1::ClientConfig& c) {
    c.mutable_policy()->set_min_threshold_fraction(0);
    c.mutable_policy()->set_require_approval(true);
    c.mutable_retry()->set_max_backoff_ms(600);
  });
  ASSERT_OK_AND_ASSIGN(CommandResult reloaded, Tasks("hospital-b", {"reload"}));
  ASSERT_EQ(reloaded.exit_code(), 0) << reloaded.err;
  EXPECT_THAT(reloaded.out, HasSubstr("policy reloaded from " + site("hospital-b").config_path));
  EXPECT_THAT(reloaded.out, HasSubstr("next start only: retry"));
  EditConfigFile("hospital-c",
                 [](v1::ClientConfig& c) { c.mutable_policy()->set_require_approval(true); });
  ASSERT_OK(site("hospital-c").process->Kill(SIGHUP));
  ASSERT_OK(WaitLog("hospital-c", "policy_reloaded via=SIGHUP"));
  // The reloaded policies hold tasks for approval at b and c (and only there).
  ASSERT_OK_AND_ASSIGN(std::string task_id, Submit());
  ApproveAndComplete(task_id, {"hospital-b", "hospital-c"});
  ASSERT_OK_AND_ASSIGN(CommandResult a, Tasks("hospital-a", {"show", task_id}));
  EXPECT_NE(a.exit_code(), 0);
  EXPECT_THAT(a.err, HasSubstr("never asked"));
}

}  // namespace
}  // namespace tessera::e2e
