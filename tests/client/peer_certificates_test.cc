// Completing an advertisement list that names certificates by digest
// (client/peer_certificates.h) against a fake coordinator: certificates held are used
// without a call, the rest are fetched once (in calls of at most
// proto::kMaxCertificatesPerFetch) and kept for later lists; a certificate that does not
// hash to its digest is neither used nor kept, and its entry is named; a failed fetch
// leaves the item as it was; the byte budget drops the oldest certificates first.
#include "client/peer_certificates.h"

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"
#include "proto/transfer.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Stand-ins for PEM text: completion only hashes and copies them (the state machine
// parses and checks them).
std::string Pem(int i) { return absl::StrCat("-----BEGIN CERTIFICATE-----site-", i, "-----"); }

// A list step naming sites 0..n-1's certificates by digest only.
v1::WorkItem ListItem(int n) {
  v1::WorkItem item;
  item.set_task_id("t");
  item.set_secagg_session("t/r1/fit/a1");
  item.mutable_secagg()->set_round(v1::SECAGG_SHARE_KEYS);
  for (int i = 0; i < n; ++i) {
    v1::AdvertisementEntry* entry = item.mutable_secagg()->mutable_advertisements()->add_entries();
    entry->set_client_id(absl::StrCat("site-", i));
    entry->mutable_advertisement()->set_certificate_sha256(crypto::Sha256(Pem(i)));
  }
  return item;
}

// A coordinator that knows sites 0..n-1 and counts what it is asked.
struct FakeCoordinator {
  explicit FakeCoordinator(int n) {
    for (int i = 0; i < n; ++i) by_digest[crypto::Sha256(Pem(i))] = Pem(i);
  }
  FetchCertificatesCall Call() {
    return
        [this](
            const std::vector<std::string>& sha256s) -> absl::StatusOr<std::vector<std::string>> {
          ++calls;
          largest_call = std::max(largest_call, sha256s.size());
          asked += sha256s.size();
          std::vector<std::string> pems;
          for (const std::string& digest : sha256s) {
            auto it = by_digest.find(digest);
            pems.push_back(it == by_digest.end() ? std::string() : it->second);
          }
          return pems;
        };
  }
  std::map<std::string, std::string> by_digest;
  int calls = 0;
  size_t asked = 0;
  size_t largest_call = 0;
};

TEST(PeerCertificatesTest, FetchesWhatItLacksOnceAndCompletesLaterListsFromWhatItHolds) {
  FakeCoordinator coordinator(5);
  PeerCertificates held;
  held.Add(Pem(0));  // the site's own
  v1::WorkItem first = ListItem(5);
  ASSERT_OK_AND_ASSIGN(CompletedList done, held.Complete(&first, coordinator.Call()));
  EXPECT_EQ(done.fetched, 4u);
  EXPECT_EQ(done.from_cache, 1u);
  EXPECT_THAT(done.refused, IsEmpty());
  EXPECT_EQ(coordinator.asked, 4u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(first.secagg().advertisements().entries(i).advertisement().certificate(), Pem(i));
  }

  v1::WorkItem second = ListItem(5);
  ASSERT_OK_AND_ASSIGN(done, held.Complete(&second, coordinator.Call()));
  EXPECT_EQ(done.from_cache, 5u);
  EXPECT_EQ(coordinator.calls, 1);  // no call for the second list
  EXPECT_TRUE(MessageDifferencer::Equals(first, second));
}

TEST(PeerCertificatesTest, AsksInCallsOfAtMostTheLimit) {
  const int n = static_cast<int>(proto::kMaxCertificatesPerFetch) + 7;
  FakeCoordinator coordinator(n);
  PeerCertificates held;
  v1::WorkItem item = ListItem(n);
  ASSERT_OK_AND_ASSIGN(CompletedList done, held.Complete(&item, coordinator.Call()));
  EXPECT_EQ(done.fetched, static_cast<size_t>(n));
  EXPECT_EQ(coordinator.calls, 2);
  EXPECT_EQ(coordinator.largest_call, proto::kMaxCertificatesPerFetch);
}

TEST(PeerCertificatesTest, ACertificateThatIsNotTheDigestsIsNeitherUsedNorKept) {
  FakeCoordinator coordinator(4);
  coordinator.by_digest[crypto::Sha256(Pem(2))] = Pem(9);  // the coordinator swaps one
  PeerCertificates held;
  v1::WorkItem item = ListItem(4);
  ASSERT_OK_AND_ASSIGN(CompletedList done, held.Complete(&item, coordinator.Call()));
  EXPECT_EQ(done.fetched, 3u);
  EXPECT_THAT(done.refused, ElementsAre("site-2"));
  EXPECT_TRUE(item.secagg().advertisements().entries(2).advertisement().certificate().empty());
  EXPECT_EQ(held.Find(crypto::Sha256(Pem(2))), nullptr);
  EXPECT_EQ(held.Find(crypto::Sha256(Pem(9))), nullptr);
  EXPECT_EQ(held.size(), 3u);
}

TEST(PeerCertificatesTest, AFailedFetchLeavesTheItemAsItWas) {
  PeerCertificates held;
  held.Add(Pem(1));
  v1::WorkItem item = ListItem(3);
  const v1::WorkItem before = item;
  auto failing = [](const std::vector<std::string>&) -> absl::StatusOr<std::vector<std::string>> {
    return absl::UnavailableError("connection reset");
  };
  EXPECT_THAT(held.Complete(&item, failing), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(MessageDifferencer::Equals(item, before));
}

TEST(PeerCertificatesTest, LeavesOtherItemsAndCompleteListsAlone) {
  FakeCoordinator coordinator(3);
  PeerCertificates held;
  v1::WorkItem masked;
  masked.mutable_secagg()->set_round(v1::SECAGG_MASKED_INPUT);
  v1::WorkItem full = ListItem(3);
  for (auto& entry : *full.mutable_secagg()->mutable_advertisements()->mutable_entries()) {
    entry.mutable_advertisement()->set_certificate("as sent");
  }
  const v1::WorkItem masked_before = masked, full_before = full;
  ASSERT_OK(held.Complete(&masked, coordinator.Call()).status());
  ASSERT_OK(held.Complete(&full, coordinator.Call()).status());
  EXPECT_EQ(coordinator.calls, 0);
  EXPECT_TRUE(MessageDifferencer::Equals(masked, masked_before));
  EXPECT_TRUE(MessageDifferencer::Equals(full, full_before));
}

TEST(PeerCertificatesTest, TheByteBudgetDropsTheOldestFirst) {
  PeerCertificates held(/*max_bytes=*/3 * Pem(0).size());
  for (int i = 0; i < 5; ++i) held.Add(Pem(i));
  EXPECT_EQ(held.size(), 3u);
  EXPECT_EQ(held.Find(crypto::Sha256(Pem(0))), nullptr);
  EXPECT_EQ(held.Find(crypto::Sha256(Pem(1))), nullptr);
  ASSERT_NE(held.Find(crypto::Sha256(Pem(4))), nullptr);
  EXPECT_EQ(*held.Find(crypto::Sha256(Pem(4))), Pem(4));
}

}  // namespace
}  // namespace tessera::client
