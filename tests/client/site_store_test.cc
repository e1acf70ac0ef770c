// The site store's semantics, one suite run against both implementations (RocksDB and
// in memory). What only the RocksDB store promises: site_store_rocksdb_test.cc (durability,
// directory, lock), site_store_files_test.cc (secrets on disk) and
// site_store_damage_test.cc (refusal of damage).

#include "client/site_store.h"

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_budget.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"
#include "tests/client/site_store_testing.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client::site_store_testing {
namespace {

using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// ---------------------------------------------------------------------------
// Semantics both implementations share.

struct StoreFactory {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<SiteStore>>(const std::string& directory)> open;
};

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

class SiteStoreTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(store_, GetParam().open(dir_.File("store"))); }

  TempDir dir_;
  std::unique_ptr<SiteStore> store_;
};

TEST_P(SiteStoreTest, EmptyStoreListsNothingAndFindsNothing) {
  EXPECT_THAT(store_->ListSessions(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->ListContributions(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->GetSession("task-1/r2/fit/a1"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("task-1/r2/fit/a1")));
  EXPECT_THAT(store_->GetContribution(Key(7)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(Hex(Key(7)))));
}

TEST_P(SiteStoreTest, SessionAndContributionRoundTrip) {
  const v1::SiteSessionRecord opened = MakeSession("s1", Key(1));
  ASSERT_OK(store_->PutSession(opened, nullptr));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(opened)));
  EXPECT_THAT(store_->GetContribution(Key(1)), StatusIs(absl::StatusCode::kNotFound));

  const v1::SiteSessionRecord sent = Sent(opened);
  const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
  ASSERT_OK(store_->PutSession(sent, &contribution));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(sent)));
  EXPECT_THAT(store_->GetContribution(Key(1)), IsOkAndHolds(EqualsProto(contribution)));
  // A list carries no session's secrets (a session's snapshot is read one at a time).
  v1::SiteSessionRecord listed = sent;
  listed.clear_machine();
  EXPECT_THAT(store_->ListSessions(), IsOkAndHolds(ElementsAre(EqualsProto(listed))));
  EXPECT_THAT(store_->ListContributions(), IsOkAndHolds(ElementsAre(EqualsProto(contribution))));
}

TEST_P(SiteStoreTest, PutSessionReplacesTheRecordWithThatLabel) {
  ASSERT_OK(store_->PutSession(MakeSession("s1", Key(1), 1), nullptr));
  ASSERT_OK(store_->PutSession(MakeSession("s2", Key(2), 2), nullptr));
  v1::SiteSessionRecord ended = Sent(MakeSession("s1", Key(1)));
  ended.set_state(v1::SITE_SESSION_ABORTED);
  ended.set_abort_reason("SECAGG_REQUEST_CHANGED");
  ended.clear_machine();
  ASSERT_OK(store_->PutSession(ended, nullptr));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(ended)));
  EXPECT_THAT(store_->GetSession("s2"), IsOkAndHolds(EqualsProto(MakeSession("s2", Key(2), 2))));
  EXPECT_THAT(store_->ListSessions(), IsOkAndHolds(SizeIs(2)));
}

TEST_P(SiteStoreTest, ContributionKeyOfAnotherSessionIsAlreadyExistsAndWritesNothing) {
  const v1::ContributionRecord first = MakeContribution(Key(9), "s1");
  ASSERT_OK(store_->PutSession(Sent(MakeSession("s1", Key(9))), &first));
  const v1::SiteSessionRecord s2_before = MakeSession("s2", Key(9), 2);
  ASSERT_OK(store_->PutSession(s2_before, nullptr));

  v1::ContributionRecord second = MakeContribution(Key(9), "s2");
  second.set_task_id("task-2");
  v1::SiteSessionRecord s2_sent = Sent(MakeSession("s2", Key(9), 3));
  EXPECT_THAT(store_->PutSession(s2_sent, &second),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       AllOf(HasSubstr(Hex(Key(9))), HasSubstr("\"s1\""), HasSubstr("\"s2\""))));
  // Nothing of the refused write is stored: not the contribution, not the session.
  EXPECT_THAT(store_->GetContribution(Key(9)), IsOkAndHolds(EqualsProto(first)));
  EXPECT_THAT(store_->GetSession("s2"), IsOkAndHolds(EqualsProto(s2_before)));
  EXPECT_THAT(store_->ListContributions(), IsOkAndHolds(SizeIs(1)));

  // A brand-new session is refused the same way and leaves no record either.
  v1::ContributionRecord third = MakeContribution(Key(9), "s3");
  EXPECT_THAT(store_->PutSession(Sent(MakeSession("s3", Key(9))), &third),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->GetSession("s3"), StatusIs(absl::StatusCode::kNotFound));
}

// A vector that holds two stages' contributions (FIT_EVALUATE) is recorded under each
// part's key, and refused whole when any part is another session's.
TEST_P(SiteStoreTest, PartKeysAreEachRecordedAndAnyTakenPartRefusesTheWhole) {
  v1::SiteSessionRecord both = Sent(MakeSession("s1", Key(1)));
  both.add_part_keys(Key(1));
  both.add_part_keys(Key(2));
  v1::ContributionRecord parts = MakeContribution(Key(1), "s1");
  *parts.mutable_part_keys() = both.part_keys();
  ASSERT_OK(store_->PutSession(both, &parts));
  EXPECT_THAT(store_->GetContribution(Key(1)), IsOkAndHolds(EqualsProto(parts)));
  v1::ContributionRecord second_part = parts;
  second_part.set_key(Key(2));
  EXPECT_THAT(store_->GetContribution(Key(2)), IsOkAndHolds(EqualsProto(second_part)));

  // Another session spending Key(3) and the taken Key(2): refused, nothing written.
  v1::SiteSessionRecord overlapping = Sent(MakeSession("s2", Key(3)));
  overlapping.add_part_keys(Key(3));
  overlapping.add_part_keys(Key(2));
  v1::ContributionRecord overlapping_parts = MakeContribution(Key(3), "s2");
  *overlapping_parts.mutable_part_keys() = overlapping.part_keys();
  EXPECT_THAT(store_->PutSession(overlapping, &overlapping_parts),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       AllOf(HasSubstr(Hex(Key(2))), HasSubstr("\"s1\""))));
  EXPECT_THAT(store_->GetContribution(Key(3)), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetSession("s2"), StatusIs(absl::StatusCode::kNotFound));
  // A one-part contribution under a taken part key is refused as well.
  const v1::ContributionRecord alone = MakeContribution(Key(2), "s3");
  EXPECT_THAT(store_->PutSession(Sent(MakeSession("s3", Key(2))), &alone),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->ListContributions(), IsOkAndHolds(SizeIs(2)));
}

TEST_P(SiteStoreTest, SameSessionMayRewriteItsContribution) {
  const v1::ContributionRecord first = MakeContribution(Key(4), "s1");
  ASSERT_OK(store_->PutSession(Sent(MakeSession("s1", Key(4))), &first));
  v1::ContributionRecord again = first;
  again.set_sent_sha256(std::string(32, '\x77'));
  again.set_recorded_unix_ms(1700000009999);
  v1::SiteSessionRecord later = Sent(MakeSession("s1", Key(4)));
  *later.add_answers() = Answer(4);
  ASSERT_OK(store_->PutSession(later, &again));
  EXPECT_THAT(store_->GetContribution(Key(4)), IsOkAndHolds(EqualsProto(again)));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(later)));
}

TEST_P(SiteStoreTest, MalformedPutSessionIsInvalidArgumentAndWritesNothing) {
  v1::SiteSessionRecord unlabelled = MakeSession("", Key(1));
  EXPECT_THAT(store_->PutSession(unlabelled, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label")));

  const v1::SiteSessionRecord session = Sent(MakeSession("s1", Key(1)));
  struct Case {
    std::string name;
    v1::SiteSessionRecord session;
    v1::ContributionRecord contribution;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({"empty key", session, MakeContribution("", "s1"), "0 bytes"});
  cases.push_back({"short key", session, MakeContribution(Key(1).substr(1), "s1"), "31 bytes"});
  cases.push_back({"long key", session, MakeContribution(Key(1) + "x", "s1"), "33 bytes"});
  cases.push_back({"other session", session, MakeContribution(Key(1), "s2"), "\"s2\""});
  cases.push_back({"unlabelled", unlabelled, MakeContribution(Key(1), ""), "label"});
  v1::SiteSessionRecord other_key = session;
  other_key.set_contribution_key(Key(2));
  cases.push_back(
      {"contribution_key differs", other_key, MakeContribution(Key(1), "s1"), "contribution_key"});
  // Part keys: at least two, the first the key, the session's, distinct 32-byte keys.
  auto with_parts = [&](const std::vector<std::string>& keys, bool in_session) {
    Case c{"parts", session, MakeContribution(Key(1), "s1"), ""};
    for (const std::string& k : keys) {
      c.contribution.add_part_keys(k);
      if (in_session) c.session.add_part_keys(k);
    }
    return c;
  };
  Case one_part = with_parts({Key(1)}, true);
  one_part.message = "at least two";
  cases.push_back(one_part);
  Case not_first = with_parts({Key(2), Key(1)}, true);
  not_first.message = "the first being its key";
  cases.push_back(not_first);
  Case not_the_sessions = with_parts({Key(1), Key(2)}, false);
  not_the_sessions.message = "not the session's";
  cases.push_back(not_the_sessions);
  Case repeated = with_parts({Key(1), Key(1)}, true);
  repeated.message = "distinct";
  cases.push_back(repeated);
  Case short_part = with_parts({Key(1), Key(2).substr(1)}, true);
  short_part.message = "32-byte";
  cases.push_back(short_part);
  for (const Case& c : cases) {
    EXPECT_THAT(store_->PutSession(c.session, &c.contribution),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
  }
  EXPECT_THAT(store_->ListSessions(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->ListContributions(), IsOkAndHolds(IsEmpty()));
}

// A snapshot's input kept apart (SiteSessionRecord.machine_input) is written once, read
// back with every later snapshot written without it, and dropped with the snapshot (a
// session that ended, or deleted); never without a snapshot.
TEST_P(SiteStoreTest, AnInputKeptApartStaysWithItsSnapshotAndGoesWithIt) {
  v1::SiteSessionRecord first = MakeSession("s1", Key(1), 1);
  first.set_machine_input(Secret(11));
  ASSERT_OK(store_->PutSession(first, nullptr));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(first)));

  v1::SiteSessionRecord second = MakeSession("s1", Key(1), 2);  // no input: the stored one
  *second.add_answers() = second.answers(0);
  ASSERT_OK(store_->PutSession(second, nullptr));
  v1::SiteSessionRecord expected = second;
  expected.set_machine_input(Secret(11));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(expected)));
  // Read without its secrets, or listed: neither the snapshot nor its input.
  v1::SiteSessionRecord without = expected;
  without.clear_machine();
  without.clear_machine_input();
  EXPECT_THAT(store_->GetSessionWithoutSecrets("s1"), IsOkAndHolds(EqualsProto(without)));
  EXPECT_THAT(store_->ListSessions(), IsOkAndHolds(ElementsAre(EqualsProto(without))));
  EXPECT_THAT(store_->GetSessionWithoutSecrets("s2"), StatusIs(absl::StatusCode::kNotFound));

  v1::SiteSessionRecord no_snapshot = MakeSession("s2", Key(2), 3);
  no_snapshot.clear_machine();
  no_snapshot.set_machine_input(Secret(12));
  EXPECT_THAT(store_->PutSession(no_snapshot, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("without the snapshot")));
  EXPECT_THAT(store_->GetSession("s2"), StatusIs(absl::StatusCode::kNotFound));

  v1::SiteSessionRecord ended = Sent(MakeSession("s1", Key(1)));
  ended.set_state(v1::SITE_SESSION_COMPLETED);
  ended.clear_machine();
  ASSERT_OK(store_->PutSession(ended, nullptr));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(ended)));
  // A snapshot written again (not done by the site, but allowed) gets no input back.
  ASSERT_OK(store_->PutSession(second, nullptr));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(second)));

  v1::SiteSessionRecord other = MakeSession("s3", Key(3), 4);
  other.set_machine_input(Secret(13));
  ASSERT_OK(store_->PutSession(other, nullptr));
  ASSERT_OK(store_->DeleteSession("s3"));
  other.clear_machine_input();
  ASSERT_OK(store_->PutSession(other, nullptr));
  EXPECT_THAT(store_->GetSession("s3"), IsOkAndHolds(EqualsProto(other)));
}

TEST_P(SiteStoreTest, DeleteSessionRemovesTheSessionAndNeverTheContribution) {
  const v1::ContributionRecord contribution = MakeContribution(Key(5), "s1");
  ASSERT_OK(store_->PutSession(Sent(MakeSession("s1", Key(5))), &contribution));
  ASSERT_OK(store_->PutSession(MakeSession("s2", Key(6), 2), nullptr));

  ASSERT_OK(store_->DeleteSession("s1"));
  EXPECT_THAT(store_->GetSession("s1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetSession("s2"), IsOkAndHolds(EqualsProto(MakeSession("s2", Key(6), 2))));
  EXPECT_THAT(store_->GetContribution(Key(5)), IsOkAndHolds(EqualsProto(contribution)));
  EXPECT_OK(store_->DeleteSession("s1"));     // absent: OK
  EXPECT_OK(store_->DeleteSession("never"));  // never there: OK

  // The key stays owned by the deleted session: no other session may send for it.
  v1::ContributionRecord retry = MakeContribution(Key(5), "s3");
  EXPECT_THAT(store_->PutSession(Sent(MakeSession("s3", Key(5))), &retry),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"s1\"")));
}

TEST_P(SiteStoreTest, ListsAreSortedBytewiseByKey) {
  // Bytewise: 'S' (0x53) < 'a' (0x61) < 's' (0x73), and "r10" < "r2".
  for (const std::string label : {"s/r2", "a/r10", "S/r1", "a/r2", "s/r10"}) {
    ASSERT_OK(store_->PutSession(MakeSession(label, Key(0)), nullptr));
  }
  EXPECT_THAT(store_->ListSessions().value_or(std::vector<v1::SiteSessionRecord>{}),
              ::testing::ResultOf(Labels, ElementsAre("S/r1", "a/r10", "a/r2", "s/r10", "s/r2")));

  // Keys with high bytes sort after low ones (unsigned, not signed, char order).
  int n = 0;
  for (unsigned char fill : {0xffu, 0x00u, 0x80u, 0x7fu, 0x01u}) {
    const std::string label = absl::StrCat("c", n++);
    v1::ContributionRecord contribution = MakeContribution(Key(fill), label);
    ASSERT_OK(store_->PutSession(Sent(MakeSession(label, Key(fill))), &contribution));
  }
  EXPECT_THAT(store_->ListContributions().value_or(std::vector<v1::ContributionRecord>{}),
              ::testing::ResultOf(
                  Keys, ElementsAre(Key(0x00), Key(0x01), Key(0x7f), Key(0x80), Key(0xff))));
}

TEST_P(SiteStoreTest, ConcurrentSessionsRacingForOneKeyLeaveExactlyOneOwner) {
  constexpr int kThreads = 4;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &results] {
      const std::string label = absl::StrCat("racer-", t);
      v1::ContributionRecord contribution = MakeContribution(Key(0x42), label);
      results[t] = store_->PutSession(Sent(MakeSession(label, Key(0x42), t)), &contribution);
    });
  }
  for (std::thread& th : threads) th.join();
  int winners = 0;
  std::string winner;
  for (int t = 0; t < kThreads; ++t) {
    if (results[t].ok()) {
      ++winners;
      winner = absl::StrCat("racer-", t);
    } else {
      EXPECT_THAT(results[t], StatusIs(absl::StatusCode::kAlreadyExists)) << t;
    }
  }
  ASSERT_EQ(winners, 1);
  ASSERT_OK_AND_ASSIGN(v1::ContributionRecord stored, store_->GetContribution(Key(0x42)));
  EXPECT_EQ(stored.session(), winner);
  EXPECT_THAT(store_->ListSessions(), IsOkAndHolds(SizeIs(1)));
}

// Ledger records numbered `sequence` (digests of the right size; the store keeps the
// order, the chain is client/ledger.h's).
v1::LedgerEntry Entry(uint64_t sequence) {
  v1::LedgerEntry entry;
  entry.set_sequence(sequence);
  entry.set_kind(v1::LEDGER_PUSH_RESULT);
  entry.set_sent_sha256(std::string(32, static_cast<char>(sequence)));
  entry.set_prev_hash(std::string(32, '\0'));
  return entry;
}

v1::LedgerCheckpoint CheckpointAt(uint64_t sequence) {
  v1::LedgerCheckpoint checkpoint;
  checkpoint.set_sequence(sequence);
  checkpoint.set_head_hash(std::string(32, 'h'));
  checkpoint.set_signature("signature");
  return checkpoint;
}

TEST_P(SiteStoreTest, ASessionWrittenWithItsLedgerRecordsStoresThemAll) {
  const v1::SiteSessionRecord opened = MakeSession("s1", Key(1));
  const v1::LedgerEntry first = Entry(1);
  ASSERT_OK(store_->PutSessionWithLedger(opened, nullptr, nullptr, {&first, nullptr}));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(opened)));
  EXPECT_THAT(store_->ListLedgerEntries(), IsOkAndHolds(ElementsAre(EqualsProto(first))));
  EXPECT_THAT(store_->ListLedgerCheckpoints(), IsOkAndHolds(IsEmpty()));

  // The masked input's write: the contribution, the entry and the checkpoint over it.
  const v1::SiteSessionRecord sent = Sent(opened);
  const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
  const v1::LedgerEntry second = Entry(2);
  const v1::LedgerCheckpoint checkpoint = CheckpointAt(2);
  ASSERT_OK(store_->PutSessionWithLedger(sent, &contribution, nullptr, {&second, &checkpoint}));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(sent)));
  EXPECT_THAT(store_->GetContribution(Key(1)), IsOkAndHolds(EqualsProto(contribution)));
  EXPECT_THAT(store_->ListLedgerEntries(),
              IsOkAndHolds(ElementsAre(EqualsProto(first), EqualsProto(second))));
  EXPECT_THAT(store_->ListLedgerCheckpoints(), IsOkAndHolds(ElementsAre(EqualsProto(checkpoint))));
}

TEST_P(SiteStoreTest, ASessionWriteStoresTheNextEntryAfterItsEntry) {
  // An answer's entry and the request after it (EgressLedger::WriteNextAhead), one write.
  const v1::SiteSessionRecord opened = MakeSession("s1", Key(1));
  const v1::LedgerEntry first = Entry(1);
  const v1::LedgerEntry pull = Entry(2);
  ASSERT_OK(store_->PutSessionWithLedger(opened, nullptr, nullptr, {&first, nullptr, &pull}));
  EXPECT_THAT(store_->ListLedgerEntries(),
              IsOkAndHolds(ElementsAre(EqualsProto(first), EqualsProto(pull))));
  // Out of sequence, or without the entry it follows: refused, nothing written.
  const v1::SiteSessionRecord sent = Sent(opened);
  const v1::LedgerEntry third = Entry(3);
  const v1::LedgerEntry fifth = Entry(5);
  EXPECT_THAT(store_->PutSessionWithLedger(sent, nullptr, nullptr, {&third, nullptr, &fifth}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("entry 5 after entry 3")));
  EXPECT_THAT(
      store_->PutSessionWithLedger(sent, nullptr, nullptr, {nullptr, nullptr, &third}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("without the entry it follows")));
  EXPECT_THAT(store_->GetSession("s1"), IsOkAndHolds(EqualsProto(opened)));
  EXPECT_THAT(store_->ListLedgerEntries(),
              IsOkAndHolds(ElementsAre(EqualsProto(first), EqualsProto(pull))));
}

TEST_P(SiteStoreTest, ASessionWriteWhoseLedgerRecordsAreRefusedWritesNothing) {
  ASSERT_OK(store_->AppendLedgerEntry(Entry(1)));
  const v1::SiteSessionRecord sent = Sent(MakeSession("s1", Key(1)));
  const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
  const v1::LedgerEntry skipped = Entry(3);
  EXPECT_THAT(store_->PutSessionWithLedger(sent, &contribution, nullptr, {&skipped, nullptr}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("entry 3 after entry 1")));
  const v1::LedgerEntry next = Entry(2);
  const v1::LedgerCheckpoint elsewhere = CheckpointAt(5);
  EXPECT_THAT(store_->PutSessionWithLedger(sent, &contribution, nullptr, {&next, &elsewhere}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("checkpoint 5")));
  EXPECT_THAT(store_->PutSessionWithLedger(sent, &contribution, nullptr, {nullptr, &elsewhere}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("without its entry")));
  v1::BudgetCharge charge;
  charge.set_contribution_key(Key(1));
  EXPECT_THAT(store_->PutSessionWithLedger(sent, nullptr, &charge, {&next, nullptr}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("without a contribution")));
  // Nothing of any refused write is stored.
  EXPECT_THAT(store_->GetSession("s1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetContribution(Key(1)), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->ListLedgerEntries(), IsOkAndHolds(ElementsAre(EqualsProto(Entry(1)))));
  EXPECT_THAT(store_->ListLedgerCheckpoints(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->ListBudgetCharges(), IsOkAndHolds(IsEmpty()));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, SiteStoreTest,
    ::testing::Values(
        StoreFactory{"Memory",
                     [](const std::string&) -> absl::StatusOr<std::unique_ptr<SiteStore>> {
                       return NewMemorySiteStore();
                     }},
        StoreFactory{"RocksDb", [](const std::string& dir) { return OpenSiteStore(dir); }}),
    [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

}  // namespace
}  // namespace tessera::client::site_store_testing
