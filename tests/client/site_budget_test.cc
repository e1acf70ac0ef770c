// The site's own privacy budget: the account and its limit (client/site_budget.h), the
// budget family of both site stores (PutSessionCharged, ListBudgetCharges), and what the
// RocksDB store promises about it: restart, a store made before the family existed, damage.
// Against the real site agent: tests/attack/site_budget_test.cc.
#include "client/site_budget.h"

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/site_store.h"
#include "common/proto_text.h"
#include "dp/rdp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_budget.pb.h"
#include "proto/site_state.pb.h"
#include "rocksdb/db.h"
#include "tests/client/site_store_testing.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client::site_store_testing {
namespace {

using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

v1::LocalPolicy Policy(const std::string& text) {
  v1::LocalPolicy policy;
  EXPECT_OK(common::ParseTextProto(text, "policy", &policy, nullptr));
  return policy;
}

v1::BudgetCharge Charge(const std::string& dataset, const std::string& key, double sigma,
                        const std::string& session) {
  v1::BudgetCharge charge;
  charge.set_dataset_id(dataset);
  charge.set_contribution_key(key);
  charge.set_noise_multiplier(sigma);
  charge.set_task_id("task-1");
  charge.set_round(1);
  charge.set_stage(v1::STAGE_FIT);
  charge.set_session(session);
  charge.set_recorded_unix_ms(1700000000000);
  return charge;
}

v1::ContributionRecord ContributionOf(const std::string& dataset, const std::string& key,
                                      const std::string& session) {
  v1::ContributionRecord contribution = MakeContribution(key, session);
  contribution.set_dataset_id(dataset);
  return contribution;
}

double Epsilon(std::vector<double> sigmas, double delta) {
  absl::StatusOr<double> epsilon = dp::EpsilonOfReleases(sigmas, delta);
  EXPECT_OK(epsilon.status());
  return epsilon.value_or(NAN);
}

// ---- The account and its limit.

TEST(SiteBudgetTest, OnlyNoisedReleasesAreCharged) {
  v1::TaskSpec spec;
  EXPECT_EQ(ReleaseNoiseMultiplier(spec, v1::STAGE_FIT), std::nullopt) << "no privacy";
  spec.mutable_privacy()->set_noise_multiplier(1.5);
  EXPECT_EQ(ReleaseNoiseMultiplier(spec, v1::STAGE_FIT), 1.5);
  EXPECT_EQ(ReleaseNoiseMultiplier(spec, v1::STAGE_ANALYTICS), 1.5);
  EXPECT_EQ(ReleaseNoiseMultiplier(spec, v1::STAGE_STATISTICS), std::nullopt);
  EXPECT_EQ(ReleaseNoiseMultiplier(spec, v1::STAGE_EVALUATE), std::nullopt) << "exact";
  spec.mutable_privacy()->set_evaluation_noise_multiplier(4);
  EXPECT_EQ(ReleaseNoiseMultiplier(spec, v1::STAGE_EVALUATE), 4);
}

TEST(SiteBudgetTest, AccountComposesEveryChargeOfADatasetAcrossTasks) {
  const v1::LocalPolicy policy = Policy(R"pb(
    site_budgets { dataset: "heart" epsilon: 8 delta: 1e-6 }
    site_budgets { dataset: "unused" epsilon: 1 delta: 1e-5 }
  )pb");
  const std::vector<v1::BudgetCharge> charges = {Charge("heart", Key(1), 1.5, "a"),
                                                 Charge("heart", Key(2), 2.0, "b"),
                                                 Charge("lungs", Key(3), 1.0, "c")};
  ASSERT_OK_AND_ASSIGN(std::vector<DatasetAccount> accounts, Accounts(policy, charges));
  ASSERT_EQ(accounts.size(), 3u);
  EXPECT_EQ(accounts[0].dataset, "heart");
  EXPECT_EQ(accounts[0].releases, 2);
  EXPECT_EQ(accounts[0].delta, 1e-6);
  EXPECT_DOUBLE_EQ(accounts[0].epsilon_spent, Epsilon({1.5, 2.0}, 1e-6));
  EXPECT_EQ(accounts[0].epsilon_budget, 8);
  EXPECT_EQ(accounts[1].dataset, "lungs");  // no budget: shown at the default δ
  EXPECT_EQ(accounts[1].delta, kDefaultAccountDelta);
  EXPECT_DOUBLE_EQ(accounts[1].epsilon_spent, Epsilon({1.0}, kDefaultAccountDelta));
  EXPECT_EQ(accounts[1].epsilon_budget, std::nullopt);
  EXPECT_EQ(accounts[2].dataset, "unused");
  EXPECT_EQ(accounts[2].releases, 0);
  EXPECT_EQ(accounts[2].epsilon_spent, 0);
}

TEST(SiteBudgetTest, ReleaseThatWouldPassTheBudgetIsRefusedNamingTheRule) {
  // One release at σ = 1.5 costs ε ≈ 3.4 at δ = 1e-5, two ≈ 5.0.
  const double one = Epsilon({1.5}, 1e-5);
  const double two = Epsilon({1.5, 1.5}, 1e-5);
  ASSERT_LT(one, 4);
  ASSERT_GT(two, 4);
  const v1::LocalPolicy policy = Policy("site_budgets { dataset: 'heart' epsilon: 4 delta: 1e-5 }");
  EXPECT_OK(CheckSiteBudget(policy, "heart", {}, Key(1), 1.5));
  const std::vector<v1::BudgetCharge> spent = {Charge("heart", Key(1), 1.5, "a")};
  double after = 0;
  EXPECT_THAT(CheckSiteBudget(policy, "heart", spent, Key(2), 1.5, &after),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("policy.site_budgets"), HasSubstr("dataset 'heart'"),
                             Not(HasSubstr("5.")))));
  EXPECT_DOUBLE_EQ(after, two);
  // The same contribution again replaces its own charge; other datasets do not count;
  // a dataset without a budget is not limited.
  EXPECT_OK(CheckSiteBudget(policy, "heart", spent, Key(1), 1.5));
  EXPECT_OK(CheckSiteBudget(policy, "lungs", spent, Key(2), 0.1));
  // The default budget covers every other dataset, and says so.
  const v1::LocalPolicy by_default = Policy("default_site_budget { epsilon: 4 delta: 1e-5 }");
  EXPECT_THAT(CheckSiteBudget(by_default, "heart", spent, Key(2), 1.5),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("default_site_budget")));
}

// ---- Both stores.

// Both stores (in memory, and RocksDB in a fresh directory): the semantics they share.
class SiteBudgetStoreTest : public ::testing::Test {
 protected:
  std::vector<std::unique_ptr<SiteStore>> BothStores() {
    std::vector<std::unique_ptr<SiteStore>> stores;
    stores.push_back(NewMemorySiteStore());
    absl::StatusOr<std::unique_ptr<SiteStore>> on_disk = OpenSiteStore(dir_.File("store"));
    EXPECT_OK(on_disk.status());
    if (on_disk.ok()) stores.push_back(*std::move(on_disk));
    return stores;
  }

  testing::TempDir dir_;
};

TEST_F(SiteBudgetStoreTest, ChargeIsWrittenWithItsContribution) {
  for (std::unique_ptr<SiteStore>& store : BothStores()) {
    EXPECT_THAT(store->ListBudgetCharges(), IsOkAndHolds(IsEmpty()));
    const v1::SiteSessionRecord session = Sent(MakeSession("s1", Key(1)));
    const v1::ContributionRecord contribution = ContributionOf("heart", Key(1), "s1");
    const v1::BudgetCharge charge = Charge("heart", Key(1), 1.5, "s1");
    ASSERT_OK(store->PutSessionCharged(session, contribution, charge));
    EXPECT_THAT(store->ListBudgetCharges(), IsOkAndHolds(ElementsAre(EqualsProto(charge))));
    EXPECT_THAT(store->GetContribution(Key(1)), IsOkAndHolds(EqualsProto(contribution)));
    EXPECT_THAT(store->GetSession("s1"), IsOkAndHolds(EqualsProto(session)));
    // Sorted by dataset, then key; the same session rewriting its own keeps one charge.
    const v1::BudgetCharge earlier = Charge("aorta", Key(2), 2, "s2");
    ASSERT_OK(store->PutSessionCharged(Sent(MakeSession("s2", Key(2))),
                                       ContributionOf("aorta", Key(2), "s2"), earlier));
    ASSERT_OK(store->PutSessionCharged(session, contribution, charge));
    EXPECT_THAT(store->ListBudgetCharges(),
                IsOkAndHolds(ElementsAre(EqualsProto(earlier), EqualsProto(charge))));
  }
}

TEST_F(SiteBudgetStoreTest, RefusedWriteChargesNothing) {
  for (std::unique_ptr<SiteStore>& store : BothStores()) {
    ASSERT_OK(store->PutSessionCharged(Sent(MakeSession("s1", Key(1))),
                                       ContributionOf("heart", Key(1), "s1"),
                                       Charge("heart", Key(1), 1.5, "s1")));
    // Another session's contribution under the same key: ALREADY_EXISTS, nothing written.
    EXPECT_THAT(store->PutSessionCharged(Sent(MakeSession("s2", Key(1))),
                                         ContributionOf("heart", Key(1), "s2"),
                                         Charge("heart", Key(1), 9, "s2")),
                StatusIs(absl::StatusCode::kAlreadyExists));
    // Malformed charges: INVALID_ARGUMENT, nothing written.
    const v1::SiteSessionRecord s3 = Sent(MakeSession("s3", Key(3)));
    const v1::ContributionRecord c3 = ContributionOf("heart", Key(3), "s3");
    for (const v1::BudgetCharge& bad :
         {Charge("heart", Key(4), 1.5, "s3"), Charge("lungs", Key(3), 1.5, "s3"),
          Charge("heart", Key(3), 1.5, "s4"), Charge("heart", Key(3), 0, "s3"),
          Charge("heart", Key(3), INFINITY, "s3")}) {
      EXPECT_THAT(store->PutSessionCharged(s3, c3, bad),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PutSessionCharged")))
          << bad.ShortDebugString();
    }
    EXPECT_THAT(store->GetSession("s2"), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(store->GetSession("s3"), StatusIs(absl::StatusCode::kNotFound));
    ASSERT_OK_AND_ASSIGN(std::vector<v1::BudgetCharge> charges, store->ListBudgetCharges());
    ASSERT_EQ(charges.size(), 1u);
    EXPECT_EQ(charges[0].noise_multiplier(), 1.5);
  }
}

// ---- The RocksDB store.

class SiteBudgetRocksDbTest : public SiteStoreRocksDbTest {
 protected:
  // A closed store with one charged contribution.
  void Charged(const std::string& dir) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(dir));
    ASSERT_OK(store->PutSessionCharged(Sent(MakeSession("s1", Key(1))),
                                       ContributionOf("heart", Key(1), "s1"),
                                       Charge("heart", Key(1), 1.5, "s1")));
  }
};

TEST_F(SiteBudgetRocksDbTest, ChargesSurviveReopenAndAreSeenReadOnly) {
  Charged(path());
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> reader, OpenSiteStoreReadOnly(path()));
    EXPECT_THAT(reader->ListBudgetCharges(),
                IsOkAndHolds(ElementsAre(EqualsProto(Charge("heart", Key(1), 1.5, "s1")))));
    EXPECT_THAT(reader->PutSessionCharged(Sent(MakeSession("s2", Key(2))),
                                          ContributionOf("heart", Key(2), "s2"),
                                          Charge("heart", Key(2), 1.5, "s2")),
                StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  EXPECT_THAT(store->ListBudgetCharges(),
              IsOkAndHolds(ElementsAre(EqualsProto(Charge("heart", Key(1), 1.5, "s1")))));
}

// A store written before the budget family existed (format version 1 with the core
// families only) opens, is read as having no charges, and gains the family.
TEST_F(SiteBudgetRocksDbTest, StoreMadeBeforeTheBudgetFamilyOpensAndGainsIt) {
  Populate(path());
  WithRawDb(path(), [](rocksdb::DB* db, RawFamilies& families) {
    ASSERT_TRUE(families.count("budget"));
    ASSERT_TRUE(db->DropColumnFamily(families["budget"]).ok());
  });
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path(), &names).ok());
  ASSERT_THAT(names, Not(::testing::Contains("budget")));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> reader, OpenSiteStoreReadOnly(path()));
    EXPECT_THAT(reader->ListBudgetCharges(), IsOkAndHolds(IsEmpty()));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
    EXPECT_THAT(store->ListContributions(),
                IsOkAndHolds(ElementsAre(EqualsProto(MakeContribution(Key(1), "s1")))));
    EXPECT_THAT(store->ListBudgetCharges(), IsOkAndHolds(IsEmpty()));
    ASSERT_OK(store->PutSessionCharged(Sent(MakeSession("s3", Key(3))),
                                       ContributionOf("heart", Key(3), "s3"),
                                       Charge("heart", Key(3), 1.5, "s3")));
  }
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path(), &names).ok());
  EXPECT_THAT(names, ::testing::Contains("budget"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  EXPECT_THAT(store->ListBudgetCharges(), IsOkAndHolds(::testing::SizeIs(1)));
}

TEST_F(SiteBudgetRocksDbTest, DamagedChargeIsDataLossNamingFamilyAndKey) {
  Charged(path());
  const std::string key = std::string("heart") + '\0' + Key(1);
  v1::BudgetCharge moved = Charge("lungs", Key(1), 1.5, "s1");
  PutRaw(path(), "budget", key, moved.SerializeAsString());
  EXPECT_THAT(OpenSiteStore(path()), StatusIs(absl::StatusCode::kDataLoss,
                                              AllOf(HasSubstr("family budget"), HasSubstr(Hex(key)),
                                                    SaysRestore(path()))));
  v1::BudgetCharge free = Charge("heart", Key(1), 0, "s1");
  PutRaw(path(), "budget", key, free.SerializeAsString());
  EXPECT_THAT(OpenSiteStoreReadOnly(path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("noise multiplier")));
  PutRaw(path(), "budget", key, "not a proto \xff\xff");
  EXPECT_THAT(OpenSiteStore(path()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr(Hex(key))));
}

}  // namespace
}  // namespace tessera::client::site_store_testing
