// The egress ledger (client/ledger.h): its encoding, the chain and checkpoints written by
// EgressLedger, and VerifyLedger / VerifyLedgerBundle naming the entry that was changed,
// removed or moved, over the in-memory store and the RocksDB store (an older store gains the
// ledger's families).
#include "client/ledger.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/site_store.h"
#include "common/files.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"
#include "rocksdb/db.h"
#include "tests/testing/raw_rocksdb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, testing::TestPki::Create(temp_.path()));
    ASSERT_OK_AND_ASSIGN(v1::TlsFiles tls,
                         pki_->IssueNode("hospital-a", crypto::Role::kInstitution));
    ASSERT_OK_AND_ASSIGN(cert_pem_, common::ReadFile(tls.cert()));
    ASSERT_OK_AND_ASSIGN(ca_pem_, common::ReadFile(tls.ca_cert()));
    ASSERT_OK_AND_ASSIGN(std::string key, common::ReadFile(tls.key()));
    ASSERT_OK_AND_ASSIGN(crypto::Signer signer,
                         crypto::Signer::Create(crypto::SecretBytes(std::move(key))));
    signer_ = std::make_unique<crypto::Signer>(std::move(signer));
  }

  // `n` messages through an EgressLedger over `store`, a checkpoint every `every`; the
  // message at `ends` (1-based, 0 for none) ends a session.
  void Record(SiteStore* store, int n, uint32_t every, int ends = 0) {
    std::unique_ptr<EgressLedger> ledger = OpenLedger(store, every);
    ASSERT_NE(ledger, nullptr);
    for (int i = 1; i <= n; ++i) {
      ASSERT_OK(ledger->Record(Answer(static_cast<uint32_t>(i % 5 + 1), i == ends),
                               absl::StrCat("bytes of message ", i), absl::Now()));
    }
  }

  // An EgressLedger over `store`, a checkpoint every `every` entries.
  std::unique_ptr<EgressLedger> OpenLedger(SiteStore* store, uint32_t every = 64) {
    EgressLedgerOptions options;
    options.coordinator_address = "127.0.0.1:7443";
    options.coordinator_name = "coordinator";
    options.checkpoint_every = every;
    options.certificate_pem = cert_pem_;
    auto ledger = EgressLedger::Open(store, signer_.get(), options);
    EXPECT_OK(ledger.status());
    return ledger.ok() ? *std::move(ledger) : nullptr;
  }

  // A site's answer to `step` of one session.
  static EgressMessage Answer(uint32_t step, bool ends_session = false) {
    EgressMessage m;
    m.kind = v1::LEDGER_PUSH_RESULT;
    m.task_id = "task-1";
    m.round = 1;
    m.stage = v1::STAGE_FIT;
    m.session = "task-1/r1/fit/a1";
    m.step = step;
    m.ends_session = ends_session;
    return m;
  }

  // EgressLedger::RecordWith of `bytes` whose write stores the records as a session write
  // would (counted in *writes).
  static absl::Status RecordWith(EgressLedger& ledger, SiteStore& store, const EgressMessage& m,
                                 const std::string& bytes, int* writes) {
    return ledger.RecordWith(
        m, bytes.size(), crypto::Sha256(bytes), absl::Now(), [&](const LedgerRecords& records) {
          ++*writes;
          v1::SiteSessionRecord session;
          session.set_session(m.session);
          return store.PutSessionWithLedger(session, nullptr, nullptr, records);
        });
  }

  absl::StatusOr<LedgerVerification> Verify(SiteStore& store) {
    ASSIGN_OR_RETURN(auto entries, store.ListLedgerEntries());
    ASSIGN_OR_RETURN(auto checkpoints, store.ListLedgerCheckpoints());
    return VerifyLedger(entries, checkpoints, ca_pem_);
  }

  testing::TempDir temp_;
  std::unique_ptr<testing::TestPki> pki_;
  std::string cert_pem_;
  std::string ca_pem_;
  std::unique_ptr<crypto::Signer> signer_;
};

TEST_F(LedgerTest, EntryHashIsOverTheDocumentedEncoding) {
  v1::LedgerEntry e;
  e.set_sequence(1);
  e.set_sent_unix_ms(2);
  e.set_coordinator_address("a");
  e.set_coordinator_name("n");
  e.set_kind(v1::LEDGER_PUSH_RESULT);
  e.set_task_id("t");
  e.set_round(3);
  e.set_stage(v1::STAGE_FIT);
  e.set_session("s");
  e.set_step(4);
  e.set_declined(true);
  e.set_byte_count(5);
  e.set_sent_sha256(std::string(32, 'x'));
  e.set_prev_hash(std::string(32, '\0'));
  auto str = [](const std::string& s) {
    return std::string{0, 0, 0, static_cast<char>(s.size())} + s;
  };
  auto u32 = [](char v) { return std::string{0, 0, 0, v}; };
  auto u64 = [](char v) { return std::string(7, '\0') + std::string(1, v); };
  const std::string want = str("tessera/ledger-entry/v1") + u64(1) + u64(2) + str("a") + str("n") +
                           u32(3) + str("t") + u32(3) + u32(2) + str("s") + u32(4) +
                           std::string(1, 1) + u64(5) + str(std::string(32, 'x')) +
                           str(std::string(32, '\0'));
  EXPECT_EQ(LedgerEntryEncoding(e), want);
  EXPECT_EQ(LedgerEntryHash(e), crypto::Sha256(want));
}

TEST_F(LedgerTest, ChainAndCheckpointsVerify) {
  auto store = NewMemorySiteStore();
  Record(store.get(), 10, 4, /*ends=*/6);
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_EQ(entries.size(), 10u);
  EXPECT_EQ(entries[0].prev_hash(), std::string(32, '\0'));
  EXPECT_EQ(entries[1].prev_hash(), LedgerEntryHash(entries[0]));
  EXPECT_EQ(entries[2].sent_sha256(), crypto::Sha256("bytes of message 3"));
  EXPECT_EQ(entries[2].byte_count(), std::string("bytes of message 3").size());
  ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
  std::vector<uint64_t> at;
  at.reserve(checkpoints.size());
  for (const auto& c : checkpoints) at.push_back(c.sequence());
  EXPECT_EQ(at, (std::vector<uint64_t>{4, 6, 8}));
  EXPECT_EQ(checkpoints[1].reason(), "session_end");
  ASSERT_OK_AND_ASSIGN(LedgerVerification v, Verify(*store));
  EXPECT_EQ(v.entries, 10u);
  EXPECT_EQ(v.checkpoints, 3u);
  EXPECT_EQ(v.signed_through, 8u);
  EXPECT_EQ(v.site_id, "hospital-a");
}

TEST_F(LedgerTest, AnEntryWrittenWithItsAnswerIsNotWrittenAgainWhenTheAnswerIsSent) {
  auto store = NewMemorySiteStore();
  std::unique_ptr<EgressLedger> ledger = OpenLedger(store.get());
  ASSERT_NE(ledger, nullptr);
  int writes = 0;
  ASSERT_OK(RecordWith(*ledger, *store, Answer(5, /*ends_session=*/true), "unmasking", &writes));
  EXPECT_EQ(writes, 1);
  // The session's end is checkpointed in the same write.
  ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].sequence(), 1u);
  EXPECT_EQ(checkpoints[0].reason(), "session_end");
  // Sending it: already recorded, nothing appended.
  ASSERT_OK(ledger->Record(Answer(5, true), "unmasking", absl::Now()));
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].sent_sha256(), crypto::Sha256("unmasking"));
  EXPECT_EQ(entries[0].byte_count(), std::string("unmasking").size());
  EXPECT_EQ(entries[0].step(), 5u);
  // The next message is recorded as before, chained after it.
  ASSERT_OK(ledger->Record(Answer(1), "next", absl::Now()));
  ASSERT_OK_AND_ASSIGN(LedgerVerification v, Verify(*store));
  EXPECT_EQ(v.entries, 2u);
  EXPECT_EQ(v.signed_through, 1u);
}

TEST_F(LedgerTest, AnEntryWrittenAheadWhoseMessageIsNotSentNextStaysInTheChain) {
  auto store = NewMemorySiteStore();
  std::unique_ptr<EgressLedger> ledger = OpenLedger(store.get());
  ASSERT_NE(ledger, nullptr);
  int writes = 0;
  ASSERT_OK(RecordWith(*ledger, *store, Answer(2), "shares", &writes));
  // Other bytes go out instead: their own entry; then the answer after all: another.
  ASSERT_OK(ledger->Record(Answer(2), "other bytes", absl::Now()));
  ASSERT_OK(ledger->Record(Answer(2), "shares", absl::Now()));
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].sent_sha256(), crypto::Sha256("shares"));
  EXPECT_EQ(entries[1].sent_sha256(), crypto::Sha256("other bytes"));
  EXPECT_EQ(entries[2].sent_sha256(), crypto::Sha256("shares"));
  EXPECT_OK(Verify(*store).status());
}

TEST_F(LedgerTest, AFailedWriteWithAnAnswerLeavesTheChainAsItWas) {
  auto store = NewMemorySiteStore();
  std::unique_ptr<EgressLedger> ledger = OpenLedger(store.get());
  ASSERT_NE(ledger, nullptr);
  EXPECT_THAT(
      ledger->RecordWith(Answer(3), 6, crypto::Sha256("masked"), absl::Now(),
                         [](const LedgerRecords&) { return absl::UnavailableError("disk full"); }),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("disk full")));
  // Nothing was written, so sending the answer records it then.
  ASSERT_OK(ledger->Record(Answer(3), "masked", absl::Now()));
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].sequence(), 1u);
  EXPECT_EQ(entries[0].sent_sha256(), crypto::Sha256("masked"));
  EXPECT_OK(Verify(*store).status());
}

// The daemon's PullWork after an answer (EgressLedger::WriteNextAhead).
EgressMessage Pull() {
  EgressMessage m;
  m.kind = v1::LEDGER_PULL_WORK;
  return m;
}

TEST_F(LedgerTest, TheRequestAfterAnAnswerIsWrittenWithItAndNotAgainWhenSent) {
  auto store = NewMemorySiteStore();
  std::unique_ptr<EgressLedger> ledger = OpenLedger(store.get());
  ASSERT_NE(ledger, nullptr);
  int writes = 0;
  ledger->WriteNextAhead(Pull(), "pull");
  ASSERT_OK(RecordWith(*ledger, *store, Answer(5, /*ends_session=*/true), "unmasking", &writes));
  EXPECT_EQ(writes, 1);
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_EQ(entries.size(), 2u);  // both in that one write
  EXPECT_EQ(entries[1].kind(), v1::LEDGER_PULL_WORK);
  EXPECT_EQ(entries[1].sequence(), 2u);
  EXPECT_EQ(entries[1].prev_hash(), LedgerEntryHash(entries[0]));
  EXPECT_EQ(entries[1].sent_sha256(), crypto::Sha256("pull"));
  // The session's checkpoint is over the answer, the request follows it.
  ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].sequence(), 1u);
  // Sending both: found, nothing appended.
  ASSERT_OK(ledger->Record(Answer(5, true), "unmasking", absl::Now()));
  ASSERT_OK(ledger->Record(Pull(), "pull", absl::Now()));
  ASSERT_OK_AND_ASSIGN(entries, store->ListLedgerEntries());
  EXPECT_EQ(entries.size(), 2u);
  // The next message chains after the request; the stop checkpoint seals it all.
  ASSERT_OK(ledger->Record(Pull(), "pull", absl::Now()));
  ASSERT_OK(ledger->Checkpoint("stop", absl::Now()));
  ASSERT_OK_AND_ASSIGN(LedgerVerification v, Verify(*store));
  EXPECT_EQ(v.entries, 3u);
  EXPECT_EQ(v.signed_through, 3u);
}

TEST_F(LedgerTest, ARequestWrittenAheadButNotSentNextStaysInTheChain) {
  auto store = NewMemorySiteStore();
  std::unique_ptr<EgressLedger> ledger = OpenLedger(store.get());
  ASSERT_NE(ledger, nullptr);
  int writes = 0;
  ledger->WriteNextAhead(Pull(), "pull listing model A");
  ASSERT_OK(RecordWith(*ledger, *store, Answer(2), "shares", &writes));
  ASSERT_OK(ledger->Record(Answer(2), "shares", absl::Now()));
  // Other bytes go out after the answer (the request changed): an entry of their own.
  ASSERT_OK(ledger->Record(Pull(), "pull listing model B", absl::Now()));
  // An answer not sent before the request: the request is not found either.
  ledger->WriteNextAhead(Pull(), "pull");
  ASSERT_OK(RecordWith(*ledger, *store, Answer(3), "masked", &writes));
  ASSERT_OK(ledger->Record(Pull(), "pull", absl::Now()));
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  std::vector<std::string> sent(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) sent[i] = entries[i].sent_sha256();
  EXPECT_EQ(sent, (std::vector<std::string>{
                      crypto::Sha256("shares"), crypto::Sha256("pull listing model A"),
                      crypto::Sha256("pull listing model B"), crypto::Sha256("masked"),
                      crypto::Sha256("pull"), crypto::Sha256("pull")}));
  EXPECT_OK(Verify(*store).status());
}

TEST_F(LedgerTest, ARequestAfterWhichACheckpointIsDueIsNotWrittenAhead) {
  auto store = NewMemorySiteStore();
  std::unique_ptr<EgressLedger> ledger = OpenLedger(store.get(), /*every=*/2);
  ASSERT_NE(ledger, nullptr);
  int writes = 0;
  ledger->WriteNextAhead(Pull(), "pull");
  ASSERT_OK(RecordWith(*ledger, *store, Answer(2), "shares", &writes));
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_EQ(entries.size(), 1u);  // entry 2 is due a checkpoint: recorded when sent
  ASSERT_OK(ledger->Record(Answer(2), "shares", absl::Now()));
  ASSERT_OK(ledger->Record(Pull(), "pull", absl::Now()));
  ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].sequence(), 2u);
  ASSERT_OK_AND_ASSIGN(LedgerVerification v, Verify(*store));
  EXPECT_EQ(v.entries, 2u);
  EXPECT_EQ(v.signed_through, 2u);
}

TEST_F(LedgerTest, ARequestAnnouncedBeforeAnAnswerRecordedAloneIsForgotten) {
  auto store = NewMemorySiteStore();
  std::unique_ptr<EgressLedger> ledger = OpenLedger(store.get());
  ASSERT_NE(ledger, nullptr);
  int writes = 0;
  ledger->WriteNextAhead(Pull(), "pull");
  // A decline is recorded when sent (Record), not with a session write: no request ahead.
  ASSERT_OK(ledger->Record(Answer(1), "decline", absl::Now()));
  ASSERT_OK(RecordWith(*ledger, *store, Answer(2), "shares", &writes));
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].sent_sha256(), crypto::Sha256("shares"));
}

TEST_F(LedgerTest, ReopenedLedgerContinuesTheChain) {
  auto store = NewMemorySiteStore();
  Record(store.get(), 3, 64);
  Record(store.get(), 3, 64);
  ASSERT_OK_AND_ASSIGN(LedgerVerification v, Verify(*store));
  EXPECT_EQ(v.entries, 6u);
}

TEST_F(LedgerTest, EveryChangedFieldIsNamed) {
  auto store = NewMemorySiteStore();
  Record(store.get(), 8, 8);
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
  std::vector<std::function<void(v1::LedgerEntry&)>> changes = {
      [](v1::LedgerEntry& e) { e.set_byte_count(e.byte_count() + 1); },
      [](v1::LedgerEntry& e) { e.set_task_id("other"); },
      [](v1::LedgerEntry& e) { e.set_sent_unix_ms(e.sent_unix_ms() - 1); },
      [](v1::LedgerEntry& e) { e.mutable_sent_sha256()->at(0) ^= 1; },
      [](v1::LedgerEntry& e) { e.set_declined(true); },
      [](v1::LedgerEntry& e) { e.set_coordinator_address("elsewhere:1"); },
  };
  for (const auto& change : changes) {
    auto copy = entries;
    change(copy[4]);  // entry 5
    EXPECT_THAT(VerifyLedger(copy, checkpoints, ca_pem_),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 5: changed")));
  }
  // The last entry has no successor: its checkpoint names it.
  auto copy = entries;
  copy[7].set_byte_count(1);
  EXPECT_THAT(VerifyLedger(copy, checkpoints, ca_pem_),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("entry 8 is not the entry")));
}

TEST_F(LedgerTest, RemovedAndReorderedEntriesAreNamed) {
  auto store = NewMemorySiteStore();
  Record(store.get(), 8, 8);
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
  auto removed = entries;
  removed.erase(removed.begin() + 2);
  EXPECT_THAT(VerifyLedger(removed, checkpoints, ca_pem_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 3: missing")));
  auto swapped = entries;
  std::swap(swapped[2], swapped[3]);
  EXPECT_THAT(VerifyLedger(swapped, checkpoints, ca_pem_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 3: out of order")));
  // Renumbered after the swap: the chain breaks there.
  swapped[2].set_sequence(3);
  swapped[3].set_sequence(4);
  EXPECT_THAT(VerifyLedger(swapped, checkpoints, ca_pem_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 2: changed")));
  auto cut = entries;
  cut.pop_back();
  EXPECT_THAT(VerifyLedger(cut, checkpoints, ca_pem_),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("checkpoint at entry 8: no such entry")));
}

TEST_F(LedgerTest, ForgedCheckpointsAreRefused) {
  auto store = NewMemorySiteStore();
  Record(store.get(), 4, 4);
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
  auto changed = checkpoints;
  changed[0].set_signed_unix_ms(changed[0].signed_unix_ms() + 1);
  EXPECT_THAT(VerifyLedger(entries, changed, ca_pem_),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("checkpoint at entry 4: the signature does not verify")));
  // Signed by a certificate of another CA.
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles foreign,
                       pki_->IssueForeign("hospital-a", crypto::Role::kInstitution));
  ASSERT_OK_AND_ASSIGN(std::string foreign_pem, common::ReadFile(foreign.cert()));
  changed = checkpoints;
  changed[0].set_certificate_pem(foreign_pem);
  EXPECT_THAT(VerifyLedger(entries, changed, ca_pem_),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("checkpoint at entry 4")));
}

TEST_F(LedgerTest, BundleVerifiesAndATamperedOneDoesNot) {
  auto store = NewMemorySiteStore();
  Record(store.get(), 10, 4);
  ASSERT_OK_AND_ASSIGN(v1::LedgerBundle bundle,
                       ExportLedgerBundle(*store, *signer_, cert_pem_, "hospital-a", absl::Now()));
  ASSERT_OK_AND_ASSIGN(LedgerVerification v, VerifyLedgerBundle(bundle, ca_pem_));
  EXPECT_EQ(v.signed_through, 10u);  // the bundle's signature covers the unsigned tail
  v1::LedgerBundle cut = bundle;
  cut.mutable_entries()->RemoveLast();  // entry 10, after the last checkpoint
  EXPECT_THAT(VerifyLedgerBundle(cut, ca_pem_),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("bundle: the signature")));
  v1::LedgerBundle changed = bundle;
  changed.mutable_entries(2)->set_byte_count(1);
  EXPECT_THAT(VerifyLedgerBundle(changed, ca_pem_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 3: changed")));
  v1::LedgerBundle other_site = bundle;
  other_site.set_site_id("hospital-b");
  EXPECT_THAT(VerifyLedgerBundle(other_site, ca_pem_),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("bundle: signed by")));
}

TEST_F(LedgerTest, StoreAppendsOnlyTheNextSequence) {
  const std::string dir = temp_.File("store");
  for (bool rocksdb : {false, true}) {
    SCOPED_TRACE(rocksdb ? "rocksdb" : "memory");
    std::unique_ptr<SiteStore> store;
    if (rocksdb) {
      ASSERT_OK_AND_ASSIGN(store, OpenSiteStore(dir));
    } else {
      store = NewMemorySiteStore();
    }
    EXPECT_THAT(store->LastLedgerEntry(), StatusIs(absl::StatusCode::kNotFound));
    v1::LedgerEntry e;
    e.set_sequence(2);
    e.set_sent_sha256(std::string(32, 'a'));
    e.set_prev_hash(std::string(32, 'b'));
    EXPECT_THAT(store->AppendLedgerEntry(e), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                      HasSubstr("entry 2 after entry 0")));
    e.set_sequence(1);
    e.set_prev_hash("short");
    EXPECT_THAT(store->AppendLedgerEntry(e), StatusIs(absl::StatusCode::kInvalidArgument));
    e.set_prev_hash(std::string(32, 'b'));
    ASSERT_OK(store->AppendLedgerEntry(e));
    EXPECT_THAT(store->AppendLedgerEntry(e), StatusIs(absl::StatusCode::kFailedPrecondition));
    v1::LedgerCheckpoint c;
    c.set_sequence(2);
    c.set_head_hash(std::string(32, 'c'));
    EXPECT_THAT(store->PutLedgerCheckpoint(c),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names no stored entry")));
    c.set_sequence(1);
    ASSERT_OK(store->PutLedgerCheckpoint(c));
    ASSERT_OK_AND_ASSIGN(v1::LedgerEntry last, store->LastLedgerEntry());
    EXPECT_EQ(last.sequence(), 1u);
    ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
    EXPECT_EQ(checkpoints.size(), 1u);
  }
  // Survives a reopen; a read-only open sees it and refuses writes.
  ASSERT_OK_AND_ASSIGN(auto read_only, OpenSiteStoreReadOnly(dir));
  ASSERT_OK_AND_ASSIGN(auto entries, read_only->ListLedgerEntries());
  EXPECT_EQ(entries.size(), 1u);
  v1::LedgerEntry e = entries[0];
  e.set_sequence(2);
  EXPECT_THAT(read_only->AppendLedgerEntry(e), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(LedgerTest, OlderStoreWithoutLedgerFamiliesOpensAndGainsThem) {
  const std::string dir = temp_.File("store");
  { ASSERT_OK_AND_ASSIGN(auto store, OpenSiteStore(dir)); }
  // What a store of format 1 made before the ledger looks like: no ledger families.
  testing::WithRawDb(dir, [](rocksdb::DB* db, testing::RawFamilies& families) {
    for (const char* name : {"ledger", "ledger_checkpoints"}) {
      ASSERT_TRUE(families.count(name));
      ASSERT_TRUE(db->DropColumnFamily(families[name]).ok());
    }
  });
  testing::WithRawDb(dir, [](rocksdb::DB*, testing::RawFamilies& families) {
    EXPECT_FALSE(families.count("ledger"));
  });
  {
    ASSERT_OK_AND_ASSIGN(auto read_only, OpenSiteStoreReadOnly(dir));
    ASSERT_OK_AND_ASSIGN(auto entries, read_only->ListLedgerEntries());
    EXPECT_TRUE(entries.empty());
    EXPECT_THAT(read_only->LastLedgerEntry(), StatusIs(absl::StatusCode::kNotFound));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto store, OpenSiteStore(dir));
    Record(store.get(), 3, 2);
  }
  ASSERT_OK_AND_ASSIGN(auto store, OpenSiteStoreReadOnly(dir));
  ASSERT_OK_AND_ASSIGN(LedgerVerification v, Verify(*store));
  EXPECT_EQ(v.entries, 3u);
  EXPECT_EQ(v.checkpoints, 1u);
}

TEST_F(LedgerTest, DamagedLedgerRecordIsDataLossNamingTheEntry) {
  const std::string dir = temp_.File("store");
  {
    ASSERT_OK_AND_ASSIGN(auto store, OpenSiteStore(dir));
    Record(store.get(), 3, 64);
  }
  testing::PutRaw(dir, "ledger", std::string(7, '\0') + "\x02", "\xff\xff not a record");
  EXPECT_THAT(OpenSiteStoreReadOnly(dir).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 2 does not parse")));
  EXPECT_THAT(OpenSiteStore(dir).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("family ledger")));
}

}  // namespace
}  // namespace tessera::client
