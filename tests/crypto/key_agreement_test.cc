#include "crypto/key_agreement.h"

#include <set>
#include <string>
#include <vector>

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

// X25519(scalar, u) through the public API: the scalar as a private key, u as a peer.
std::string X25519(const std::string& scalar_hex, const std::string& u_hex) {
  auto key = X25519PrivateKey::FromBytes(SecretFromHex(scalar_hex));
  EXPECT_OK(key);
  auto peer = X25519PublicKey::FromBytes(FromHex(u_hex));
  EXPECT_OK(peer);
  if (!key.ok() || !peer.ok()) return "";
  auto shared = key->Agree(*peer);
  EXPECT_OK(shared);
  return shared.ok() ? ToHex(shared->view()) : "";
}

TEST(X25519Test, Rfc7748Section52Vectors) {
  EXPECT_EQ(X25519("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                   "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
  // The second u has its top bit set: it must be masked, not rejected.
  EXPECT_EQ(X25519("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                   "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"),
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
}

TEST(X25519Test, Rfc7748Section52IteratedVector) {
  // k = u = 9; repeatedly (k, u) <- (X25519(k, u), k). 1 and 1,000 iterations (the
  // 1,000,000 one takes about a minute).
  std::string k = "0900000000000000000000000000000000000000000000000000000000000000";
  std::string u = k;
  for (int i = 1; i <= 1000; ++i) {
    std::string next = X25519(k, u);
    ASSERT_FALSE(next.empty());
    u = k;
    k = next;
    if (i == 1) {
      EXPECT_EQ(k, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
  }
  EXPECT_EQ(k, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

TEST(X25519Test, Rfc7748Section61DiffieHellman) {
  ASSERT_OK_AND_ASSIGN(X25519PrivateKey alice,
                       X25519PrivateKey::FromBytes(SecretFromHex(
                           "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")));
  ASSERT_OK_AND_ASSIGN(X25519PrivateKey bob,
                       X25519PrivateKey::FromBytes(SecretFromHex(
                           "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")));
  EXPECT_EQ(ToHex(alice.public_key().bytes()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(ToHex(bob.public_key().bytes()),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  ASSERT_OK_AND_ASSIGN(SecretBytes alice_shared, alice.Agree(bob.public_key()));
  ASSERT_OK_AND_ASSIGN(SecretBytes bob_shared, bob.Agree(alice.public_key()));
  EXPECT_EQ(ToHex(alice_shared.view()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_TRUE(alice_shared.Equals(bob_shared));
  // The private key's raw bytes are kept as given (they are what gets secret-shared).
  EXPECT_EQ(ToHex(alice.bytes().view()),
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
}

TEST(X25519Test, RefusesSmallOrderPeerKeys) {
  // u-coordinates of small order: every scalar maps them to the all-zero output (RFC 7748
  // section 6.1). The list is libsodium's (crypto_scalarmult/curve25519/ref10): 0, 1, the
  // two points of order 8, p - 1, p and p + 1, plus 0 and 1 with the ignored top bit set.
  const std::vector<std::string> small_order = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "0000000000000000000000000000000000000000000000000000000000000080",
      "0100000000000000000000000000000000000000000000000000000000000080",
  };
  for (int trial = 0; trial < 3; ++trial) {
    ASSERT_OK_AND_ASSIGN(X25519PrivateKey key, X25519PrivateKey::Generate());
    const std::string key_hex = ToHex(key.bytes().view());
    for (const std::string& u : small_order) {
      ASSERT_OK_AND_ASSIGN(X25519PublicKey peer, X25519PublicKey::FromBytes(FromHex(u)));
      absl::StatusOr<SecretBytes> shared = key.Agree(peer);
      EXPECT_THAT(shared, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("all zeros")))
          << u;
      // The refusal names no key.
      EXPECT_THAT(std::string(shared.status().message()), Not(HasSubstr(key_hex)));
      EXPECT_THAT(std::string(shared.status().message()), Not(HasSubstr(u)));
    }
  }
}

TEST(X25519Test, GeneratedKeysAgreeBothWays) {
  std::set<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    ASSERT_OK_AND_ASSIGN(X25519PrivateKey a, X25519PrivateKey::Generate());
    ASSERT_OK_AND_ASSIGN(X25519PrivateKey b, X25519PrivateKey::Generate());
    ASSERT_OK_AND_ASSIGN(SecretBytes ab, a.Agree(b.public_key()));
    ASSERT_OK_AND_ASSIGN(SecretBytes ba, b.Agree(a.public_key()));
    EXPECT_EQ(ab.size(), kX25519KeyBytes);
    EXPECT_TRUE(ab.Equals(ba));
    EXPECT_EQ(a.bytes().size(), kX25519KeyBytes);
    EXPECT_EQ(a.public_key().bytes().size(), kX25519KeyBytes);
    EXPECT_TRUE(seen.insert(std::string(a.bytes().view())).second);
    EXPECT_TRUE(seen.insert(std::string(ab.view())).second);
    // Rebuilding a key from its bytes (as after Shamir recovery) gives the same key.
    ASSERT_OK_AND_ASSIGN(X25519PrivateKey a2, X25519PrivateKey::FromBytes(a.bytes()));
    EXPECT_EQ(a2.public_key(), a.public_key());
    ASSERT_OK_AND_ASSIGN(SecretBytes a2b, a2.Agree(b.public_key()));
    EXPECT_TRUE(a2b.Equals(ab));
  }
}

TEST(X25519Test, WrongSizesAreRejected) {
  for (size_t size : {0, 1, 31, 33, 64}) {
    EXPECT_THAT(X25519PublicKey::FromBytes(std::string(size, '\x07')),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes")))
        << size;
    // The message gives the size, never the bytes.
    absl::StatusOr<X25519PrivateKey> key =
        X25519PrivateKey::FromBytes(SecretBytes(std::string(size, 'K')));
    EXPECT_THAT(key, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
    if (size > 0) {
      EXPECT_THAT(std::string(key.status().message()), Not(HasSubstr(std::string(size, 'K'))));
      EXPECT_THAT(std::string(key.status().message()),
                  Not(HasSubstr(ToHex(std::string(size, 'K')))));
    }
  }
}

}  // namespace
}  // namespace tessera::crypto
