#include "coordinator/upload_gate.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;

TEST(UploadGateTest, AdmitsUpToItsCapacityThenTheOldestWaitingAsPlacesFree) {
  UploadGate gate(2);
  std::vector<std::string> admitted;
  auto note = [&](const std::string& name) { return [&admitted, name] { admitted.push_back(name); }; };
  gate.Acquire(note("a"));
  gate.Acquire(note("b"));
  gate.Acquire(note("c"));
  gate.Acquire(note("d"));
  EXPECT_THAT(admitted, ElementsAre("a", "b")) << "two at once";
  EXPECT_EQ(gate.admitted(), 2);
  EXPECT_EQ(gate.waiting(), 2);
  gate.Release();
  EXPECT_THAT(admitted, ElementsAre("a", "b", "c")) << "the freed place goes to the oldest";
  EXPECT_EQ(gate.admitted(), 2);
  gate.Release();
  gate.Release();
  gate.Release();
  EXPECT_THAT(admitted, ElementsAre("a", "b", "c", "d"));
  EXPECT_EQ(gate.admitted(), 0);
  EXPECT_EQ(gate.waiting(), 0);
}

TEST(UploadGateTest, AWithdrawnUploadIsNeverAdmittedAndAnAdmittedOneCannotWithdraw) {
  UploadGate gate(1);
  int admitted_first = 0;
  int admitted_second = 0;
  const uint64_t first = gate.Acquire([&] { ++admitted_first; });
  const uint64_t second = gate.Acquire([&] { ++admitted_second; });
  EXPECT_FALSE(gate.Withdraw(first)) << "admitted: its place is released by Release";
  EXPECT_TRUE(gate.Withdraw(second));
  EXPECT_FALSE(gate.Withdraw(second)) << "once";
  gate.Release();
  EXPECT_EQ(admitted_first, 1);
  EXPECT_EQ(admitted_second, 0);
  EXPECT_EQ(gate.admitted(), 0);
}

TEST(UploadGateTest, ACapacityBelowOneMeansOne) {
  UploadGate gate(0);
  int admitted = 0;
  gate.Acquire([&] { ++admitted; });
  gate.Acquire([&] { ++admitted; });
  EXPECT_EQ(admitted, 1);
}

}  // namespace
}  // namespace tessera::coordinator
