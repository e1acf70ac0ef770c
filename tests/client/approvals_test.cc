// The approval queue's records in both site stores (the same semantics), what only the
// RocksDB store adds (an older store gains the family; damage is DATA_LOSS naming it), and
// the queue's rules over a store (client/approvals.h). Every test has "Approv" in its name.

#include "client/approvals.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "client/site_store.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_approval.pb.h"
#include "rocksdb/db.h"
#include "tests/client/site_store_testing.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client {
namespace {

using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

v1::TaskSpec Spec(uint32_t rounds = 5) {
  v1::TaskSpec spec;
  spec.set_name("heart-logistic");
  spec.mutable_dataset()->set_id("heart");
  spec.mutable_dataset()->add_features("age");
  spec.mutable_dataset()->add_features("chol");
  spec.mutable_dataset()->set_label("disease");
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.set_rounds(rounds);
  spec.set_min_clients(3);
  return spec;
}

v1::ApprovalRecord Record(const std::string& task, const v1::TaskSpec& spec, int64_t seen) {
  v1::ApprovalRecord r;
  r.set_task_id(task);
  r.set_spec_hash(crypto::HashTaskSpec(spec));
  *r.mutable_spec() = spec;
  r.set_first_seen_unix_ms(seen);
  return r;
}

v1::ApprovalRecord Decided(v1::ApprovalRecord r, v1::TaskDecision::Kind kind,
                           const std::string& reason = "") {
  r.mutable_decision()->set_kind(kind);
  r.mutable_decision()->set_by("root (uid 0)");
  r.mutable_decision()->set_at_unix_ms(r.first_seen_unix_ms() + 1);
  r.mutable_decision()->set_reason(reason);
  return r;
}

// ---- Both stores

struct Factory {
  std::string name;
  bool rocksdb;
};
void PrintTo(const Factory& f, std::ostream* os) { *os << f.name; }

class ApprovalStoreTest : public ::testing::TestWithParam<Factory> {
 protected:
  void SetUp() override {
    if (GetParam().rocksdb) {
      ASSERT_OK_AND_ASSIGN(store_, OpenSiteStore(dir_.File("store")));
    } else {
      store_ = NewMemorySiteStore();
    }
  }
  TempDir dir_;
  std::unique_ptr<SiteStore> store_;
};

TEST_P(ApprovalStoreTest, RecordsRoundTripSortedByTaskThenHash) {
  EXPECT_THAT(store_->ListApprovals(), IsOkAndHolds(IsEmpty()));
  const v1::ApprovalRecord b = Record("task-b", Spec(), 1);
  const v1::ApprovalRecord a1 = Record("task-a", Spec(5), 2);
  const v1::ApprovalRecord a2 = Record("task-a", Spec(7), 3);
  for (const auto* r : {&b, &a1, &a2}) ASSERT_OK(store_->PutApproval(*r));
  EXPECT_THAT(store_->GetApproval("task-a", a2.spec_hash()), IsOkAndHolds(EqualsProto(a2)));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ApprovalRecord> all, store_->ListApprovals());
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_EQ(all[0].task_id(), "task-a");
  EXPECT_LT(all[0].spec_hash(), all[1].spec_hash());
  EXPECT_EQ(all[2].task_id(), "task-b");
  EXPECT_THAT(store_->GetApproval("task-c", a1.spec_hash()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("task-c")));
}

TEST_P(ApprovalStoreTest, ADecisionIsFinalOnceRecorded) {
  const v1::ApprovalRecord pending = Record("task-1", Spec(), 1);
  ASSERT_OK(store_->PutApproval(pending));
  ASSERT_OK(store_->PutApproval(pending));  // rewriting a pending record is fine
  const v1::ApprovalRecord approved = Decided(pending, v1::TaskDecision::APPROVED);
  ASSERT_OK(store_->PutApproval(approved));
  ASSERT_OK(store_->PutApproval(approved));  // the same record again: idempotent
  EXPECT_THAT(store_->PutApproval(Decided(pending, v1::TaskDecision::REJECTED, "no")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("already approved"), HasSubstr("root (uid 0)"))));
  EXPECT_THAT(store_->PutApproval(pending), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->GetApproval("task-1", pending.spec_hash()),
              IsOkAndHolds(EqualsProto(approved)));
}

TEST_P(ApprovalStoreTest, MalformedApprovalRecordsAreInvalidArgumentAndWriteNothing) {
  v1::ApprovalRecord no_id = Record("", Spec(), 1);
  v1::ApprovalRecord nul_id = Record(std::string("a\0b", 3), Spec(), 1);
  v1::ApprovalRecord short_hash = Record("t", Spec(), 1);
  short_hash.set_spec_hash("abc");
  v1::ApprovalRecord no_reason = Decided(Record("t", Spec(), 1), v1::TaskDecision::REJECTED);
  v1::ApprovalRecord no_kind = Decided(Record("t", Spec(), 1), v1::TaskDecision::KIND_UNSPECIFIED);
  for (const auto* r : {&no_id, &nul_id, &short_hash, &no_reason, &no_kind}) {
    EXPECT_THAT(store_->PutApproval(*r), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(store_->ListApprovals(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->GetApproval("t", "abc"), StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(AllStores, ApprovalStoreTest,
                         ::testing::Values(Factory{"Memory", false}, Factory{"RocksDb", true}),
                         [](const auto& info) { return info.param.name; });

// ---- RocksDB only

using site_store_testing::PutRaw;
using site_store_testing::RawFamilies;
using site_store_testing::WithRawDb;

TEST(ApprovalRocksDbStoreTest, OlderStoreWithoutTheFamilyOpensAndGainsIt) {
  TempDir dir;
  const std::string path = dir.File("store");
  { ASSERT_OK(OpenSiteStore(path).status()); }
  // A store written before the approvals family existed (format 1 has only the core ones).
  WithRawDb(path, [](rocksdb::DB* db, RawFamilies& families) {
    ASSERT_TRUE(db->DropColumnFamily(families.at("approvals")).ok());
  });
  WithRawDb(path, [](rocksdb::DB*, RawFamilies& families) {
    ASSERT_EQ(families.count("approvals"), 0u);
  });
  {
    ASSERT_OK_AND_ASSIGN(auto read_only, OpenSiteStoreReadOnly(path));
    EXPECT_THAT(read_only->ListApprovals(), IsOkAndHolds(IsEmpty()));
  }
  const v1::ApprovalRecord record = Record("task-1", Spec(), 1);
  {
    ASSERT_OK_AND_ASSIGN(auto store, OpenSiteStore(path));
    EXPECT_THAT(store->ListApprovals(), IsOkAndHolds(IsEmpty()));
    ASSERT_OK(store->PutApproval(record));
  }
  ASSERT_OK_AND_ASSIGN(auto store, OpenSiteStore(path));
  EXPECT_THAT(store->GetApproval("task-1", record.spec_hash()), IsOkAndHolds(EqualsProto(record)));
}

TEST(ApprovalRocksDbStoreTest, DamagedApprovalRecordIsDataLossNamingFamilyAndKey) {
  TempDir dir;
  const std::string path = dir.File("store");
  { ASSERT_OK(OpenSiteStore(path).status()); }
  const v1::ApprovalRecord record = Record("task-1", Spec(), 1);
  // A record stored under another task's key.
  PutRaw(path, "approvals", std::string("task-2\0", 7) + record.spec_hash(),
         record.SerializeAsString());
  EXPECT_THAT(OpenSiteStore(path),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("family approvals"), HasSubstr("the record is for task"))));
  EXPECT_THAT(OpenSiteStoreReadOnly(path), StatusIs(absl::StatusCode::kDataLoss));
}

// ---- The queue

class ApprovalQueueTest : public ::testing::Test {
 protected:
  std::optional<v1::Decline> Admit(const std::string& task, const v1::TaskSpec& spec) {
    return queue_.Admit(task, spec, crypto::HashTaskSpec(spec), policy_, now_);
  }
  v1::TaskDecision By(v1::TaskDecision::Kind kind, const std::string& reason = "") {
    v1::TaskDecision d;
    d.set_kind(kind);
    d.set_by("alice (uid 1000)");
    d.set_reason(reason);
    return d;
  }

  std::unique_ptr<SiteStore> store_ = NewMemorySiteStore();
  ApprovalQueue queue_{store_.get()};
  v1::LocalPolicy policy_ = [] {
    v1::LocalPolicy p;
    p.set_require_approval(true);
    return p;
  }();
  absl::Time now_ = absl::FromUnixMillis(1'700'000'000'000);
};

TEST_F(ApprovalQueueTest, PendingTaskIsDeclinedAwaitingApprovalUntilApproved) {
  std::optional<v1::Decline> first = Admit("task-1", Spec());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->reason(), v1::Decline::AWAITING_APPROVAL);
  EXPECT_THAT(first->detail(), HasSubstr(crypto::ToHex(crypto::HashTaskSpec(Spec()))));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ApprovalRecord> pending, queue_.Pending());
  ASSERT_THAT(pending, SizeIs(1));
  EXPECT_THAT(pending[0].spec(), EqualsProto(Spec()));
  EXPECT_EQ(pending[0].first_seen_unix_ms(), absl::ToUnixMillis(now_));
  // Asked again later: still pending, first seen unchanged.
  now_ += absl::Minutes(1);
  EXPECT_EQ(Admit("task-1", Spec())->reason(), v1::Decline::AWAITING_APPROVAL);
  ASSERT_OK_AND_ASSIGN(pending, queue_.Pending());
  EXPECT_EQ(pending[0].first_seen_unix_ms(), absl::ToUnixMillis(now_ - absl::Minutes(1)));

  ASSERT_OK_AND_ASSIGN(v1::ApprovalRecord approved,
                       queue_.Decide("task-1", "", By(v1::TaskDecision::APPROVED), now_));
  EXPECT_EQ(approved.decision().by(), "alice (uid 1000)");
  EXPECT_EQ(approved.decision().at_unix_ms(), absl::ToUnixMillis(now_));
  EXPECT_EQ(Admit("task-1", Spec()), std::nullopt);
  EXPECT_THAT(queue_.Pending(), IsOkAndHolds(IsEmpty()));
}

TEST_F(ApprovalQueueTest, RejectedTaskIsDeclinedWithTheStaffsReason) {
  ASSERT_TRUE(Admit("task-1", Spec()).has_value());
  EXPECT_THAT(queue_.Decide("task-1", "", By(v1::TaskDecision::REJECTED), now_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
  ASSERT_OK(
      queue_.Decide("task-1", "", By(v1::TaskDecision::REJECTED, "not our ethics approval"), now_)
          .status());
  std::optional<v1::Decline> declined = Admit("task-1", Spec());
  ASSERT_TRUE(declined.has_value());
  EXPECT_EQ(declined->reason(), v1::Decline::REJECTED_BY_SITE);
  EXPECT_EQ(declined->detail(), "not our ethics approval");
  // Final: approving it now is refused, naming who rejected it.
  EXPECT_THAT(queue_.Decide("task-1", crypto::ToHex(crypto::HashTaskSpec(Spec())),
                            By(v1::TaskDecision::APPROVED), now_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("alice")));
}

TEST_F(ApprovalQueueTest, ChangedSpecUnderTheSameIdIsPendingAgain) {
  ASSERT_TRUE(Admit("task-1", Spec(5)).has_value());
  ASSERT_OK(queue_.Decide("task-1", "", By(v1::TaskDecision::APPROVED), now_).status());
  ASSERT_EQ(Admit("task-1", Spec(5)), std::nullopt);
  std::optional<v1::Decline> changed = Admit("task-1", Spec(50));
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(changed->reason(), v1::Decline::AWAITING_APPROVAL);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ApprovalRecord> pending, queue_.Pending());
  ASSERT_THAT(pending, SizeIs(1));
  EXPECT_EQ(pending[0].spec_hash(), crypto::HashTaskSpec(Spec(50)));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ApprovalRecord> records, queue_.Records("task-1"));
  EXPECT_THAT(records, SizeIs(2));
}

TEST_F(ApprovalQueueTest, SeveralPendingSpecsNeedTheHashToDecide) {
  ASSERT_TRUE(Admit("task-1", Spec(5)).has_value());
  ASSERT_TRUE(Admit("task-1", Spec(6)).has_value());
  EXPECT_THAT(queue_.Decide("task-1", "", By(v1::TaskDecision::APPROVED), now_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--hash")));
  const std::string hex = crypto::ToHex(crypto::HashTaskSpec(Spec(6)));
  ASSERT_OK(queue_.Decide("task-1", hex, By(v1::TaskDecision::APPROVED), now_).status());
  EXPECT_EQ(Admit("task-1", Spec(6)), std::nullopt);
  EXPECT_EQ(Admit("task-1", Spec(5))->reason(), v1::Decline::AWAITING_APPROVAL);
  EXPECT_THAT(queue_.Decide("task-1", "ABC", By(v1::TaskDecision::APPROVED), now_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(queue_.Decide("task-9", "", By(v1::TaskDecision::APPROVED), now_),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ApprovalQueueTest, AutoApprovalRuleApprovesAndIsRecordedWithItsName) {
  v1::LocalPolicy::AutoApproval* rule = policy_.add_auto_approve();
  rule->set_name("small-logistic");
  rule->add_model_kinds(v1::ModelSpec::LOGISTIC_REGRESSION);
  rule->set_max_rounds(10);
  EXPECT_EQ(Admit("task-1", Spec(5)), std::nullopt);
  ASSERT_OK_AND_ASSIGN(v1::ApprovalRecord record,
                       store_->GetApproval("task-1", crypto::HashTaskSpec(Spec(5))));
  EXPECT_EQ(record.decision().kind(), v1::TaskDecision::APPROVED);
  EXPECT_EQ(record.decision().by(), "policy.auto_approve: small-logistic");
  // Outside the rule: pending.
  EXPECT_EQ(Admit("task-2", Spec(50))->reason(), v1::Decline::AWAITING_APPROVAL);
}

TEST_F(ApprovalQueueTest, WithoutRequireApprovalTasksRunButRecordedRejectionsHold) {
  ASSERT_TRUE(Admit("task-1", Spec()).has_value());
  ASSERT_OK(queue_.Decide("task-1", "", By(v1::TaskDecision::REJECTED, "no"), now_).status());
  policy_.set_require_approval(false);
  EXPECT_EQ(Admit("task-2", Spec()), std::nullopt);
  EXPECT_THAT(queue_.Pending(), IsOkAndHolds(IsEmpty()));
  EXPECT_EQ(Admit("task-1", Spec())->reason(), v1::Decline::REJECTED_BY_SITE);
}

TEST_F(ApprovalQueueTest, ReasonsAreBoundedAndPrintable) {
  ASSERT_TRUE(Admit("task-1", Spec()).has_value());
  EXPECT_THAT(
      queue_.Decide("task-1", "",
                    By(v1::TaskDecision::REJECTED, std::string(kMaxDecisionReason + 1, 'x')), now_),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most")));
  EXPECT_THAT(queue_.Decide("task-1", "", By(v1::TaskDecision::REJECTED, "a\nb"), now_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("control character")));
  EXPECT_THAT(queue_.Pending(), IsOkAndHolds(SizeIs(1)));
}

}  // namespace
}  // namespace tessera::client
