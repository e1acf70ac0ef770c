#include "crypto/hkdf.h"

#include <string>

#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/test_hex.h"
#include "tests/testing/status_matchers.h"

namespace tessera::crypto {
namespace {

using ::tessera::crypto::testing::FromHex;
using ::tessera::crypto::testing::SecretFromHex;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Range(int first, int last) {
  std::string out;
  for (int c = first; c <= last; ++c) out.push_back(static_cast<char>(c));
  return out;
}

TEST(HkdfTest, Rfc5869TestCase1) {
  ASSERT_OK_AND_ASSIGN(
      SecretBytes okm,
      HkdfSha256(SecretFromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                 FromHex("000102030405060708090a0b0c"), FromHex("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(ToHex(okm.view()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfTest, Rfc5869TestCase2LongInputs) {
  ASSERT_OK_AND_ASSIGN(SecretBytes okm, HkdfSha256(SecretBytes(Range(0x00, 0x4f)),
                                                   Range(0x60, 0xaf), Range(0xb0, 0xff), 82));
  EXPECT_EQ(ToHex(okm.view()),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST(HkdfTest, Rfc5869TestCase3EmptySaltAndInfo) {
  ASSERT_OK_AND_ASSIGN(
      SecretBytes okm,
      HkdfSha256(SecretFromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), "", "", 42));
  EXPECT_EQ(ToHex(okm.view()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfTest, ShorterOutputIsAPrefixAndInfoSeparatesKeys) {
  const SecretBytes ikm = SecretBytes(std::string(32, '\x42'));
  ASSERT_OK_AND_ASSIGN(SecretBytes long_okm, HkdfSha256(ikm, "salt", "mask", 100));
  ASSERT_OK_AND_ASSIGN(SecretBytes short_okm, HkdfSha256(ikm, "salt", "mask", 16));
  EXPECT_EQ(long_okm.view().substr(0, 16), short_okm.view());
  ASSERT_OK_AND_ASSIGN(SecretBytes other, HkdfSha256(ikm, "salt", "share", 16));
  EXPECT_FALSE(other.Equals(short_okm));
  ASSERT_OK_AND_ASSIGN(SecretBytes other_salt, HkdfSha256(ikm, "salt2", "mask", 16));
  EXPECT_FALSE(other_salt.Equals(short_okm));
}

TEST(HkdfTest, LengthLimits) {
  const SecretBytes ikm = SecretBytes(std::string(32, 'S'));
  ASSERT_OK_AND_ASSIGN(SecretBytes one, HkdfSha256(ikm, "", "", 1));
  EXPECT_EQ(one.size(), 1u);
  ASSERT_OK_AND_ASSIGN(SecretBytes max, HkdfSha256(ikm, "", "", 8160));
  EXPECT_EQ(max.size(), 8160u);
  EXPECT_THAT(HkdfSha256(ikm, "", "", 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1..8160")));
  EXPECT_THAT(HkdfSha256(ikm, "", "", 8161),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1..8160")));
}

TEST(HkdfTest, EmptyInputKeyingMaterialIsRejected) {
  EXPECT_THAT(HkdfSha256(SecretBytes(), "salt", "info", 32),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

TEST(HkdfTest, ErrorsDoNotContainTheKey) {
  const std::string key(32, 'Q');
  absl::Status status = HkdfSha256(SecretBytes::CopyFrom(key), "", "", 0).status();
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(key.substr(0, 4))));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(ToHex(key).substr(0, 8))));
}

}  // namespace
}  // namespace tessera::crypto
