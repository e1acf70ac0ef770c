#include "crypto/secret.h"

#include <string>
#include <string_view>
#include <utility>

#include "gtest/gtest.h"

namespace tessera::crypto {
namespace {

bool AllZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != '\0') return false;
  }
  return true;
}

TEST(SecretBytesTest, TakesTheBytesAndWipesTheCallersString) {
  std::string source = "0123456789abcdefghijklmnopqrstuvwxyz";  // heap-allocated
  SecretBytes secret(std::move(source));
  EXPECT_EQ(secret.view(), "0123456789abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(secret.size(), 36u);
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): the contract under test
}

TEST(SecretBytesTest, WipesTheCallersSmallStringBuffer) {
  // A short string lives inside the std::string object; moving it copies the bytes and
  // would leave them behind unless SecretBytes wipes the source.
  std::string source = "hunter2";
  const char* buffer = source.data();
  SecretBytes secret(std::move(source));
  EXPECT_EQ(secret.view(), "hunter2");
  // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from buffer is what is checked
  ASSERT_EQ(source.data(), buffer);  // still the in-object buffer
  EXPECT_TRUE(AllZero(buffer, 7));
}

TEST(SecretBytesTest, MoveLeavesSourceEmptyAndWiped) {
  SecretBytes a = SecretBytes::CopyFrom("short");
  const char* buffer = a.view().data();
  SecretBytes b(std::move(a));
  EXPECT_EQ(b.view(), "short");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_TRUE(AllZero(buffer, 5));
}

TEST(SecretBytesTest, MoveAssignReplacesAndEmptiesSource) {
  SecretBytes a = SecretBytes::CopyFrom("first secret value that is long enough");
  SecretBytes b = SecretBytes::CopyFrom("second");
  a = std::move(b);
  EXPECT_EQ(a.view(), "second");
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  SecretBytes& same = a;   // through a reference: a self-move the compiler cannot see
  a = std::move(same);     // keeps the value
  EXPECT_EQ(a.view(), "second");
}

TEST(SecretBytesTest, CopyFromAndCloneAreIndependentCopies) {
  std::string original = std::string("with\0nul", 8);
  SecretBytes a = SecretBytes::CopyFrom(original);
  EXPECT_EQ(original.size(), 8u);  // CopyFrom leaves the caller's bytes alone
  SecretBytes b = a.Clone();
  EXPECT_EQ(b.view(), std::string_view(original));
  EXPECT_NE(a.data(), b.data());
}

TEST(SecretBytesTest, EqualsComparesContentAndSize) {
  EXPECT_TRUE(SecretBytes::CopyFrom("abc").Equals(SecretBytes::CopyFrom("abc")));
  EXPECT_FALSE(SecretBytes::CopyFrom("abc").Equals(SecretBytes::CopyFrom("abd")));
  EXPECT_FALSE(SecretBytes::CopyFrom("abc").Equals(SecretBytes::CopyFrom("abcd")));
  EXPECT_FALSE(SecretBytes::CopyFrom("xbc").Equals(SecretBytes::CopyFrom("abc")));
  EXPECT_TRUE(SecretBytes().Equals(SecretBytes::CopyFrom("")));
  EXPECT_FALSE(SecretBytes().Equals(SecretBytes::CopyFrom("a")));
}

}  // namespace
}  // namespace tessera::crypto
