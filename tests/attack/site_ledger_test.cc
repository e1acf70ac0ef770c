// The site's egress ledger against its real agent (client::SiteAgent over a real RocksDB
// site store, with the ledger its daemon attaches): each answer to a secure-aggregation
// step is written with the ledger entry of the PushResult that carries it, in one synced
// store write, and sending that answer writes no second entry. The ledger still holds
// exactly one entry per message sent, with the SHA-256 of the bytes sent, and verifies; a
// session's end is checkpointed in the same write. The ledger itself:
// tests/client/ledger_test.cc; against what a coordinator received:
// tests/e2e/ledger_e2e_test.cc.
#include <memory>
#include <string>
#include <vector>

#include "client/ledger.h"
#include "client/site_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"
#include "proto/validation.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

class SiteLedgerTest : public ::testing::TestWithParam<bool> {
 protected:
  // One FIT session over three sites that each have a ledger; with GetParam() the release
  // is differentially private, so the masked input's write also charges the budget.
  void RunSession() {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(3));
    for (const std::string& id : federation_->ids()) ASSERT_OK(federation_->AttachLedger(id));
    ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, AttackFederation::ExampleSpec());
    if (GetParam()) {
      spec.mutable_privacy()->set_clip_norm(0.1);
      spec.mutable_privacy()->set_noise_multiplier(1.5);
      spec.mutable_privacy()->set_epsilon_budget(10);
      spec.mutable_privacy()->set_delta(1e-5);
      ASSERT_THAT(proto::ValidateTaskSpec(spec), ::testing::IsEmpty());
      proto::ApplyTaskDefaults(&spec);
    }
    StagePlan plan;
    plan.stage = v1::STAGE_FIT;
    plan.cohort = federation_->ids();
    plan.spec = spec;
    ASSERT_OK_AND_ASSIGN(plan.standardization, federation_->PooledStandardization(spec));
    ASSERT_OK_AND_ASSIGN(plan.model, proto::InitialParameters(spec.model(), 30, spec.seed()));
    const StageOutcome outcome = RunStage(*federation_, plan);
    ASSERT_TRUE(outcome.completed) << outcome.abort;
    ASSERT_TRUE(outcome.declines.empty());
  }

  std::unique_ptr<AttackFederation> federation_;
};

TEST_P(SiteLedgerTest, EachAnswerAndItsLedgerEntryAreOneStoreWrite) {
  ASSERT_NO_FATAL_FAILURE(RunSession());
  for (const std::string& id : federation_->ids()) {
    SCOPED_TRACE(id);
    const std::vector<std::string>& sent = federation_->sent(id);
    // The five steps of the session, each answered once.
    ASSERT_EQ(sent.size(), 5u);
    ASSERT_OK_AND_ASSIGN(std::vector<v1::LedgerEntry> entries,
                         federation_->store(id).ListLedgerEntries());
    ASSERT_OK_AND_ASSIGN(std::vector<v1::LedgerCheckpoint> checkpoints,
                         federation_->store(id).ListLedgerCheckpoints());
    // One entry per message sent, none twice, each with the digest of the bytes sent.
    ASSERT_EQ(entries.size(), sent.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(entries[i].kind(), v1::LEDGER_PUSH_RESULT);
      EXPECT_EQ(entries[i].sent_sha256(), sent[i]) << "entry " << i + 1;
      EXPECT_EQ(entries[i].step(), i + 1);
    }
    // Each answer's session write carried its entry, and the session's end its
    // checkpoint: one write per answer, nothing appended apart.
    EXPECT_EQ(federation_->store_writes(id), static_cast<int>(sent.size()));
    ASSERT_OK_AND_ASSIGN(client::LedgerVerification verified,
                         client::VerifyLedger(entries, checkpoints, federation_->ca_cert_pem()));
    EXPECT_EQ(verified.entries, sent.size());
    EXPECT_EQ(verified.signed_through, sent.size());
    EXPECT_EQ(verified.site_id, id);
  }
}

// The input words (the bulk of a snapshot before the masked input) are written once, with
// the session's first record; the snapshots of the later steps leave them out, and the
// session's end drops the snapshot (with it, in the store, the input).
TEST_P(SiteLedgerTest, TheInputIsWrittenOnceASession) {
  ASSERT_NO_FATAL_FAILURE(RunSession());
  for (const std::string& id : federation_->ids()) {
    SCOPED_TRACE(id);
    const std::vector<AttackFederation::SessionWrite>& writes = federation_->session_writes(id);
    ASSERT_EQ(writes.size(), 5u);  // the five steps' answers
    EXPECT_GT(writes[0].input_bytes, 0u);
    EXPECT_EQ(writes[0].input_bytes % 4, 0u);
    for (size_t i = 1; i < writes.size(); ++i) {
      EXPECT_EQ(writes[i].input_bytes, 0u) << "write " << i + 1;
    }
    for (size_t i = 0; i + 1 < writes.size(); ++i) {
      EXPECT_GT(writes[i].snapshot_bytes, 0u) << "write " << i + 1;
    }
    EXPECT_EQ(writes.back().snapshot_bytes, 0u);
  }
}

TEST_P(SiteLedgerTest, AnAnswerSentAgainIsRecordedAgain) {
  ASSERT_NO_FATAL_FAILURE(RunSession());
  // The coordinator asks site-1 for its unmasking answer again (a redelivery): the stored
  // answer, byte for byte, recorded as a message of its own.
  const std::string id = federation_->ids().front();
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteSessionRecord> sessions,
                       federation_->store(id).ListSessions());
  ASSERT_EQ(sessions.size(), 1u);
  const int writes = federation_->store_writes(id);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::LedgerEntry> before,
                       federation_->store(id).ListLedgerEntries());
  v1::WorkItem again = federation_->last_item(id);
  const v1::PushResultRequest answer = federation_->Ask(id, again);
  ASSERT_TRUE(answer.has_secagg()) << answer.ShortDebugString();
  ASSERT_OK_AND_ASSIGN(std::vector<v1::LedgerEntry> after,
                       federation_->store(id).ListLedgerEntries());
  ASSERT_EQ(after.size(), before.size() + 1);
  EXPECT_EQ(after.back().sent_sha256(), before.back().sent_sha256());
  EXPECT_EQ(after.back().sent_sha256(), federation_->sent(id).back());
  // The replay writes no session record; its entry is its own write.
  EXPECT_GE(federation_->store_writes(id), writes + 1);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::LedgerCheckpoint> checkpoints,
                       federation_->store(id).ListLedgerCheckpoints());
  EXPECT_OK(client::VerifyLedger(after, checkpoints, federation_->ca_cert_pem()).status());
}

INSTANTIATE_TEST_SUITE_P(Releases, SiteLedgerTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Charged" : "Plain";
                         });

}  // namespace
}  // namespace tessera::attack
