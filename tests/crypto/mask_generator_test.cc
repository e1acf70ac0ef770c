#include "crypto/mask_generator.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/key_agreement.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/test_hex.h"
#include "tests/testing/status_matchers.h"

namespace tessera::crypto {
namespace {

using ::tessera::crypto::testing::FromHex;
using ::tessera::crypto::testing::SecretFromHex;
using ::tessera::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

uint32_t LittleEndianWord(const std::string& bytes, size_t i) {
  uint32_t w = 0;
  for (size_t b = 0; b < 4; ++b) {
    w |= uint32_t{static_cast<unsigned char>(bytes[4 * i + b])} << (8 * b);
  }
  return w;
}

std::array<uint8_t, 16> Block(const std::string& hex) {
  const std::string bytes = FromHex(hex);
  std::array<uint8_t, 16> out{};
  for (size_t i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(bytes[i]);
  return out;
}

// An independent reference: AES-128 of one block, through ECB.
std::string AesBlock(const std::string& key, const std::array<uint8_t, 16>& in) {
  internal::UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(32, '\0');
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_ecb(), nullptr,
                               reinterpret_cast<const unsigned char*>(key.data()), nullptr),
            1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  EXPECT_EQ(EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                              in.data(), 16),
            1);
  out.resize(16);
  return out;
}

std::vector<uint32_t> Words(const MaskGenerator& gen, uint64_t first, size_t n) {
  std::vector<uint32_t> out(n);
  gen.Generate(first, out);
  return out;
}

MaskGenerator RandomGenerator() {
  auto key = RandomBytes(MaskGenerator::kKeyBytes);
  EXPECT_OK(key);
  auto gen = MaskGenerator::Create(*key);
  EXPECT_OK(gen);
  return std::move(gen).value();
}

TEST(MaskGeneratorTest, Sp800_38aF51CtrAes128) {
  // NIST SP 800-38A, F.5.1 CTR-AES128.Encrypt. CTR encryption XORs the keystream into the
  // plaintext, so keystream = plaintext XOR ciphertext; with the vector's initial counter
  // the generator's words must be that keystream read as little-endian 32-bit words.
  const std::string plaintext = FromHex(
      "6bc1bee22e409f96e93d7e117393172a"
      "ae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52ef"
      "f69f2445df4f9b17ad2b417be66c3710");
  const std::string ciphertext = FromHex(
      "874d6191b620e3261bef6864990db6ce"
      "9806f66b7970fdff8617187bb9fffdff"
      "5ae4df3edbd5d35e5b4f09020db03eab"
      "1e031dda2fbe03d1792170a0f3009cee");
  std::string keystream(64, '\0');
  for (size_t i = 0; i < 64; ++i) keystream[i] = static_cast<char>(plaintext[i] ^ ciphertext[i]);
  std::vector<uint32_t> want(16);
  for (size_t i = 0; i < 16; ++i) want[i] = LittleEndianWord(keystream, i);

  ASSERT_OK_AND_ASSIGN(MaskGenerator gen,
                       MaskGenerator::Create(SecretFromHex("2b7e151628aed2a6abf7158809cf4f3c"),
                                             Block("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")));
  EXPECT_THAT(Words(gen, 0, 16), ElementsAreArray(want));
  // Each block on its own (seek by block counter), and from the middle of block 1.
  for (size_t block = 0; block < 4; ++block) {
    EXPECT_THAT(Words(gen, 4 * block, 4),
                ElementsAreArray(want.begin() + 4 * block, want.begin() + 4 * block + 4));
  }
  EXPECT_THAT(Words(gen, 6, 7), ElementsAreArray(want.begin() + 6, want.begin() + 13));
  // Ciphertext = plaintext XOR keystream, word by word.
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(LittleEndianWord(plaintext, i) ^ want[i], LittleEndianWord(ciphertext, i));
  }
  // Block 3 uses counter ...fdff + 3 = ...fe02: the carry out of the last byte is taken.
  EXPECT_EQ(AesBlock(FromHex("2b7e151628aed2a6abf7158809cf4f3c"),
                     Block("f0f1f2f3f4f5f6f7f8f9fafbfcfdff02")),
            keystream.substr(48, 16));
}

TEST(MaskGeneratorTest, ProtocolCounterStartsAtZero) {
  const std::string key = FromHex("000102030405060708090a0b0c0d0e0f");
  ASSERT_OK_AND_ASSIGN(MaskGenerator gen, MaskGenerator::Create(SecretBytes::CopyFrom(key)));
  for (uint64_t block : {0ull, 1ull, 255ull, 256ull, 1000003ull}) {
    std::array<uint8_t, 16> c{};
    for (int b = 0; b < 8; ++b) c[15 - b] = static_cast<uint8_t>(block >> (8 * b));
    const std::string want = AesBlock(key, c);
    std::vector<uint32_t> words = Words(gen, 4 * block, 4);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(words[i], LittleEndianWord(want, i)) << block;
  }
}

TEST(MaskGeneratorTest, CounterCarriesAcross32And64BitsAndWrapsMod2To128) {
  const std::string key = FromHex("2b7e151628aed2a6abf7158809cf4f3c");
  struct Case {
    const char* initial;
    uint64_t block;
    const char* counter;  // initial + block, 128-bit big-endian
  };
  const Case cases[] = {
      {"000000000000000000000000ffffffff", 1, "00000000000000000000000100000000"},
      {"0000000000000000ffffffffffffffff", 1, "00000000000000010000000000000000"},
      {"0000000000000000fffffffffffffffe", 3, "00000000000000010000000000000001"},
      {"ffffffffffffffffffffffffffffffff", 1, "00000000000000000000000000000000"},
      {"ffffffffffffffffffffffffffffffff", 2, "00000000000000000000000000000001"},
      {"00000000000000000000000000000000", 0xffffffffffffffffull / 4,
       "00000000000000003fffffffffffffff"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.initial);
    ASSERT_OK_AND_ASSIGN(MaskGenerator gen,
                         MaskGenerator::Create(SecretBytes::CopyFrom(key), Block(c.initial)));
    const std::string want = AesBlock(key, Block(c.counter));
    const std::vector<uint32_t> words = Words(gen, 4 * c.block, 4);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(words[i], LittleEndianWord(want, i));
    // Streaming into the block from before the carry gives the same words.
    if (c.block >= 1) {
      const std::vector<uint32_t> run = Words(gen, 4 * (c.block - 1) + 1, 7);
      EXPECT_THAT(std::vector<uint32_t>(run.begin() + 3, run.end()), ElementsAreArray(words));
    }
  }
}

TEST(MaskGeneratorTest, AnyStartingWordGivesTheSameStream) {
  MaskGenerator gen = RandomGenerator();
  constexpr size_t kLong = 20000;
  const std::vector<uint32_t> all = Words(gen, 0, kLong);
  std::mt19937_64 rng(12345);
  // Hand-picked: every offset within a block, lengths that end mid-block and cross blocks.
  std::vector<std::pair<uint64_t, size_t>> ranges = {
      {0, 1},  {1, 1},  {2, 1},    {3, 1},     {1, 3},     {3, 2},        {5, 4},
      {6, 11}, {7, 64}, {4, 4096}, {13, 4099}, {0, kLong}, {kLong - 1, 1}};
  for (int i = 0; i < 200; ++i) {
    const uint64_t first = rng() % kLong;
    const size_t len = 1 + rng() % (kLong - first);
    ranges.emplace_back(first, len);
  }
  for (const auto& [first, len] : ranges) {
    EXPECT_THAT(Words(gen, first, len),
                ElementsAreArray(all.begin() + static_cast<ptrdiff_t>(first),
                                 all.begin() + static_cast<ptrdiff_t>(first + len)))
        << "first " << first << " len " << len;
  }
  // Far into the stream as well.
  const uint64_t far = (uint64_t{1} << 40) + 8;
  const std::vector<uint32_t> far_run = Words(gen, far, 100);
  for (uint64_t skip : {1u, 2u, 3u, 5u, 37u}) {
    EXPECT_THAT(Words(gen, far + skip, 100 - skip),
                ElementsAreArray(far_run.begin() + static_cast<ptrdiff_t>(skip), far_run.end()));
  }
}

TEST(MaskGeneratorTest, AddToAndSubtractFromAgreeWithGenerate) {
  MaskGenerator gen = RandomGenerator();
  std::mt19937 rng(7);
  // Sizes around the generator's internal chunk (4096 words), offsets within a block.
  for (size_t size : {1u, 3u, 4u, 5u, 4095u, 4096u, 4097u, 8192u + 7u, 30001u}) {
    for (uint64_t first : {0u, 1u, 2u, 3u, 4u, 1001u}) {
      std::vector<uint32_t> x(size);
      for (uint32_t& v : x) v = rng();
      const std::vector<uint32_t> mask = Words(gen, first, size);
      std::vector<uint32_t> added = x;
      gen.AddTo(first, added);
      std::vector<uint32_t> subtracted = x;
      gen.SubtractFrom(first, subtracted);
      for (size_t i = 0; i < size; ++i) {
        ASSERT_EQ(added[i], static_cast<uint32_t>(x[i] + mask[i])) << size << " " << i;
        ASSERT_EQ(subtracted[i], static_cast<uint32_t>(x[i] - mask[i])) << size << " " << i;
      }
      // x + PRG(k) - PRG(k) = x exactly over Z_{2^32}.
      gen.SubtractFrom(first, added);
      EXPECT_EQ(added, x);
    }
  }
  std::vector<uint32_t> empty;
  gen.Generate(0, empty);
  gen.AddTo(0, empty);
  gen.SubtractFrom(0, empty);
}

TEST(MaskGeneratorTest, PairwiseMasksCancelOverAllPairs) {
  // The pairwise masks of secure aggregation. For u < v both parties derive the same
  // seed s_uv (X25519 then HKDF); party u adds PRG(s_uv) for every v > u and subtracts it
  // for every v < u: y_u = x_u + sum_{v>u} PRG(s_uv) - sum_{v<u} PRG(s_vu). Each pair's mask
  // appears once with + and once with -, so sum_u y_u = sum_u x_u over Z_{2^32}.
  constexpr int kParties = 6;
  constexpr size_t kWords = 10007;
  std::vector<X25519PrivateKey> keys;
  for (int u = 0; u < kParties; ++u) {
    ASSERT_OK_AND_ASSIGN(X25519PrivateKey key, X25519PrivateKey::Generate());
    keys.push_back(std::move(key));
  }
  auto seed = [&](int self, int peer) {
    auto shared = keys[self].Agree(keys[peer].public_key());
    EXPECT_OK(shared);
    auto okm = HkdfSha256(*shared, "tessera-test", "pairwise mask", MaskGenerator::kKeyBytes);
    EXPECT_OK(okm);
    return std::move(okm).value();
  };
  std::mt19937 rng(99);
  std::vector<std::vector<uint32_t>> inputs(kParties, std::vector<uint32_t>(kWords));
  std::vector<uint32_t> want_sum(kWords, 0);
  for (auto& x : inputs) {
    for (size_t i = 0; i < kWords; ++i) {
      x[i] = rng();
      want_sum[i] += x[i];
    }
  }
  std::vector<uint32_t> sum(kWords, 0);
  for (int u = 0; u < kParties; ++u) {
    std::vector<uint32_t> y = inputs[u];
    for (int v = 0; v < kParties; ++v) {
      if (v == u) continue;
      ASSERT_OK_AND_ASSIGN(MaskGenerator gen, MaskGenerator::Create(seed(u, v)));
      if (u < v) {
        gen.AddTo(0, y);
      } else {
        gen.SubtractFrom(0, y);
      }
    }
    EXPECT_NE(y, inputs[u]);  // masked
    for (size_t i = 0; i < kWords; ++i) sum[i] += y[i];
  }
  EXPECT_EQ(sum, want_sum);
}

TEST(MaskGeneratorTest, DifferentKeysGiveDifferentStreams) {
  MaskGenerator a = RandomGenerator();
  MaskGenerator b = RandomGenerator();
  EXPECT_NE(Words(a, 0, 64), Words(b, 0, 64));
  // And the same key always gives the same stream.
  ASSERT_OK_AND_ASSIGN(MaskGenerator c,
                       MaskGenerator::Create(SecretBytes(std::string(16, '\x11'))));
  ASSERT_OK_AND_ASSIGN(MaskGenerator d,
                       MaskGenerator::Create(SecretBytes(std::string(16, '\x11'))));
  EXPECT_EQ(Words(c, 5, 64), Words(d, 5, 64));
}

TEST(MaskGeneratorTest, WrongKeySizesAreRejected) {
  for (size_t size : {0, 15, 17, 24, 32}) {
    const std::string key(size, 'M');
    absl::StatusOr<MaskGenerator> gen = MaskGenerator::Create(SecretBytes::CopyFrom(key));
    EXPECT_THAT(gen, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16 bytes")));
    if (size > 0) {
      EXPECT_THAT(std::string(gen.status().message()), Not(HasSubstr(key)));
      EXPECT_THAT(std::string(gen.status().message()), Not(HasSubstr(ToHex(key))));
    }
  }
}

}  // namespace
}  // namespace tessera::crypto
