// Attack 5 of the privacy issue: ε under-counted. Only committed rounds used to be charged,
// so a model-update sum unmasked in an attempt that then failed, or just before the
// coordinator crashed, was released without being charged — and the round, redone, released
// another noisy sum of the same update. An operator who fakes crashes gets more releases
// than the budget allows.
//
// Here the real coordinator core runs in process over a real RocksDB store with three real
// sites answering over its work board; the store refuses the commit of round 1 once (what
// a crash right before the commit leaves behind); the coordinator is then rebuilt on the same
// store (a restart) and the task runs to its end. Every model-update sum the coordinator
// could unmask is counted from the sites' side (a FIT session in which at least t sites
// released their unmasking shares). The fix charges every such release, durably, before the
// unmasking step is posted, and a restart continues the same session instead of releasing a
// new sum: the ε the task reports covers every release.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "coordinator/privacy_accountant.h"
#include "coordinator/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "proto/validation.h"
#include "tests/attack/attack_federation.h"
#include "tests/coordinator/fault_injecting_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::attack {
namespace {

// The sites' loops against one coordinator: pull, answer with the real agent, push. Counts,
// per FIT (or FIT_EVALUATE) session, the sites that released unmasking shares and the session's
// threshold.
class SiteLoops {
 public:
  SiteLoops(AttackFederation* federation, coordinator::Coordinator* coordinator)
      : federation_(federation), coordinator_(coordinator) {}
  ~SiteLoops() { Stop(); }

  absl::Status Start(const std::string& dataset) {
    for (const std::string& site : federation_->ids()) {
      v1::HelloRequest hello;
      hello.add_dataset_ids(dataset);
      RETURN_IF_ERROR(coordinator_->Hello(site, site, hello, 1).status());
    }
    for (const std::string& site : federation_->ids()) {
      threads_.emplace_back([this, site] { Loop(site); });
    }
    return absl::OkStatus();
  }
  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  struct Session {
    uint32_t threshold = 0;
    int released = 0;
  };

 private:
  void Loop(const std::string& site) {
    while (!stop_.load()) {
      auto item = coordinator_->PullWork(site, absl::Now() + absl::Milliseconds(50));
      if (!item.ok() || *item == nullptr) continue;
      const v1::WorkItem& work = **item;
      const v1::PushResultRequest answer = federation_->Ask(
          site, work,
          [&](const std::vector<std::string>& sha256s) -> absl::StatusOr<std::vector<std::string>> {
            ASSIGN_OR_RETURN(
                v1::FetchCertificatesResponse response,
                coordinator_->FetchCertificates(site, client::FetchRequestFor(work, sha256s)));
            return client::FetchedCertificates(response);
          });
      if (work.stage() == v1::STAGE_FIT || work.stage() == v1::STAGE_FIT_EVALUATE) {
        Count(work, answer);  // a FIT_EVALUATE session is the round's fit
      }
      (void)coordinator_->PushResult(site, answer);
    }
  }
  void Count(const v1::WorkItem& work, const v1::PushResultRequest& answer);

  AttackFederation* const federation_;
  coordinator::Coordinator* const coordinator_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;

 public:
  static absl::Mutex mu;
  static std::map<std::string, Session> sessions ABSL_GUARDED_BY(mu);
};

absl::Mutex SiteLoops::mu;
std::map<std::string, SiteLoops::Session> SiteLoops::sessions;

void SiteLoops::Count(const v1::WorkItem& work, const v1::PushResultRequest& answer) {
  absl::MutexLock lock(&mu);
  // A session is its set-up (its nonce): a label reused after a restart with a fresh set-up
  // is another session.
  static std::map<std::string, std::string> nonce_of_label;
  if (work.secagg().has_setup()) {
    nonce_of_label[work.secagg_session()] = work.secagg().setup().session_nonce();
  }
  Session& s = sessions[work.secagg_session() + "/" + nonce_of_label[work.secagg_session()]];
  if (work.secagg().has_setup()) s.threshold = work.secagg().setup().threshold();
  if (work.secagg().round() == v1::SECAGG_UNMASKING && answer.has_secagg()) ++s.released;
}

coordinator::CoordinatorOptions Options(const AttackFederation& federation) {
  coordinator::CoordinatorOptions options;
  options.ca_cert_pem = federation.ca_cert_pem();
  options.client_liveness = absl::Hours(1);
  options.runner.cohort_poll_interval = absl::Milliseconds(5);
  options.runner.retry_pause = absl::Milliseconds(10);
  return options;
}

TEST(EpsilonAttack, ACrashBeforeTheCommitLeavesNoReleaseUncharged) {
  {
    absl::MutexLock lock(&SiteLoops::mu);
    SiteLoops::sessions.clear();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AttackFederation> federation, AttackFederation::Create(3));
  v1::TaskSpec spec;
  const std::string path = SourcePath("deploy/examples/breast_cancer_dp.textproto");
  ASSERT_OK(common::LoadProtoFile(path, &spec, nullptr));
  spec.set_rounds(3);
  spec.set_round_deadline_seconds(60);
  ASSERT_TRUE(proto::ValidateTaskSpec(spec).empty());
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> base,
                       coordinator::OpenRocksDbStore(dir.File("coordinator")));

  // First life: the commit of round 1 is refused, as if the process died right before it.
  auto first_store = std::make_unique<coordinator::testing::FaultInjectingStore>(base.get());
  std::atomic<bool> refused{false};
  first_store->SetWriteHook([&refused](const std::string& op, int round) {
    if (op == "CommitRound" && round == 1 && !refused.exchange(true)) {
      return absl::UnavailableError("the coordinator crashed right before this commit");
    }
    return absl::OkStatus();
  });
  ASSERT_OK_AND_ASSIGN(
      auto first, coordinator::Coordinator::Create(std::move(first_store), common::Clock::Real(),
                                                   Options(*federation)));
  std::string task_id;
  {
    SiteLoops loops(federation.get(), first.get());
    ASSERT_OK(loops.Start(spec.dataset().id()));
    ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted, first->SubmitTask("operator", spec));
    task_id = submitted.task_id();
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (!refused.load() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_TRUE(refused.load()) << "round 1 never reached its commit";
    first->Shutdown();
  }
  first.reset();

  // Second life on the same store: the task resumes and runs to its end.
  ASSERT_OK_AND_ASSIGN(auto second,
                       coordinator::Coordinator::Create(
                           std::make_unique<coordinator::testing::FaultInjectingStore>(base.get()),
                           common::Clock::Real(), Options(*federation)));
  v1::GetTaskResponse done;
  {
    SiteLoops loops(federation.get(), second.get());
    ASSERT_OK(loops.Start(spec.dataset().id()));
    ASSERT_OK(second->ResumeTasks());
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      ASSERT_OK_AND_ASSIGN(done, second->GetTask(task_id));
      if (done.task().state() != v1::TASK_PENDING && done.task().state() != v1::TASK_RUNNING) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    second->Shutdown();
  }
  ASSERT_EQ(done.task().state(), v1::TASK_COMPLETED) << done.task().state_reason();

  // Every FIT sum the coordinator could unmask, counted from the sites' side.
  int releases = 0;
  {
    absl::MutexLock lock(&SiteLoops::mu);
    for (const auto& [session, s] : SiteLoops::sessions) {
      if (s.threshold > 0 && s.released >= static_cast<int>(s.threshold)) ++releases;
    }
  }
  ASSERT_GE(releases, static_cast<int>(spec.rounds()));
  ASSERT_OK_AND_ASSIGN(
      double owed, coordinator::GaussianEpsilon(spec.privacy().noise_multiplier(), 1.0, releases,
                                                spec.privacy().delta()));
  double reported = -1;
  for (const v1::Metric& m : done.rounds(done.rounds_size() - 1).metrics()) {
    if (m.name() == "epsilon") reported = m.value();
  }
  EXPECT_GE(reported, owed - 1e-9) << releases << " model-update sums could be unmasked; the task "
                                   << "reports epsilon " << reported << ", they cost " << owed;
}

}  // namespace
}  // namespace tessera::attack
