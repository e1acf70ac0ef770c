// When the coordinator runs a session as SecAgg+ (SessionSparseSetup): only for a task that
// asks for it, only from its min_sites on, only when a sparse graph meets the conditions
// for every list the session may end up with, and with the spec's fractions in the set-up
// (which every site checks against its own minimum). And how the session's steps are
// posted: a message every site gets alike (the advertisement list is n certificates) is
// held once, not once per site; and what a step boundary hands the store.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "coordinator/internal/setup_bytes.h"
#include "coordinator/secure_stage.h"
#include "coordinator/work_board.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/transfer.h"
#include "proto/validation.h"
#include "secagg/client.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "tests/coordinator/secure_stage_testing.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

v1::TaskSpec PlusSpec(uint32_t min_sites) {
  v1::TaskSpec spec;
  spec.mutable_secure_aggregation()->mutable_secagg_plus()->set_min_sites(min_sites);
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

TEST(SessionSparseSetupTest, FullBonawitzUnlessTheSpecAsksAndTheCohortIsLargeEnough) {
  ASSERT_OK_AND_ASSIGN(auto none, SessionSparseSetup(v1::TaskSpec(), 1000));
  EXPECT_FALSE(none.has_value()) << "no secagg_plus in the spec";
  ASSERT_OK_AND_ASSIGN(auto below, SessionSparseSetup(PlusSpec(500), 499));
  EXPECT_FALSE(below.has_value()) << "below min_sites";
  v1::TaskSpec many_colluders = PlusSpec(4);
  many_colluders.mutable_secure_aggregation()->mutable_secagg_plus()->set_colluding_fraction(0.3);
  ASSERT_OK_AND_ASSIGN(auto dense, SessionSparseSetup(many_colluders, 30));
  EXPECT_FALSE(dense.has_value()) << "30 sites, 9 colluding: no sparse graph meets sigma = 40";

  ASSERT_OK_AND_ASSIGN(auto sparse, SessionSparseSetup(PlusSpec(500), 1000));
  ASSERT_TRUE(sparse.has_value());
  EXPECT_EQ(sparse->colluding_fraction(), 0.05);
  EXPECT_EQ(sparse->dropout_fraction(), 0.05);
  EXPECT_EQ(sparse->security_bits(), secagg::kSecAggPlusSecurityBits);
  EXPECT_EQ(sparse->correctness_bits(), secagg::kSecAggPlusCorrectnessBits);
  EXPECT_LT(sparse->neighbours(), 1000u / 4);
  // Whatever list of 667..1000 sites the session ends up with, every site accepts k.
  for (uint32_t listed : {secagg::DefaultThreshold(1000), 800u, 1000u}) {
    EXPECT_OK(secagg::ValidateSparse(*sparse, 1000, listed)) << listed;
  }
}

// How the in-process sites of AnswerAsSites behave, beyond answering every item.
struct SiteScript {
  // Sees each item as it is pulled, before the site lets go of it.
  std::function<void(const std::string& id, const PostedItem& item, v1::SecAggRound step)> seen;
  // False: the site leaves at that step (pulls its item, never answers it nor anything after).
  std::function<bool(const std::string& id, v1::SecAggRound step)> answers;
  // Called once the site's answer to `step` was accepted.
  std::function<void(const std::string& id, v1::SecAggRound step)> answered;
  // Set once the session has ended: the sites stop (RunWithSites).
  const absl::Notification* session_over = nullptr;
};

// In-process sites of `federation` answer the items of `cohort` pulled from `board`, step
// by step (the advertisement list's certificates fetched from `runner`, as
// Federation.FetchCertificates does for a daemon), until each has answered the unmasking or
// left, the session is over, or a minute has passed; as `script` says.
void AnswerAsSites(WorkBoard& board, SecureStageRunner& runner,
                   const secagg::testing::Federation& federation,
                   const std::vector<std::string>& cohort, const SiteScript& script) {
  std::map<std::string, std::unique_ptr<secagg::SecAggClient>> clients;
  std::set<std::string> finished;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (finished.size() < cohort.size() && absl::Now() < give_up &&
         (script.session_over == nullptr || !script.session_over->HasBeenNotified())) {
    for (const std::string& id : cohort) {
      if (finished.contains(id)) continue;
      std::shared_ptr<const PostedItem> item = board.Pull(id, absl::Now() + absl::Milliseconds(50));
      if (item == nullptr) continue;
      v1::WorkItem whole = item->Whole();
      const v1::SecAggRound step = whole.secagg().round();
      if (script.seen) script.seen(id, *item, step);
      item.reset();
      if (script.answers && !script.answers(id, step)) {
        finished.insert(id);
        continue;
      }
      if (whole.secagg().has_advertisements()) {
        for (v1::AdvertisementEntry& e :
             *whole.mutable_secagg()->mutable_advertisements()->mutable_entries()) {
          const std::string digest = e.advertisement().certificate_sha256();
          ASSERT_OK_AND_ASSIGN(std::vector<std::string> pem,
                               runner.ListedCertificates(whole.secagg_session(), id, {digest}));
          e.mutable_advertisement()->set_certificate(pem.front());
        }
      }
      v1::PushResultRequest answer;
      answer.set_work_id(whole.work_id());
      if (step == v1::SECAGG_ADVERTISE_KEYS) {
        ASSERT_OK_AND_ASSIGN(clients[id], secagg::SecAggClient::Start(
                                              federation.Identity(id), secagg::ClientPolicy(),
                                              whole.secagg().setup(), std::vector<uint32_t>(8, 1),
                                              absl::Now(), answer.mutable_secagg(), nullptr));
      } else {
        ASSERT_OK_AND_ASSIGN(*answer.mutable_secagg(), clients[id]->Handle(whole.secagg()));
        if (step == v1::SECAGG_UNMASKING) finished.insert(id);
      }
      ASSERT_OK(board.Push(id, answer));
      if (script.answered) script.answered(id, step);
    }
  }
}

// Runs `request`'s session on `runner` while in-process sites answer it (AnswerAsSites:
// `answering`, the cohort when empty; `seen` as there) and returns its result once it has
// ended (waiting 30 s at most after the sites' last answer, then cancelled: the session's
// thread is always joined).
SecureStageResult RunWithSites(
    WorkBoard& board, SecureStageRunner& runner, const secagg::testing::Federation& federation,
    const SecureStageRequest& request,
    const std::function<void(const std::string& id, const PostedItem& item, v1::SecAggRound step)>&
        seen,
    const std::vector<std::string>& answering = {}, SiteScript script = {}) {
  SecureStageResult result;
  absl::Notification done;
  std::thread run([&] {
    result = runner.Run(request);
    done.Notify();
  });
  absl::Cleanup stop = [&] {
    runner.Cancel();
    run.join();
  };
  script.seen = seen;
  script.session_over = &done;
  AnswerAsSites(board, runner, federation, answering.empty() ? request.cohort : answering, script);
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::move(stop).Invoke();
  return result;
}

// Five in-process sites answer a FIT session pulled from a real work board. Every step but
// the share relay is posted once: no site's own item carries the message, and every site's
// item holds the same shared bytes; the session completes with the sum of the inputs.
TEST(SecureStagePostingTest, AMessageEverySiteGetsIsHeldOnceForAllOfThem) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::testing::Federation> federation,
                       secagg::testing::Federation::Create(5));
  WorkBoard board;
  SecureStageRunner runner(&board, common::Clock::Real(), federation->ca_cert_pem());
  const SecureStageRequest request = testing::ToyStageRequest(*federation, v1::STAGE_ANALYTICS, 4);
  struct Posted {
    bool own_message = false;
    const std::string* shared = nullptr;
  };
  std::map<v1::SecAggRound, std::map<std::string, Posted>> posted;
  const SecureStageResult result =
      RunWithSites(board, runner, *federation, request,
                   [&](const std::string& id, const PostedItem& item, v1::SecAggRound step) {
                     posted[step][id] =
                         Posted{item.own.has_secagg() || !item.own_tail.empty(), item.shared.get()};
                   });
  EXPECT_TRUE(result.completed) << result.abort;
  ASSERT_EQ(posted.size(), 5u);
  for (const auto& [step, items] : posted) {
    ASSERT_EQ(items.size(), request.cohort.size()) << secagg::StepIndex(step);
    const std::string* first = items.begin()->second.shared;
    for (const auto& [id, p] : items) {
      if (step == v1::SECAGG_MASKED_INPUT) {
        EXPECT_TRUE(p.own_message) << id << ": a share relay is each site's own";
        continue;
      }
      EXPECT_FALSE(p.own_message) << id << " at step " << secagg::StepIndex(step);
      EXPECT_NE(p.shared, nullptr);
      EXPECT_EQ(p.shared, first) << id << ": one copy for every site";
    }
  }
}

// A set-up whose model is above one chunk (proto::kModelChunkBytes) posts it apart: the
// items' shared bytes announce its size and carry no model, every site's item holds the one
// copy, and the whole item (in process) has it back. A model of one chunk or less stays in
// the shared bytes.
TEST(SecureStagePostingTest, AModelAboveOneChunkTravelsApartFromTheSetUp) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::testing::Federation> federation,
                       secagg::testing::Federation::Create(3));
  for (const size_t parameters : {size_t{1000}, proto::kModelChunkBytes / 4 + 1}) {
    SCOPED_TRACE(parameters);
    WorkBoard board;
    SecureStageRunner runner(&board, common::Clock::Real(), federation->ca_cert_pem());
    SecureStageRequest request = testing::ToyStageRequest(*federation, v1::STAGE_ANALYTICS, 3);
    for (size_t i = 0; i < parameters; ++i) {
      request.first_item.mutable_model()->add_values(static_cast<float>(i));
    }
    request.first_item.set_model_hash(std::string(32, 'h'));
    std::thread run([&] { runner.Run(request); });
    absl::Cleanup stop = [&] {
      runner.Cancel();
      run.join();
    };
    std::vector<std::shared_ptr<const PostedItem>> items;
    for (const std::string& id : request.cohort) {
      items.push_back(board.Pull(id, absl::Now() + absl::Seconds(30)));
      ASSERT_NE(items.back(), nullptr) << id;
    }
    v1::WorkItem shared;
    ASSERT_TRUE(shared.ParseFromString(*items[0]->shared));
    const bool apart = parameters * 4 > proto::kModelChunkBytes;
    EXPECT_EQ(items[0]->model != nullptr, apart);
    EXPECT_EQ(shared.has_model(), !apart);
    if (apart) {
      EXPECT_EQ(shared.model_size(), items[0]->model->size());
      EXPECT_GT(shared.model_size(), proto::kModelChunkBytes);
      for (const auto& item : items) EXPECT_EQ(item->model.get(), items[0]->model.get());
      EXPECT_EQ(board.ModelFor(items[0]->own.work_id(), request.cohort[0]).get(),
                items[0]->model.get());
    }
    const v1::WorkItem whole = items[0]->Whole();
    EXPECT_EQ(whole.model().values_size(), static_cast<int>(parameters));
    EXPECT_EQ(whole.model_size(), 0u);
    EXPECT_EQ(whole.model_hash(), std::string(32, 'h'));
  }
}

// The model is serialized when the first step is posted and let go of once that step
// closes: the later steps of a session (4 MB of model at d = 10^6) do not hold it.
TEST(SecureStagePostingTest, TheSerializedModelIsLetGoOfOnceTheFirstStepCloses) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::testing::Federation> federation,
                       secagg::testing::Federation::Create(3));
  WorkBoard board;
  SecureStageRunner runner(&board, common::Clock::Real(), federation->ca_cert_pem());
  SecureStageRequest request = testing::ToyStageRequest(*federation, v1::STAGE_ANALYTICS, 3);
  const std::vector<float> values(proto::kModelChunkBytes / 4 + 1, 0.5f);
  std::weak_ptr<const std::string> made;
  int calls = 0;
  request.model = [&] {
    std::shared_ptr<const std::string> model = internal::SerializedModel(values);
    made = model;
    ++calls;
    return model;
  };
  request.first_item.set_model_hash(std::string(32, 'h'));
  std::set<v1::SecAggRound> later_steps;
  const SecureStageResult result =
      RunWithSites(board, runner, *federation, request,
                   [&](const std::string&, const PostedItem& item, v1::SecAggRound step) {
                     if (step == v1::SECAGG_ADVERTISE_KEYS) {
                       EXPECT_EQ(item.model, made.lock());
                     } else {
                       EXPECT_TRUE(made.expired()) << v1::SecAggRound_Name(step);
                       later_steps.insert(step);
                     }
                   });
  EXPECT_TRUE(result.completed) << result.abort;
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(later_steps.size(), 4u);  // share keys, masked input, consistency, unmasking
}

// Every step answered before the runner's next wake-up: each boundary is one call of
// `persist`, which carries the session's attempt record as the closed step left it (every
// site now pending at the next step), and attempt_changed is not called at all. The
// coordinator stores both in one synced write a step (task_runner_stage.cc), where it
// took three: the answers at the wake-up, again after the close, then the boundary.
TEST(SecureStageBoundaryTest, EachBoundaryIsOneWriteCarryingTheClosedStepsAnswers) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::testing::Federation> federation,
                       secagg::testing::Federation::Create(3));
  WorkBoard board;
  SecureStageRunner runner(&board, common::Clock::Real(), federation->ca_cert_pem());
  SecureStageRequest request = testing::ToyStageRequest(*federation, v1::STAGE_ANALYTICS, 3);
  request.answers_report_interval = absl::Hours(1);
  std::vector<v1::SecAggRound> boundaries;
  std::vector<std::optional<v1::StageAttempt>> attempts;
  request.persist = [&](v1::SecAggRound round, const std::optional<v1::StageAttempt>& attempt,
                        const SecureStageRequest::SnapshotSource& snapshot) {
    boundaries.push_back(round);
    attempts.push_back(attempt);
    return snapshot([](std::span<const std::string_view>) { return absl::OkStatus(); });
  };
  int reports = 0;
  request.attempt_changed = [&](const v1::StageAttempt&) { ++reports; };
  const SecureStageResult result = RunWithSites(board, runner, *federation, request,
                                                [](const std::string&, const PostedItem&, auto) {});
  EXPECT_TRUE(result.completed) << result.abort;
  EXPECT_EQ(reports, 0);
  ASSERT_THAT(boundaries,
              ::testing::ElementsAre(v1::SECAGG_ADVERTISE_KEYS, v1::SECAGG_SHARE_KEYS,
                                     v1::SECAGG_MASKED_INPUT, v1::SECAGG_CONSISTENCY_CHECK,
                                     v1::SECAGG_UNMASKING));
  EXPECT_FALSE(attempts[0].has_value()) << "the opening: no answers yet";
  for (size_t i = 1; i < attempts.size(); ++i) {
    SCOPED_TRACE(v1::SecAggRound_Name(boundaries[i]));
    ASSERT_TRUE(attempts[i].has_value());
    EXPECT_EQ(attempts[i]->session(), result.attempt.session());
    ASSERT_EQ(attempts[i]->sites_size(), 3);
    for (const v1::SiteAnswer& a : attempts[i]->sites()) {
      EXPECT_EQ(a.kind(), v1::SITE_ANSWER_PENDING) << a.client_id();
      EXPECT_EQ(a.step(), boundaries[i]) << a.client_id();
    }
  }
}

// A site refused (revoked, say) after the cohort was picked but before the session
// started, when no running session could be told (Coordinator::DropClient expels it only
// from running ones), is dropped as the session opens: the first step closes with the
// others' answers instead of waiting for it until its deadline (five minutes here).
TEST(SecureStageExpelTest, ASiteRefusedBeforeTheSessionStartsIsDroppedAsItOpens) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::testing::Federation> federation,
                       secagg::testing::Federation::Create(4));
  WorkBoard board;
  SecureStageRunner runner(&board, common::Clock::Real(), federation->ca_cert_pem());
  SecureStageRequest request = testing::ToyStageRequest(*federation, v1::STAGE_ANALYTICS, 3);
  request.first_step_deadline = absl::Minutes(5);
  const std::string refused = request.cohort.back();
  request.excluded = [&](const std::string& id) { return id == refused; };
  std::vector<std::string> answering = request.cohort;
  answering.pop_back();
  const SecureStageResult result = RunWithSites(
      board, runner, *federation, request, [](const std::string&, const PostedItem&, auto) {},
      answering);
  EXPECT_TRUE(result.completed) << result.abort;
  EXPECT_THAT(result.survivors, ::testing::ElementsAreArray(answering));
  ASSERT_EQ(result.drops.size(), 1u);
  EXPECT_THAT(result.drops[0], ::testing::HasSubstr(refused));
  EXPECT_THAT(result.drops[0], ::testing::HasSubstr("refused by the coordinator"));
}

// A site refused (revoked, say) during the share-keys step after it answered it: its
// answer is discarded and the step closes without it. Here that leaves two share holders
// (a third site left) for a threshold of three, so the session aborts there, before any
// site is asked for its masked input — which a site sends once a round, so a session
// aborted after some had sent theirs could not be tried again with them (the task would
// fail for one revocation: E2eRevocationTest saw it once). Whether the coordinator tells
// the session at once (Coordinator::DropClient: Expel) or has not yet as the step closes
// (the close asks `excluded` itself).
class SecureStageRefusalTest : public ::testing::TestWithParam<bool> {};

TEST_P(SecureStageRefusalTest, ASiteRefusedAfterItSharedKeysLeavesBeforeAnyMaskedInputIsAskedFor) {
  const bool told_at_once = GetParam();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::testing::Federation> federation,
                       secagg::testing::Federation::Create(4));
  WorkBoard board;
  SecureStageRunner runner(&board, common::Clock::Real(), federation->ca_cert_pem());
  SecureStageRequest request = testing::ToyStageRequest(*federation, v1::STAGE_ANALYTICS, 3);
  request.step_deadline = absl::Seconds(2);  // how long the step waits for the silent site
  const std::string refused = request.cohort[0];
  const std::string silent = request.cohort[2];
  std::atomic<bool> revoked{false};
  request.excluded = [&](const std::string& id) { return revoked.load() && id == refused; };
  std::set<v1::SecAggRound> steps;
  SiteScript script;
  script.answers = [&](const std::string& id, v1::SecAggRound step) {
    return !(id == silent && step == v1::SECAGG_SHARE_KEYS);
  };
  script.answered = [&](const std::string& id, v1::SecAggRound step) {
    if (id != refused || step != v1::SECAGG_SHARE_KEYS) return;
    if (told_at_once) {
      runner.Expel(refused, "revoked");
    } else {
      revoked = true;
    }
  };
  const SecureStageResult result = RunWithSites(
      board, runner, *federation, request,
      [&](const std::string&, const PostedItem&, v1::SecAggRound step) { steps.insert(step); }, {},
      script);
  EXPECT_FALSE(result.completed);
  EXPECT_THAT(result.abort, ::testing::HasSubstr("SECAGG_SHARE_KEYS"));
  EXPECT_FALSE(steps.contains(v1::SECAGG_MASKED_INPUT)) << "a masked input was asked for";
  EXPECT_THAT(result.drops, ::testing::Contains(::testing::HasSubstr(refused)));
}

INSTANTIATE_TEST_SUITE_P(Expel, SecureStageRefusalTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ToldAtOnce" : "AskedAtTheClose";
                         });

}  // namespace
}  // namespace tessera::coordinator
