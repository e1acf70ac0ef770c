#include "coordinator/upload_gate.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class UploadGateTest : public ::testing::Test {
 protected:
  // Notes each admission in admitted_ under `name`.
  std::function<void(uint64_t)> Note(const std::string& name) {
    return [this, name](uint64_t /*ticket*/) {
      absl::MutexLock lock(&mu_);
      admitted_.push_back(name);
    };
  }
  // Notes each overstay in overstayed_ as "name read_for_seconds received".
  UploadGate::Overstayed Overstay(const std::string& name) {
    return [this, name](absl::Duration read_for, uint64_t received) {
      absl::MutexLock lock(&mu_);
      overstayed_.push_back(absl::StrCat(name, " ", absl::ToInt64Seconds(read_for), " ", received));
    };
  }
  std::vector<std::string> admitted() {
    absl::MutexLock lock(&mu_);
    return admitted_;
  }
  // The overstays once there are `n` (waits for the gate's watcher thread).
  std::vector<std::string> OverstayedOnce(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return overstayed_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(30));
    return overstayed_;
  }
  std::vector<std::string> overstayed() {
    absl::MutexLock lock(&mu_);
    return overstayed_;
  }

  testing::FakeClock clock_;
  absl::Mutex mu_;
  std::vector<std::string> admitted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> overstayed_ ABSL_GUARDED_BY(mu_);
};

TEST_F(UploadGateTest, AdmitsUpToItsCapacityThenTheOldestWaitingAsPlacesFree) {
  UploadGate gate(2, absl::Seconds(30), 1024, &clock_);
  const uint64_t a = gate.Acquire("site-a", Note("a"), Overstay("a"));
  const uint64_t b = gate.Acquire("site-b", Note("b"), Overstay("b"));
  const uint64_t c = gate.Acquire("site-c", Note("c"), Overstay("c"));
  const uint64_t d = gate.Acquire("site-d", Note("d"), Overstay("d"));
  EXPECT_THAT(admitted(), ElementsAre("a", "b")) << "two at once";
  EXPECT_EQ(gate.admitted(), 2);
  EXPECT_EQ(gate.waiting(), 2);
  gate.Release(a);
  EXPECT_THAT(admitted(), ElementsAre("a", "b", "c")) << "the freed place goes to the oldest";
  EXPECT_EQ(gate.admitted(), 2);
  gate.Release(b);
  gate.Release(c);
  gate.Release(c);  // once only
  EXPECT_EQ(gate.admitted(), 1);
  gate.Release(d);
  EXPECT_THAT(admitted(), ElementsAre("a", "b", "c", "d"));
  EXPECT_EQ(gate.admitted(), 0);
  EXPECT_EQ(gate.waiting(), 0);
}

// Beyond the counted places, uploads of declared sizes share a budget of bytes; the order
// of arrival holds (an upload that fits nowhere holds back younger ones), and undeclared
// uploads take counted places only.
TEST_F(UploadGateTest, DeclaredUploadsShareAByteBudgetBeyondTheCountedPlaces) {
  UploadGate gate(2, absl::Seconds(30), 1024, &clock_, /*declared_budget_bytes=*/1000);
  std::vector<uint64_t> small;
  for (const char* s : {"a", "b", "c", "d", "e", "f"}) {
    small.push_back(gate.Acquire(absl::StrCat("site-", s), 200, Note(s), Overstay(s)));
  }
  // a..e: 1,000 bytes in all; f would pass the budget.
  EXPECT_THAT(admitted(), ElementsAre("a", "b", "c", "d", "e"));
  EXPECT_EQ(gate.waiting(), 1);
  const uint64_t big = gate.Acquire("site-g", 900, Note("g"), Overstay("g"));
  const uint64_t undeclared = gate.Acquire("site-h", Note("h"), Overstay("h"));
  gate.Release(small[0]);
  EXPECT_THAT(admitted(), ElementsAre("a", "b", "c", "d", "e", "f")) << "f fits again";
  gate.Release(small[1]);
  gate.Release(small[2]);
  EXPECT_EQ(gate.admitted(), 3) << "g (900 bytes) does not fit beside 600, nor may h pass it";
  gate.Release(small[3]);
  gate.Release(small[4]);
  EXPECT_THAT(admitted(), ElementsAre("a", "b", "c", "d", "e", "f", "g"))
      << "g takes a counted place; h needs one too";
  gate.Release(small[5]);
  EXPECT_THAT(admitted(), ElementsAre("a", "b", "c", "d", "e", "f", "g", "h"));
  gate.Release(big);
  gate.Release(undeclared);
  EXPECT_EQ(gate.admitted(), 0);
}

TEST_F(UploadGateTest, AWithdrawnUploadIsNeverAdmittedAndAnAdmittedOneCannotWithdraw) {
  UploadGate gate(1, absl::Seconds(30), 1024, &clock_);
  const uint64_t first = gate.Acquire("site-a", Note("first"), Overstay("first"));
  const uint64_t second = gate.Acquire("site-b", Note("second"), Overstay("second"));
  EXPECT_FALSE(gate.Withdraw(first)) << "admitted: its place is released by Release";
  EXPECT_TRUE(gate.Withdraw(second));
  EXPECT_FALSE(gate.Withdraw(second)) << "once";
  gate.Release(first);
  EXPECT_THAT(admitted(), ElementsAre("first"));
  EXPECT_EQ(gate.admitted(), 0);
}

TEST_F(UploadGateTest, ACapacityBelowOneMeansOne) {
  UploadGate gate(0, absl::Seconds(30), 1024, &clock_);
  gate.Acquire("site-a", Note("a"), Overstay("a"));
  gate.Acquire("site-b", Note("b"), Overstay("b"));
  EXPECT_THAT(admitted(), ElementsAre("a"));
}

TEST_F(UploadGateTest, OneSiteHoldsAtMostOnePlaceAndOthersGoPastItsWaitingUploads) {
  UploadGate gate(2, absl::Seconds(30), 1024, &clock_);
  const uint64_t a1 = gate.Acquire("site-a", Note("a1"), Overstay("a1"));
  const uint64_t a2 = gate.Acquire("site-a", Note("a2"), Overstay("a2"));
  const uint64_t a3 = gate.Acquire("site-a", Note("a3"), Overstay("a3"));
  EXPECT_THAT(admitted(), ElementsAre("a1")) << "a place is free, but not for site-a";
  const uint64_t b1 = gate.Acquire("site-b", Note("b1"), Overstay("b1"));
  EXPECT_THAT(admitted(), ElementsAre("a1", "b1")) << "past site-a's waiting uploads";
  const uint64_t c1 = gate.Acquire("site-c", Note("c1"), Overstay("c1"));
  EXPECT_EQ(gate.waiting(), 3);
  gate.Release(b1);
  EXPECT_THAT(admitted(), ElementsAre("a1", "b1", "c1")) << "site-a still holds a place";
  gate.Release(a1);
  EXPECT_THAT(admitted(), ElementsAre("a1", "b1", "c1", "a2")) << "site-a's oldest next";
  gate.Release(c1);
  EXPECT_THAT(admitted(), ElementsAre("a1", "b1", "c1", "a2")) << "one at a time for site-a";
  EXPECT_EQ(gate.admitted(), 1);
  gate.Release(a2);
  EXPECT_THAT(admitted(), ElementsAre("a1", "b1", "c1", "a2", "a3"));
  gate.Release(a3);
  EXPECT_EQ(gate.admitted(), 0);
  EXPECT_EQ(gate.waiting(), 0);
}

TEST_F(UploadGateTest, AnUploadOverstaysAfterTheTimeoutPlusItsBytesAtTheMinimumRate) {
  UploadGate gate(2, absl::Seconds(30), 1024, &clock_);
  const uint64_t stalled = gate.Acquire("site-a", Note("stalled"), Overstay("stalled"));
  const uint64_t steady = gate.Acquire("site-b", Note("steady"), Overstay("steady"));
  const uint64_t waiting = gate.Acquire("site-c", Note("waiting"), Overstay("waiting"));
  gate.Received(stalled, 2048);  // 2 s more at 1 KiB/s: 32 s in all
  clock_.Advance(absl::Seconds(20));
  gate.Received(steady, 20 * 1024);   // kept up: 50 s in all so far
  clock_.Advance(absl::Seconds(11));  // 31 s: within its 32
  EXPECT_THAT(overstayed(), IsEmpty());
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(OverstayedOnce(1), ElementsAre("stalled 33 2048"));
  // Told, it still holds its place until its call ends and releases it.
  EXPECT_THAT(admitted(), ElementsAre("stalled", "steady"));
  gate.Release(stalled);
  EXPECT_THAT(admitted(), ElementsAre("stalled", "steady", "waiting"));
  clock_.Advance(absl::Seconds(16));  // 49 s: steady is within its 50
  gate.Received(waiting, 1024);
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(OverstayedOnce(2), ElementsAre("stalled 33 2048", "steady 51 20480"));
  gate.Release(steady);
  gate.Release(waiting);
  EXPECT_THAT(overstayed(), ElementsAre("stalled 33 2048", "steady 51 20480"))
      << "waiting's time began at its admission, 18 s ago";
}

TEST_F(UploadGateTest, AReleasedOrWaitingUploadNeverOverstays) {
  UploadGate gate(1, absl::Seconds(5), 1024, &clock_);
  const uint64_t first = gate.Acquire("site-a", Note("first"), Overstay("first"));
  gate.Acquire("site-b", Note("second"), Overstay("second"));
  gate.Release(first);
  clock_.Advance(absl::Seconds(4));
  const uint64_t third = gate.Acquire("site-c", Note("third"), Overstay("third"));
  EXPECT_TRUE(gate.Withdraw(third));
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(OverstayedOnce(1), ElementsAre("second 6 0"));
  clock_.Advance(absl::Seconds(60));
  EXPECT_THAT(overstayed(), ElementsAre("second 6 0"));
  EXPECT_THAT(admitted(), ElementsAre("first", "second"));
}

}  // namespace
}  // namespace tessera::coordinator
