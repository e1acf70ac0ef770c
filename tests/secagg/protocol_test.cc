// The shared definitions of the secure-aggregation protocol: thresholds, the mask sign
// convention (masks cancel), key derivations (symmetric in the pair, separated by session,
// pair and purpose) and the byte strings that are signed or hashed (unambiguous, and
// covering every field they claim to).
#include "secagg/protocol.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/secagg.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {

using crypto::MaskGenerator;
using crypto::SecretBytes;
using crypto::X25519PrivateKey;
namespace {

TEST(SecAggThresholdTest, DefaultAndMinimumAreTwoThirdsPlusOne) {
  EXPECT_EQ(DefaultThreshold(1), 1u);
  EXPECT_EQ(DefaultThreshold(3), 3u);
  EXPECT_EQ(DefaultThreshold(5), 4u);
  EXPECT_EQ(DefaultThreshold(10), 7u);
  EXPECT_EQ(DefaultThreshold(100), 67u);
  EXPECT_EQ(MinimumSafeThreshold(1), 1u);
  EXPECT_EQ(MinimumSafeThreshold(4), 3u);
  EXPECT_EQ(MinimumSafeThreshold(5), 4u);
  EXPECT_EQ(MinimumSafeThreshold(6), 5u);
  EXPECT_EQ(MinimumSafeThreshold(10), 7u);
  for (uint32_t n = 1; n <= 200; ++n) {
    EXPECT_EQ(MinimumSafeThreshold(n), DefaultThreshold(n)) << n;
    EXPECT_EQ(MinimumSafeThreshold(n), SafeThreshold(n, std::nullopt)) << n;
    EXPECT_LE(DefaultThreshold(n), n) << n;
    EXPECT_GT(3 * MinimumSafeThreshold(n), 2 * n) << n;        // t > 2n/3
    EXPECT_LE(3 * (MinimumSafeThreshold(n) - 1), 2 * n) << n;  // and the least such
  }
}

TEST(SecAggThresholdTest, NoSplitViewWithFewerThanAThirdColluding) {
  // A split view needs two survivor sets with t signatures each; the n - c honest sites
  // sign one set, the c colluders both: it needs n + c >= 2t. For every c < n/3 the
  // default threshold makes that impossible.
  for (uint32_t n = 1; n <= 300; ++n) {
    for (uint32_t c = 0; 3 * c < n; ++c) {
      EXPECT_GT(2 * MinimumSafeThreshold(n), n + c) << n << " " << c;
      EXPECT_LE(SafeThreshold(n, c), MinimumSafeThreshold(n)) << n << " " << c;
    }
  }
  // The old strict-majority threshold does not: five sites, t = 3, one colluder.
  EXPECT_LE(2 * 3u, 5u + 1u);
}

TEST(SecAggThresholdTest, ExplicitColludersRuleIsTheLeastSafeThreshold) {
  EXPECT_EQ(SafeThreshold(5, 0), 3u);  // c = 0: a strict majority
  EXPECT_EQ(SafeThreshold(5, 1), 4u);
  EXPECT_EQ(SafeThreshold(10, 3), 7u);
  EXPECT_EQ(SafeThreshold(4, 4), 5u);  // above n: no threshold is safe
  for (uint32_t n = 1; n <= 100; ++n) {
    for (uint32_t c = 0; c <= n; ++c) {
      const uint32_t t = SafeThreshold(n, c);
      EXPECT_GT(2 * t, n + c) << n << " " << c;        // safe
      EXPECT_LE(2 * (t - 1), n + c) << n << " " << c;  // and the least safe
      EXPECT_GE(t, n / 2 + 1) << n << " " << c;        // never below a strict majority
    }
  }
  EXPECT_EQ(SafeThreshold(UINT32_MAX, UINT32_MAX), UINT32_MAX);
  EXPECT_EQ(ThresholdRuleName(std::nullopt), "floor(2n/3) + 1");
  EXPECT_EQ(ThresholdRuleName(2), "floor((n + c)/2) + 1 with c = 2");
}

TEST(SecAggMaskTest, SignIsAntisymmetric) {
  EXPECT_EQ(PairwiseMaskSign("a", "b"), 1);
  EXPECT_EQ(PairwiseMaskSign("b", "a"), -1);
  EXPECT_EQ(PairwiseMaskSign("site-10", "site-9"), 1);  // byte order, not numeric
}

TEST(SecAggMaskTest, PairwiseMasksCancelExactly) {
  const std::vector<std::string> ids = {"h1", "h2", "h3", "h4", "h5", "h6"};
  std::vector<X25519PrivateKey> keys;
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(X25519PrivateKey key, X25519PrivateKey::Generate());
    keys.push_back(std::move(key));
  }
  const std::string session_id(32, 's');
  std::vector<uint32_t> total(5000, 0);
  for (size_t u = 0; u < ids.size(); ++u) {
    std::vector<uint32_t> masked(total.size(), 0);
    for (size_t v = 0; v < ids.size(); ++v) {
      if (u == v) continue;
      // u derives the key from its private key and v's public key.
      ASSERT_OK_AND_ASSIGN(SecretBytes shared, keys[u].Agree(keys[v].public_key()));
      ASSERT_OK_AND_ASSIGN(SecretBytes key, PairwiseMaskKey(shared, session_id, ids[u], ids[v]));
      ASSERT_OK_AND_ASSIGN(MaskGenerator generator, MaskGenerator::Create(key));
      if (PairwiseMaskSign(ids[u], ids[v]) > 0) {
        generator.AddTo(0, masked);
      } else {
        generator.SubtractFrom(0, masked);
      }
    }
    EXPECT_NE(masked, std::vector<uint32_t>(total.size(), 0));  // each vector is masked
    for (size_t i = 0; i < total.size(); ++i) total[i] += masked[i];
  }
  EXPECT_EQ(total, std::vector<uint32_t>(total.size(), 0));
}

TEST(SecAggKeyTest, PairKeysAreSymmetricAndSeparated) {
  const SecretBytes shared = SecretBytes::CopyFrom(std::string(32, 'x'));
  const std::string sid(32, 's');
  ASSERT_OK_AND_ASSIGN(SecretBytes channel_ab, ShareChannelKey(shared, sid, "a", "b"));
  ASSERT_OK_AND_ASSIGN(SecretBytes channel_ba, ShareChannelKey(shared, sid, "b", "a"));
  EXPECT_EQ(channel_ab.size(), 32u);
  EXPECT_TRUE(channel_ab.Equals(channel_ba));
  ASSERT_OK_AND_ASSIGN(SecretBytes mask_ab, PairwiseMaskKey(shared, sid, "a", "b"));
  ASSERT_OK_AND_ASSIGN(SecretBytes mask_ba, PairwiseMaskKey(shared, sid, "b", "a"));
  EXPECT_EQ(mask_ab.size(), 16u);
  EXPECT_TRUE(mask_ab.Equals(mask_ba));
  // Purpose, session and pair all change the key.
  EXPECT_NE(channel_ab.view().substr(0, 16), mask_ab.view());
  ASSERT_OK_AND_ASSIGN(SecretBytes other_session, PairwiseMaskKey(shared, "t", "a", "b"));
  EXPECT_FALSE(other_session.Equals(mask_ab));
  ASSERT_OK_AND_ASSIGN(SecretBytes other_pair, PairwiseMaskKey(shared, sid, "a", "c"));
  EXPECT_FALSE(other_pair.Equals(mask_ab));
  // The pair is encoded unambiguously: ("ab", "c") is not ("a", "bc").
  ASSERT_OK_AND_ASSIGN(SecretBytes split1, PairwiseMaskKey(shared, sid, "ab", "c"));
  ASSERT_OK_AND_ASSIGN(SecretBytes split2, PairwiseMaskKey(shared, sid, "a", "bc"));
  EXPECT_FALSE(split1.Equals(split2));
}

TEST(SecAggKeyTest, SelfMaskKeyAndCommitmentBindSessionAndClient) {
  const SecretBytes seed = SecretBytes::CopyFrom(std::string(32, 'z'));
  ASSERT_OK_AND_ASSIGN(SecretBytes key, SelfMaskKey(seed, "s1", "a"));
  EXPECT_EQ(key.size(), 16u);
  ASSERT_OK_AND_ASSIGN(SecretBytes other_client, SelfMaskKey(seed, "s1", "b"));
  ASSERT_OK_AND_ASSIGN(SecretBytes other_session, SelfMaskKey(seed, "s2", "a"));
  EXPECT_FALSE(key.Equals(other_client));
  EXPECT_FALSE(key.Equals(other_session));

  const std::string commitment = SelfMaskCommitment("s1", "a", seed);
  EXPECT_EQ(commitment.size(), 32u);
  EXPECT_EQ(commitment, SelfMaskCommitment("s1", "a", seed));
  EXPECT_NE(commitment, SelfMaskCommitment("s2", "a", seed));
  EXPECT_NE(commitment, SelfMaskCommitment("s1", "b", seed));
  EXPECT_NE(commitment, SelfMaskCommitment("s1", "a", SecretBytes::CopyFrom(std::string(32, 'y'))));
}

TEST(SecAggSigningInputTest, FieldsAreLengthPrefixedAndTagged) {
  const std::string digest(32, 'd');
  EXPECT_NE(AdvertisementSigningInput(digest, "ab", "c", "k"),
            AdvertisementSigningInput(digest, "a", "bc", "k"));
  EXPECT_NE(AdvertisementSigningInput(digest, "a", "c", "k"),
            AdvertisementSigningInput(digest, "a", "k", "c"));
  const std::vector<std::string> ab_c = {"ab", "c"};
  const std::vector<std::string> a_bc = {"a", "bc"};
  EXPECT_NE(ConsistencySigningInput("s", ab_c), ConsistencySigningInput("s", a_bc));
  EXPECT_NE(ConsistencySigningInput("s", ab_c), ConsistencySigningInput("t", ab_c));
  EXPECT_NE(ShareAssociatedData("s", "a", "b"), ShareAssociatedData("s", "b", "a"));
  // Different purposes never share an encoding, even over the same fields.
  EXPECT_NE(AdvertisementSigningInput("s", "a", "b", "c").substr(0, 31),
            ConsistencySigningInput("s", std::vector<std::string>{"a", "b", "c"}).substr(0, 31));
}

v1::SecAggSetup SampleSetup() {
  v1::SecAggSetup setup;
  setup.set_protocol_version(1);
  setup.set_session_nonce(std::string(32, 'n'));
  setup.set_task_id("task");
  setup.set_round(3);
  setup.set_stage(1);
  setup.set_attempt(0);
  setup.set_model_hash(std::string(32, 'h'));
  setup.set_threshold(2);
  setup.add_invited("a");
  setup.add_invited("b");
  setup.add_invited("c");
  setup.set_vector_words(10);
  v1::SecAggSegment* segment = setup.mutable_encoding()->add_segments();
  segment->set_kind(v1::SecAggSegment::BOUNDED);
  segment->set_length(10);
  segment->set_bits(20);
  segment->set_bound(1);
  setup.set_spec_hash(std::string(32, 'S'));
  setup.set_pooled_rows(999);
  setup.set_standardization_hash(std::string(32, 'Z'));
  return setup;
}

TEST(SecAggDigestTest, SetupDigestCoversEveryField) {
  const v1::SecAggSetup setup = SampleSetup();
  const std::string digest = SetupDigest(setup);
  EXPECT_EQ(digest.size(), 32u);
  EXPECT_EQ(digest, SetupDigest(v1::SecAggSetup(setup)));
  const std::vector<std::function<void(v1::SecAggSetup&)>> changes = {
      [](auto& s) { s.set_protocol_version(2); },
      [](auto& s) { (*s.mutable_session_nonce())[0] ^= 1; },
      [](auto& s) { s.set_task_id("other"); },
      [](auto& s) { s.set_round(4); },
      [](auto& s) { s.set_stage(2); },
      [](auto& s) { s.set_attempt(1); },
      [](auto& s) { (*s.mutable_model_hash())[5] ^= 1; },
      [](auto& s) { s.set_threshold(3); },
      [](auto& s) { s.add_invited("d"); },
      [](auto& s) { s.set_vector_words(11); },
      [](auto& s) { s.mutable_encoding()->mutable_segments(0)->set_bits(21); },
      [](auto& s) { s.mutable_encoding()->mutable_segments(0)->set_bound(2); },
      [](auto& s) { s.set_spec_hash(std::string(32, 's')); },
      [](auto& s) { s.set_pooled_rows(1000); },
      [](auto& s) { s.set_standardization_hash(std::string(32, 'z')); },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    v1::SecAggSetup changed = setup;
    changes[i](changed);
    EXPECT_NE(SetupDigest(changed), digest) << "change " << i;
  }
}

TEST(SecAggDigestTest, SetupDigestBindsTheSpecTheRowCountAndTheStandardization) {
  // Each of the three differs in one byte, or is absent: every variant its own digest.
  const v1::SecAggSetup setup = SampleSetup();
  std::set<std::string> digests = {SetupDigest(setup)};
  for (int field = 0; field < 3; ++field) {
    for (int variant = 0; variant < 2; ++variant) {
      v1::SecAggSetup changed = setup;
      std::string* hash =
          field == 0 ? changed.mutable_spec_hash() : changed.mutable_standardization_hash();
      if (field == 1) {
        changed.set_pooled_rows(variant == 0 ? 1000 : 0);
      } else if (variant == 0) {
        (*hash)[31] ^= 1;
      } else {
        hash->clear();
      }
      EXPECT_TRUE(digests.insert(SetupDigest(changed)).second) << field << " " << variant;
    }
  }
}

TEST(SecAggDigestTest, SessionIdCoversEveryEntryAndTheirOrder) {
  std::vector<v1::AdvertisementEntry> entries(3);
  for (int i = 0; i < 3; ++i) {
    entries[i].set_client_id(std::string(1, static_cast<char>('a' + i)));
    v1::KeyAdvertisement* ad = entries[i].mutable_advertisement();
    ad->set_certificate("cert" + std::to_string(i));
    ad->set_channel_public_key(std::string(32, static_cast<char>('c' + i)));
    ad->set_mask_public_key(std::string(32, static_cast<char>('m' + i)));
    ad->set_setup_digest(std::string(32, 'd'));
    ad->set_signature("sig" + std::to_string(i));
  }
  const std::string digest(32, 'd');
  const std::string id = SessionId(digest, entries);
  EXPECT_EQ(id.size(), 32u);
  EXPECT_NE(SessionId(std::string(32, 'e'), entries), id);
  const std::vector<std::function<void(v1::AdvertisementEntry&)>> changes = {
      [](auto& e) { e.set_client_id("z"); },
      [](auto& e) { e.mutable_advertisement()->set_certificate("other"); },
      [](auto& e) { (*e.mutable_advertisement()->mutable_channel_public_key())[0] ^= 1; },
      [](auto& e) { (*e.mutable_advertisement()->mutable_mask_public_key())[0] ^= 1; },
      [](auto& e) { (*e.mutable_advertisement()->mutable_setup_digest())[0] ^= 1; },
      [](auto& e) { e.mutable_advertisement()->set_signature("forged"); },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    std::vector<v1::AdvertisementEntry> changed = entries;
    changes[i](changed[1]);
    EXPECT_NE(SessionId(digest, changed), id) << "change " << i;
  }
  std::vector<v1::AdvertisementEntry> swapped = entries;
  std::swap(swapped[0], swapped[1]);
  EXPECT_NE(SessionId(digest, swapped), id);
  std::vector<v1::AdvertisementEntry> shorter(entries.begin(), entries.end() - 1);
  EXPECT_NE(SessionId(digest, shorter), id);
}

}  // namespace
}  // namespace tessera::secagg
