// End-to-end: the coordinator's side of the sites' decisions and of round provenance, with
// real daemons on loopback. A site stands in for its staff through
// TESSERA_TEST_DECISION_FILE (tessera-client-under-test): it declines AWAITING_APPROVAL,
// REJECTED_BY_SITE or SITE_BUDGET_EXHAUSTED while the file says so. Checked: a task waits
// for an approval without spending its attempts, shows the site's decision in `tessera
// tasks show` and completes once the site approves; a rejection fails the task with the
// site's name and reason; a site out of budget is left out while the others suffice; the
// wait ends at approval_timeout_seconds naming the site; and `tessera tasks provenance`
// verifies a completed task's rounds with the CA certificate and refuses a tampered record
// or another CA, naming what failed.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/provenance.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

bool Finished(const v1::TaskRecord& task) {
  return task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
         task.state() == v1::TASK_CANCELLED;
}

// The decision the coordinator last heard from `site`; UNSPECIFIED if none.
v1::SiteDecisionState DecisionOf(const v1::TaskRecord& task, const std::string& site) {
  for (const v1::SiteDecision& d : task.site_decisions()) {
    if (d.client_id() == site) return d.state();
  }
  return v1::SITE_DECISION_UNSPECIFIED;
}

class E2eSiteApprovalTest : public FederationTest {
 protected:
  // The demo task cut to `rounds`, with short deadlines and one attempt per round: a
  // session spent while a site awaits approval would end it at once if it counted.
  static v1::TaskSpec Spec(uint32_t rounds) {
    absl::StatusOr<v1::TaskSpec> spec = LoadExampleTask();
    EXPECT_OK(spec.status());
    spec->set_rounds(rounds);
    spec->set_round_deadline_seconds(2);
    spec->set_max_round_attempts(1);
    spec->mutable_secure_aggregation()->set_step_deadline_seconds(30);
    return *spec;
  }

  // PKI, data, coordinator, and the sites' daemons; a site listed in `decisions` runs
  // with a decision file holding that word.
  void StartFederation(const std::vector<std::string>& sites,
                       const std::map<std::string, std::string>& decisions) {
    ASSERT_OK(MakeTestPki(sites));
    ASSERT_OK(SplitData(sites));
    ASSERT_OK(StartCoordinator());
    for (const std::string& name : sites) {
      std::map<std::string, std::string> env;
      if (auto it = decisions.find(name); it != decisions.end()) {
        ASSERT_OK(SetDecision(name, it->second));
        env["TESSERA_TEST_DECISION_FILE"] = DecisionFile(name);
      }
      ASSERT_OK(StartClient(name, "", env, /*min_cohort=*/3));
    }
    for (const std::string& name : sites) ASSERT_OK(WaitClientReady(name));
  }

  std::string DecisionFile(const std::string& name) { return site(name).dir + "/decision"; }
  absl::Status SetDecision(const std::string& name, const std::string& word) {
    return common::WriteFileAtomic(DecisionFile(name), word + "\n");
  }
};

TEST_F(E2eSiteApprovalTest, AwaitingApprovalKeepsTheTaskWaitingUntilTheSiteApproves) {
  ASSERT_NO_FATAL_FAILURE(StartFederation(Sites(), {{"hospital-b", "await"}}));
  v1::TaskSpec spec = Spec(2);
  spec.set_approval_timeout_seconds(600);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));

  // hospital-b's decline is shown per site; the others approved by advertising their keys.
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord waiting, WaitForTask(task_id, [](const v1::TaskRecord& t) {
                         return Finished(t) ||
                                DecisionOf(t, "hospital-b") == v1::SITE_AWAITING_APPROVAL;
                       }));
  ASSERT_EQ(waiting.state(), v1::TASK_RUNNING) << waiting.state_reason();
  ASSERT_OK_AND_ASSIGN(CommandResult shown, Console({"tasks", "show"}, {task_id}));
  ASSERT_EQ(shown.exit_code(), 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("SITE        DECISION"));
  EXPECT_THAT(shown.out, HasSubstr("hospital-b  AWAITING_APPROVAL"));
  EXPECT_THAT(shown.out, HasSubstr("the site's staff have not decided on this task yet"));

  // The first session's first step closed at its 2 s deadline without hospital-b: with one
  // attempt per round the task would have failed had that session counted. It waits.
  ASSERT_OK(WaitFor(
      "a second session of the task",
      [&] { return coordinator()->Log().find("/a2 ") != std::string::npos; }, absl::Seconds(60)));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse still, GetTask(task_id));
  EXPECT_EQ(still.task().state(), v1::TASK_RUNNING) << still.task().state_reason();

  // The staff approve: no restart; the work is offered again and the task completes.
  ASSERT_OK(SetDecision("hospital-b", "approve"));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  EXPECT_EQ(DecisionOf(done, "hospital-b"), v1::SITE_APPROVED);
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse rounds, GetTask(task_id));
  ASSERT_EQ(rounds.rounds_size(), 3);
  for (const v1::RoundRecord& r : rounds.rounds()) {
    EXPECT_EQ(r.fit_participants_size(), 3) << "round " << r.round();
  }
  ASSERT_OK_AND_ASSIGN(shown, Console({"tasks", "show"}, {task_id}));
  EXPECT_THAT(shown.out, HasSubstr("hospital-b  APPROVED"));
}

TEST_F(E2eSiteApprovalTest, AwaitingApprovalPastTheTimeoutFailsNamingTheSite) {
  ASSERT_NO_FATAL_FAILURE(StartFederation(Sites(), {{"hospital-c", "await"}}));
  v1::TaskSpec spec = Spec(1);
  spec.set_approval_timeout_seconds(3);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  EXPECT_EQ(done.state(), v1::TASK_FAILED);
  EXPECT_THAT(done.state_reason(),
              AllOf(HasSubstr("still awaiting approval after 3 s (approval_timeout_seconds)"),
                    HasSubstr("hospital-c")));
  EXPECT_EQ(DecisionOf(done, "hospital-c"), v1::SITE_AWAITING_APPROVAL);
}

TEST_F(E2eSiteApprovalTest, RejectedBySiteFailsTheTaskWithTheSitesReason) {
  ASSERT_NO_FATAL_FAILURE(
      StartFederation(Sites(), {{"hospital-c", "reject not approved by our ethics board"}}));
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(Spec(2)));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  EXPECT_EQ(done.state(), v1::TASK_FAILED);
  EXPECT_THAT(done.state_reason(),
              HasSubstr("hospital-c rejected the task: not approved by our ethics board"));
  EXPECT_EQ(DecisionOf(done, "hospital-c"), v1::SITE_REJECTED);
  ASSERT_OK_AND_ASSIGN(CommandResult shown, Console({"tasks", "show"}, {task_id}));
  EXPECT_THAT(shown.out, HasSubstr("hospital-c  REJECTED"));
  EXPECT_THAT(shown.out, HasSubstr("not approved by our ethics board"));
  ASSERT_OK_AND_ASSIGN(CommandResult waited, Console({"tasks", "wait"}, {task_id}));
  EXPECT_EQ(waited.exit_code(), 1);  // failed
  EXPECT_THAT(waited.err, HasSubstr("hospital-c rejected the task"));
}

TEST_F(E2eSiteApprovalTest, SiteBudgetExhaustedSiteIsLeftOutWhileTheOthersSuffice) {
  const std::vector<std::string> sites = {"hospital-a", "hospital-b", "hospital-c", "hospital-d"};
  ASSERT_NO_FATAL_FAILURE(StartFederation(sites, {{"hospital-d", "budget"}}));
  v1::TaskSpec spec = Spec(2);
  spec.set_min_clients(3);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  EXPECT_EQ(DecisionOf(done, "hospital-d"), v1::SITE_BUDGET_EXHAUSTED);
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse task, GetTask(task_id));
  for (const v1::RoundRecord& r : task.rounds()) {
    EXPECT_THAT(r.fit_participants(), Not(::testing::Contains("hospital-d")))
        << "round " << r.round();
  }
  ASSERT_OK_AND_ASSIGN(CommandResult shown, Console({"tasks", "show"}, {task_id}));
  EXPECT_THAT(shown.out, HasSubstr("hospital-d  BUDGET_EXHAUSTED"));
}

TEST_F(E2eSiteApprovalTest, SiteBudgetExhaustedFailsTheTaskNamingTheSiteWhenTooFewAreLeft) {
  ASSERT_NO_FATAL_FAILURE(StartFederation(Sites(), {{"hospital-a", "budget"}}));
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(Spec(1)));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  EXPECT_EQ(done.state(), v1::TASK_FAILED);
  EXPECT_THAT(done.state_reason(),
              AllOf(HasSubstr("hospital-a refused the task: its privacy budget is exhausted"),
                    HasSubstr("3 needed")));
}

class E2eProvenanceTest : public FederationTest {
 protected:
  // Copies of round 1's provenance record saved in `saved`, each tampered with, are refused
  // offline, the error naming why: a consistency signature dropped, a survivor dropped, a
  // signature that is not hospital-b's.
  void ExpectTamperedCopiesRefused(const std::string& saved) {
    v1::RoundProvenance record;
    {
      common::TextLocations where;
      ASSERT_OK(common::LoadProtoFile(saved, &record, &where));
    }
    auto verify_tampered = [&](const v1::RoundProvenance& tampered) -> CommandResult {
      const std::string path = temp().path() + "/tampered.provenance";
      EXPECT_OK(common::WriteFileAtomic(path, common::ToTextProto(tampered)));
      absl::StatusOr<CommandResult> r = Console({"tasks", "provenance"}, {"--file", path});
      EXPECT_OK(r.status());
      return r.ok() ? *r : CommandResult{};
    };
    v1::RoundProvenance dropped = record;
    dropped.mutable_sessions(0)->mutable_signatures()->RemoveLast();
    CommandResult r = verify_tampered(dropped);
    EXPECT_NE(r.exit_code(), 0);
    EXPECT_THAT(r.err, HasSubstr("2 consistency signatures, fewer than the threshold 3"));

    // The coordinator claims hospital-c's input was not in the sum: with three sites and a
    // threshold of 3 that is too few survivors; with more sites the signatures would not
    // verify over the shorter set (tests/secagg/provenance_test.cc).
    v1::RoundProvenance altered = record;
    altered.mutable_sessions(0)->mutable_survivors()->RemoveLast();
    r = verify_tampered(altered);
    EXPECT_NE(r.exit_code(), 0);
    EXPECT_THAT(r.err, AllOf(HasSubstr("fit session task-1/r1/fit/a1"),
                             HasSubstr("2 survivors, fewer than the threshold 3")));

    // A signature that is not hospital-b's.
    v1::RoundProvenance forged = record;
    std::string* sig = forged.mutable_sessions(1)->mutable_signatures(1)->mutable_signature();
    (*sig)[sig->size() / 2] ^= 0x01;
    r = verify_tampered(forged);
    EXPECT_NE(r.exit_code(), 0);
    EXPECT_THAT(r.err,
                AllOf(HasSubstr("fit_evaluate session task-1/r2/fit_evaluate/a1: hospital-b"),
                      HasSubstr("the consistency signature does not verify")));
  }
};

TEST_F(E2eProvenanceTest, CompletedTaskProvenanceVerifiesAndTamperingIsNamed) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  absl::StatusOr<v1::TaskSpec> spec = LoadExampleTask();
  ASSERT_OK(spec.status());
  spec->set_rounds(2);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(*spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();

  // The task's view leaves provenance out; the round's has it.
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse task, GetTask(task_id));
  for (const v1::RoundRecord& r : task.rounds()) EXPECT_FALSE(r.has_provenance());

  const std::string saved = temp().path() + "/round1.provenance";
  ASSERT_OK_AND_ASSIGN(CommandResult shown,
                       Console({"tasks", "provenance"}, {task_id, "--round", "1", "--out", saved}));
  ASSERT_EQ(shown.exit_code(), 0) << shown.out << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("task       task-1 round 1"));
  EXPECT_THAT(shown.out, HasSubstr("fit session task-1/r1/fit/a1"));
  // Round 1's model was evaluated in round 2's session (one session per round), which ran
  // on it: round 1's provenance holds that session too.
  EXPECT_THAT(shown.out, HasSubstr("fit_evaluate session task-1/r2/fit_evaluate/a1"));
  EXPECT_THAT(shown.out, HasSubstr("survivors   hospital-a, hospital-b, hospital-c"));
  EXPECT_THAT(shown.out, HasSubstr("signed by   hospital-a, hospital-b, hospital-c"));
  EXPECT_THAT(shown.out, HasSubstr("verified   every certificate and signature checks out"));

  ASSERT_OK_AND_ASSIGN(CommandResult zero,
                       Console({"tasks", "provenance"}, {task_id, "--round", "0", "--json"}));
  ASSERT_EQ(zero.exit_code(), 0) << zero.out << zero.err;
  v1::ProvenanceReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(zero.out, &report).ok()) << zero.out;
  EXPECT_TRUE(report.verified());
  EXPECT_EQ(report.error(), "");
  ASSERT_EQ(report.provenance().sessions_size(), 1);
  EXPECT_EQ(report.provenance().sessions(0).stage(), v1::STAGE_STATISTICS);
  EXPECT_EQ(report.provenance().sessions(0).survivors_size(), 3);

  ASSERT_OK_AND_ASSIGN(CommandResult missing,
                       Console({"tasks", "provenance"}, {task_id, "--round", "7"}));
  EXPECT_NE(missing.exit_code(), 0);
  EXPECT_THAT(missing.err, HasSubstr("task-1 has no committed round 7"));

  // Another federation's CA: the sites' certificates do not chain to it.
  ASSERT_OK_AND_ASSIGN(CommandResult foreign,
                       Console({"tasks", "provenance"}, {task_id, "--round", "1", "--verify-ca",
                                                         pki()->foreign_ca_cert_path()}));
  EXPECT_NE(foreign.exit_code(), 0);
  EXPECT_THAT(foreign.err,
              AllOf(HasSubstr("provenance does not verify"), HasSubstr("hospital-a: certificate")));

  // The saved record verifies offline; tampered copies do not, and the error names why.
  ASSERT_OK_AND_ASSIGN(CommandResult offline, Console({"tasks", "provenance"}, {"--file", saved}));
  EXPECT_EQ(offline.exit_code(), 0) << offline.err;
  ASSERT_NO_FATAL_FAILURE(ExpectTamperedCopiesRefused(saved));
}

}  // namespace
}  // namespace tessera::e2e
