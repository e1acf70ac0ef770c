// The coordinator core after a restart and over a store that fails or changes what it
// read back: a task resumes from its last committed round, a round evaluated in its own
// session is not evaluated again, a fit's result is stored with its round's commit, and a
// checkpoint that reads back changed stops the round naming it.
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "tests/coordinator/fake_site.h"
#include "tests/coordinator/fault_injecting_store.h"
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
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::FloatNear;

// A coordinator on the RocksDB store in `db` runs a `rounds`-round toy task with two sites
// that stop answering after round 2, and is shut down once round 2 has committed (round 3
// is then open); the task's id into `*task_id`. The store is closed on return.
void RunUntilRoundTwoCommits(const std::string& db, tessera::testing::TestPki& pki, uint32_t rounds,
                             std::string* task_id) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(db));
  ASSERT_OK_AND_ASSIGN(
      auto c, Coordinator::Create(std::move(store), common::Clock::Real(), FastOptions(pki)));
  FakeSite a(c.get(), &pki, "site-a", {.train_rows = 10, .delta = 1, .silent_after_round = 2});
  FakeSite b(c.get(), &pki, "site-b", {.train_rows = 10, .delta = 1, .silent_after_round = 2});
  ASSERT_OK_AND_ASSIGN(auto submitted, c->SubmitTask("op", ToySpec(rounds, 2)));
  *task_id = submitted.task_id();
  ASSERT_TRUE(Eventually([&] {
    auto t = c->GetTask(*task_id);
    return t.ok() && t->task().last_committed_round() == 2;
  }));
  c->Shutdown();
  a.Stop();
  b.Stop();
}

// A coordinator on the RocksDB store in `db` resumes its tasks with sites a and b (which
// answer every round) until `task_id` ends; the task as it ended into `*got` and, when
// `sessions` is non-null, the sessions site a took part in into `*sessions`.
void ResumeUntilFinished(const std::string& db, tessera::testing::TestPki& pki,
                         const std::string& task_id, v1::GetTaskResponse* got,
                         std::set<std::string>* sessions) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(db));
  ASSERT_OK_AND_ASSIGN(
      auto c, Coordinator::Create(std::move(store), common::Clock::Real(), FastOptions(pki)));
  ASSERT_OK(c->ResumeTasks());
  FakeSite a(c.get(), &pki, "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(c.get(), &pki, "site-b", {.train_rows = 10, .delta = 1});
  ASSERT_TRUE(Eventually([&] { return Finished(*c, task_id); }));
  ASSERT_OK_AND_ASSIGN(*got, c->GetTask(task_id));
  if (sessions != nullptr) *sessions = a.sessions_seen();
  c->Shutdown();
  a.Stop();
  b.Stop();
}

// A task resumed from an older coordinator's store: its last committed round ran an
// evaluation session of its own, so the next round does not evaluate that model again
// (the sites would refuse: they sent its evaluation already) and runs a plain FIT.
TEST(CoordinatorRestartTest, ARoundEvaluatedInItsOwnSessionIsNotEvaluatedAgain) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, tessera::testing::TestPki::Create(dir.path()));
  std::string task_id;
  ASSERT_NO_FATAL_FAILURE(RunUntilRoundTwoCommits(dir.File("db"), *pki, 3, &task_id));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(dir.File("db")));
    // Round 2 as an older coordinator committed it: with its own evaluate session.
    ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store->ListRounds(task_id));
    ASSERT_EQ(rounds.size(), 3u);
    v1::RoundRecord old = rounds[2];
    v1::StageAttempt* evaluate = old.add_stage_attempts();
    evaluate->set_round(2);
    evaluate->set_stage(v1::STAGE_EVALUATE);
    evaluate->set_session(task_id + "/r2/evaluate/a1");
    evaluate->set_completed(true);
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask(task_id));
    ASSERT_OK_AND_ASSIGN(std::vector<float> model, store->GetCheckpoint(task_id, 2));
    ASSERT_OK(store->CommitRound(task, old, model));
  }
  v1::GetTaskResponse got;
  std::set<std::string> sessions;
  ASSERT_NO_FATAL_FAILURE(ResumeUntilFinished(dir.File("db"), *pki, task_id, &got, &sessions));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  EXPECT_THAT(sessions,
              ::testing::UnorderedElementsAre(task_id + "/r3/fit/a1", task_id + "/r3/evaluate/a1"));
  EXPECT_EQ(got.rounds(2).evaluated_in_round(), 0u);
}

TEST(CoordinatorRestartTest, ResumesFromTheLastCommittedRoundAndKeepsCommittedRounds) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, tessera::testing::TestPki::Create(dir.path()));
  std::string task_id;
  std::vector<v1::RoundRecord> before;
  // The sites stop answering after round 2, so the coordinator is stopped while round 3 is
  // open.
  ASSERT_NO_FATAL_FAILURE(RunUntilRoundTwoCommits(dir.File("db"), *pki, 6, &task_id));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(dir.File("db")));
    ASSERT_OK_AND_ASSIGN(before, store->ListRounds(task_id));
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord stopped, store->GetTask(task_id));
    EXPECT_EQ(stopped.state(), v1::TASK_RUNNING) << "a shutdown does not end the task";
  }
  ASSERT_EQ(before.size(), 3u);
  v1::GetTaskResponse got;
  ASSERT_NO_FATAL_FAILURE(ResumeUntilFinished(dir.File("db"), *pki, task_id, &got, nullptr));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED);
  ASSERT_EQ(got.rounds_size(), 7);
  for (size_t r = 0; r < before.size(); ++r) {
    EXPECT_EQ(got.rounds(static_cast<int>(r)).committed_unix_ms(), before[r].committed_unix_ms())
        << "round " << r << " was committed before the restart and must not be redone";
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> after, OpenRocksDbStore(dir.File("db")));
  for (uint32_t r = 1; r <= 6; ++r) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> model, after->GetCheckpoint(task_id, r));
    EXPECT_THAT(model, Each(FloatNear(static_cast<float>(r), 1e-5))) << "round " << r;
  }
}

// A store noting the rounds of the in-flight records written with a fit's result.
class FitResultsStore : public testing::FaultInjectingStore {
 public:
  using FaultInjectingStore::FaultInjectingStore;
  absl::Status PutInFlight(const v1::InFlightRound& record) override {
    if (record.fit_done()) {
      absl::MutexLock lock(&mu_);
      rounds_.insert(record.round());
    }
    return FaultInjectingStore::PutInFlight(record);
  }
  std::set<uint32_t> rounds() {
    absl::MutexLock lock(&mu_);
    return rounds_;
  }

 private:
  absl::Mutex mu_;
  std::set<uint32_t> rounds_ ABSL_GUARDED_BY(mu_);
};

// A round's fit result is stored by the round's commit, in the same write, not before it:
// an in-flight record holding it is written only for the last round, whose model gets an
// evaluation session of its own before the commit. (A crash between a session's end and
// the commit resumes the session from its last boundary: the crash campaign's
// session_ended points, tests/e2e/crash_campaign_test.cc.)
TEST(CoordinatorStoreTest, AFitResultIsStoredByItsRoundsCommitUnlessAnEvaluationSessionFollows) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, tessera::testing::TestPki::Create(dir.path()));
  auto owned = std::make_unique<FitResultsStore>(NewMemoryStore());
  FitResultsStore* store = owned.get();
  ASSERT_OK_AND_ASSIGN(
      auto c, Coordinator::Create(std::move(owned), common::Clock::Real(), FastOptions(*pki)));
  FakeSite a(c.get(), pki.get(), "site-a", {.train_rows = 30, .delta = 1});
  FakeSite b(c.get(), pki.get(), "site-b", {.train_rows = 10, .delta = 5});
  ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted, c->SubmitTask("op", ToySpec(3, 2)));
  const std::string& id = submitted.task_id();
  ASSERT_TRUE(Eventually([&] { return Finished(*c, id); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, c->GetTask(id));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  EXPECT_EQ(got.task().last_committed_round(), 3);
  EXPECT_THAT(store->rounds(), ::testing::ElementsAre(3u));
}

// A store whose checkpoint of round 0 reads back changed after its first read, as damage
// would leave it.
class ChangingCheckpointStore : public testing::FaultInjectingStore {
 public:
  using FaultInjectingStore::FaultInjectingStore;
  absl::StatusOr<std::vector<float>> GetCheckpoint(const std::string& task_id,
                                                   uint32_t round) override {
    ASSIGN_OR_RETURN(std::vector<float> model, FaultInjectingStore::GetCheckpoint(task_id, round));
    if (round == 0 && reads_.fetch_add(1) > 0 && !model.empty()) model[0] += 1;
    return model;
  }

 private:
  std::atomic<int> reads_{0};
};

// A round's fit model is not held while its sessions run: each session's first step reads
// it back from the store, checked against the hash the round was planned with. One that
// reads back otherwise stops the task's runner with DATA_LOSS naming the checkpoint, and
// nothing is sent or committed on it.
TEST(CoordinatorStoreTest, AFitModelThatReadsBackChangedStopsTheRoundNamingTheCheckpoint) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, tessera::testing::TestPki::Create(dir.path()));
  absl::Mutex mu;
  std::vector<std::string> lines;
  common::SetLogSink([&](const std::string& line) {
    absl::MutexLock lock(&mu);
    lines.push_back(line);
  });
  absl::Cleanup no_sink = [] { common::SetLogSink(nullptr); };
  ASSERT_OK_AND_ASSIGN(
      auto c, Coordinator::Create(std::make_unique<ChangingCheckpointStore>(NewMemoryStore()),
                                  common::Clock::Real(), FastOptions(*pki)));
  FakeSite a(c.get(), pki.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(c.get(), pki.get(), "site-b", {.train_rows = 10, .delta = 1});
  ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted, c->SubmitTask("op", ToySpec(2, 2)));
  const auto stopped = [&] {
    absl::MutexLock lock(&mu);
    for (const std::string& line : lines) {
      if (line.find("task_runner_stopped") != std::string::npos &&
          line.find("checkpoint of " + submitted.task_id() +
                    " round 0 is not the model round 1 "
                    "was sent") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(Eventually(stopped));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, c->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_RUNNING) << "a store error leaves the task to resume";
  EXPECT_EQ(got.task().last_committed_round(), 0);
  EXPECT_THAT(c->store()->GetCheckpoint(submitted.task_id(), 1),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace tessera::coordinator
