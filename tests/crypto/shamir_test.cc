#include "crypto/shamir.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "crypto/internal/shamir_field.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::crypto {
namespace {

using internal::GfAdd;
using internal::GfInverse;
using internal::GfMul;
using internal::GfSub;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kP = kShamirPrime;
using Row = std::array<uint64_t, kShamirPieces>;

// A 32-byte secret whose five 7-byte little-endian pieces are `pieces`.
SecretBytes SecretWithPieces(const Row& pieces) { return internal::PiecesToSecret(pieces); }

SecretBytes RandomSecret() {
  auto s = RandomBytes(kShamirSecretBytes);
  EXPECT_OK(s);
  return std::move(s).value();
}

std::vector<ShamirShare> Pick(const std::vector<ShamirShare>& shares,
                              const std::vector<size_t>& indices) {
  std::vector<ShamirShare> out;
  out.reserve(indices.size());
  for (size_t i : indices) out.push_back(shares[i]);
  return out;
}

TEST(ShamirFieldTest, ArithmeticMatchesA128BitReference) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> values = {
      0, 1, 2, kP - 1, kP - 2, (uint64_t{1} << 60), (uint64_t{1} << 56)};
  for (int i = 0; i < 200; ++i) values.push_back(rng() % kP);
  for (uint64_t a : values) {
    for (uint64_t b : {values[0], values[3], values[5], values[10], values[100]}) {
      const unsigned __int128 p = kP;
      EXPECT_EQ(GfMul(a, b), static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) % p));
      EXPECT_EQ(GfAdd(a, b), static_cast<uint64_t>((static_cast<unsigned __int128>(a) + b) % p));
      EXPECT_EQ(GfSub(a, b),
                static_cast<uint64_t>((static_cast<unsigned __int128>(a) + p - b) % p));
    }
    if (a != 0) {
      EXPECT_EQ(GfMul(a, GfInverse(a)), 1u) << a;
    }
  }
  EXPECT_EQ(GfInverse(2), (kP + 1) / 2);
}

TEST(ShamirTest, PiecesAreSevenByteLittleEndianChunks) {
  std::string bytes(32, '\0');
  bytes[0] = 0x05;   // piece 0, lowest byte
  bytes[6] = 0x01;   // piece 0, highest byte: 2^48
  bytes[7] = 0x02;   // piece 1, lowest byte
  bytes[31] = 0x7f;  // piece 4, byte 3
  const Row pieces = internal::SecretToPieces(SecretBytes(std::string(bytes)));
  EXPECT_EQ(pieces[0], (uint64_t{1} << 48) + 5);
  EXPECT_EQ(pieces[1], 2u);
  EXPECT_EQ(pieces[2], 0u);
  EXPECT_EQ(pieces[3], 0u);
  EXPECT_EQ(pieces[4], uint64_t{0x7f} << 24);
  EXPECT_EQ(internal::PiecesToSecret(pieces).view(), bytes);
}

TEST(ShamirTest, HandWorkedThresholdTwo) {
  // t = 2, n = 3. Piece 0 of the secret is 5 and its polynomial is f(x) = 5 + 3x; piece 1
  // is 0 with g(x) = x; pieces 2..4 are 0 with zero polynomials.
  //   f(1) = 8, f(2) = 11, f(3) = 14;  g(1) = 1, g(2) = 2, g(3) = 3.
  // From shares 2 and 3: L_2(0) = 3 / (3 - 2) = 3, L_3(0) = 2 / (2 - 3) = -2, so
  //   f(0) = 3 * 11 - 2 * 14 = 5  and  g(0) = 3 * 2 - 2 * 3 = 0.
  // From shares 3 and 1: L_3(0) = 1 / (1 - 3) = -1/2, L_1(0) = 3 / (3 - 1) = 3/2, so
  //   f(0) = -14/2 + 3 * 8 / 2 = -7 + 12 = 5 (the halves are (p + 1) / 2 in GF(p)).
  const SecretBytes secret = SecretWithPieces({5, 0, 0, 0, 0});
  const std::vector<Row> higher = {{3, 1, 0, 0, 0}};
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares,
                       internal::ShamirSplitWithCoefficients(secret, 2, 3, higher));
  ASSERT_EQ(shares.size(), 3u);
  const Row want[] = {{8, 1, 0, 0, 0}, {11, 2, 0, 0, 0}, {14, 3, 0, 0, 0}};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(shares[i].x, i + 1);
    EXPECT_EQ(shares[i].y, want[i]) << i;
  }
  ASSERT_OK_AND_ASSIGN(SecretBytes from_23, ShamirCombine(Pick(shares, {1, 2}), 2));
  EXPECT_TRUE(from_23.Equals(secret));
  ASSERT_OK_AND_ASSIGN(SecretBytes from_31, ShamirCombine(Pick(shares, {2, 0}), 2));
  EXPECT_TRUE(from_31.Equals(secret));
}

TEST(ShamirTest, HandWorkedThresholdThreeWithANegativeCoefficient) {
  // f(x) = 7 + (p - 1) x + 2 x^2 = 7 - x + 2x^2:  f(1) = 8, f(2) = 13, f(3) = 22, f(4) = 35.
  // From x = 1, 2, 3: L_1(0) = (2*3)/((2-1)(3-1)) = 3, L_2(0) = (1*3)/((1-2)(3-2)) = -3,
  // L_3(0) = (1*2)/((1-3)(2-3)) = 1, so f(0) = 3*8 - 3*13 + 22 = 7.
  const SecretBytes secret = SecretWithPieces({7, 0, 0, 0, 0});
  const std::vector<Row> higher = {{kP - 1, 0, 0, 0, 0}, {2, 0, 0, 0, 0}};
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares,
                       internal::ShamirSplitWithCoefficients(secret, 3, 4, higher));
  EXPECT_EQ(shares[0].y[0], 8u);
  EXPECT_EQ(shares[1].y[0], 13u);
  EXPECT_EQ(shares[2].y[0], 22u);
  EXPECT_EQ(shares[3].y[0], 35u);
  ASSERT_OK_AND_ASSIGN(SecretBytes rebuilt, ShamirCombine(Pick(shares, {0, 1, 2}), 3));
  EXPECT_TRUE(rebuilt.Equals(secret));
}

TEST(ShamirTest, ShareSerializationIsLittleEndian) {
  ShamirShare share;
  share.x = 0x0102;
  share.y = {8, 0x0a0b0c0d, 0, kP - 1, 1};
  const SecretBytes bytes = share.Serialize();
  ASSERT_EQ(bytes.size(), kShamirShareBytes);
  EXPECT_EQ(ToHex(bytes.view()),
            "02010000"
            "0800000000000000"
            "0d0c0b0a00000000"
            "0000000000000000"
            "feffffffffffff1f"  // p - 1 = 2^61 - 2
            "0100000000000000");
  ASSERT_OK_AND_ASSIGN(ShamirShare parsed, ShamirShare::Parse(bytes.view()));
  EXPECT_EQ(parsed.x, share.x);
  EXPECT_EQ(parsed.y, share.y);
}

TEST(ShamirTest, ParseRejectsMalformedShares) {
  ShamirShare share;
  share.x = 3;
  share.y = {1, 2, 3, 4, 5};
  const std::string good(share.Serialize().view());
  for (size_t size : {0u, 4u, 43u, 45u}) {
    EXPECT_THAT(ShamirShare::Parse(std::string(size, '\0')),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("44 bytes")));
  }
  std::string zero_x = good;
  zero_x[0] = 0;
  EXPECT_THAT(ShamirShare::Parse(zero_x),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x = 0")));
  for (size_t piece = 0; piece < kShamirPieces; ++piece) {
    for (uint64_t bad : {kP, kP + 1, ~uint64_t{0}}) {
      std::string out_of_field = good;
      for (size_t b = 0; b < 8; ++b)
        out_of_field[4 + 8 * piece + b] = static_cast<char>(bad >> (8 * b));
      absl::StatusOr<ShamirShare> parsed = ShamirShare::Parse(out_of_field);
      EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("field")));
      // The value is secret material: not in the message.
      EXPECT_THAT(std::string(parsed.status().message()), Not(HasSubstr(std::to_string(bad))));
    }
  }
}

TEST(ShamirTest, EveryThresholdSubsetRebuildsTheSecret) {
  // Small n: every subset of every size >= t, in two orders (Combine uses the first t).
  for (int n : {1, 2, 3, 5, 7}) {
    for (int t = 1; t <= n; ++t) {
      const SecretBytes secret = RandomSecret();
      ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares, ShamirSplit(secret, t, n));
      ASSERT_EQ(shares.size(), static_cast<size_t>(n));
      for (uint32_t mask = 1; mask < (1u << n); ++mask) {
        std::vector<size_t> indices;
        for (int i = 0; i < n; ++i) {
          if (mask & (1u << i)) indices.push_back(static_cast<size_t>(i));
        }
        if (indices.size() < static_cast<size_t>(t)) continue;
        for (int order = 0; order < 2; ++order) {
          if (order == 1) std::reverse(indices.begin(), indices.end());
          ASSERT_OK_AND_ASSIGN(SecretBytes rebuilt, ShamirCombine(Pick(shares, indices), t));
          ASSERT_TRUE(rebuilt.Equals(secret)) << "n " << n << " t " << t << " mask " << mask;
        }
      }
    }
  }
}

TEST(ShamirTest, RandomThresholdSubsetsRebuildTheSecretForLargeN) {
  std::mt19937 rng(2024);
  for (auto [t, n] :
       {std::pair{67, 100}, std::pair{2, 100}, std::pair{100, 100}, std::pair{51, 300}}) {
    const SecretBytes secret = RandomSecret();
    ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares, ShamirSplit(secret, t, n));
    std::vector<size_t> indices(static_cast<size_t>(n));
    std::iota(indices.begin(), indices.end(), 0);
    for (int trial = 0; trial < 10; ++trial) {
      std::shuffle(indices.begin(), indices.end(), rng);
      const std::vector<size_t> subset(indices.begin(), indices.begin() + t);
      ASSERT_OK_AND_ASSIGN(SecretBytes rebuilt, ShamirCombine(Pick(shares, subset), t));
      EXPECT_TRUE(rebuilt.Equals(secret)) << "t " << t << " n " << n;
    }
  }
}

TEST(ShamirTest, SharesOfTheSameSecretDifferAcrossSplits) {
  const SecretBytes secret = RandomSecret();
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> a, ShamirSplit(secret, 3, 5));
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> b, ShamirSplit(secret, 3, 5));
  EXPECT_NE(a[0].y, b[0].y);  // fresh random polynomials (equal with probability ~2^-305)
  // t = 1: the polynomial is the constant secret, every share is the secret's pieces.
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> one, ShamirSplit(secret, 1, 4));
  for (const ShamirShare& s : one) EXPECT_EQ(s.y, internal::SecretToPieces(secret));
}

// Coefficients c_0..c_{k-1} of the unique polynomial of degree < k through k points with
// distinct x, by Lagrange interpolation written out in coefficient form.
std::vector<uint64_t> Interpolate(const std::vector<uint64_t>& xs,
                                  const std::vector<uint64_t>& ys) {
  const size_t k = xs.size();
  std::vector<uint64_t> result(k, 0);
  for (size_t i = 0; i < k; ++i) {
    std::vector<uint64_t> basis = {1};  // prod_{m != i} (x - x_m), lowest degree first
    uint64_t denominator = 1;
    for (size_t m = 0; m < k; ++m) {
      if (m == i) continue;
      std::vector<uint64_t> next(basis.size() + 1, 0);
      for (size_t d = 0; d < basis.size(); ++d) {
        next[d + 1] = GfAdd(next[d + 1], basis[d]);
        next[d] = GfSub(next[d], GfMul(basis[d], xs[m]));
      }
      basis = std::move(next);
      denominator = GfMul(denominator, GfSub(xs[i], xs[m]));
    }
    const uint64_t scale = GfMul(ys[i], GfInverse(denominator));
    for (size_t d = 0; d < k; ++d) result[d] = GfAdd(result[d], GfMul(basis[d], scale));
  }
  return result;
}

TEST(ShamirTest, FewerThanThresholdSharesAreConsistentWithEveryCandidateSecret) {
  // Perfect secrecy, stated so that it can be checked: given any t - 1 shares and ANY
  // candidate secret s', there is a polynomial of degree <= t - 1 per piece with constant
  // term s'_j through those t - 1 shares (t points with distinct x fix exactly one such
  // polynomial, by Lagrange). We compute it, and then share s' with exactly those
  // polynomials through the same code path the real split uses: the shares it gives at the
  // observed x must equal the observed shares. As this holds for every candidate with
  // exactly one polynomial each, and the real polynomial's other coefficients are uniform,
  // every secret explains the t - 1 shares with the same probability: they reveal nothing.
  std::mt19937 rng(77);
  for (auto [t, n] : {std::pair{2, 3}, std::pair{3, 5}, std::pair{5, 9}, std::pair{67, 100}}) {
    const SecretBytes secret = RandomSecret();
    ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares, ShamirSplit(secret, t, n));
    std::vector<size_t> indices(static_cast<size_t>(n));
    std::iota(indices.begin(), indices.end(), 0);
    std::shuffle(indices.begin(), indices.end(), rng);
    const std::vector<ShamirShare> seen = Pick(shares, {indices.begin(), indices.begin() + t - 1});

    for (int candidate_trial = 0; candidate_trial < 4; ++candidate_trial) {
      // Random candidates, plus the all-zero secret.
      const SecretBytes candidate =
          candidate_trial == 0 ? SecretBytes(std::string(32, '\0')) : RandomSecret();
      const Row candidate_pieces = internal::SecretToPieces(candidate);
      std::vector<Row> higher(static_cast<size_t>(t - 1));
      for (size_t j = 0; j < kShamirPieces; ++j) {
        std::vector<uint64_t> xs = {0};
        std::vector<uint64_t> ys = {candidate_pieces[j]};
        for (const ShamirShare& s : seen) {
          xs.push_back(s.x);
          ys.push_back(s.y[j]);
        }
        const std::vector<uint64_t> coefficients = Interpolate(xs, ys);
        ASSERT_EQ(coefficients.size(), static_cast<size_t>(t));  // degree <= t - 1
        ASSERT_EQ(coefficients[0], candidate_pieces[j]);
        for (size_t k = 1; k < coefficients.size(); ++k) higher[k - 1][j] = coefficients[k];
      }
      ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> explained,
                           internal::ShamirSplitWithCoefficients(candidate, t, n, higher));
      for (const ShamirShare& s : seen) {
        EXPECT_EQ(explained[s.x - 1].y, s.y) << "t " << t << " x " << s.x;
      }
      // Completing the t - 1 real shares with one share of that sharing rebuilds s'.
      std::vector<ShamirShare> completed = seen;
      for (const ShamirShare& e : explained) {
        if (std::none_of(seen.begin(), seen.end(),
                         [&](const ShamirShare& s) { return s.x == e.x; })) {
          completed.push_back(e);
          break;
        }
      }
      ASSERT_OK_AND_ASSIGN(SecretBytes rebuilt, ShamirCombine(completed, t));
      EXPECT_TRUE(rebuilt.Equals(candidate));
    }
  }
}

TEST(ShamirTest, ACorruptedShareNeverRebuildsTheSecret) {
  const SecretBytes secret = RandomSecret();
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares, ShamirSplit(secret, 3, 5));
  for (size_t victim = 0; victim < 3; ++victim) {
    for (size_t piece = 0; piece < kShamirPieces; ++piece) {
      std::vector<ShamirShare> used = Pick(shares, {0, 1, 2});
      used[victim].y[piece] = GfAdd(used[victim].y[piece], 1);
      absl::StatusOr<SecretBytes> rebuilt = ShamirCombine(used, 3);
      // Either detected (a piece no longer fits in 7 bytes) or a different secret; never
      // the original.
      if (rebuilt.ok()) {
        EXPECT_FALSE(rebuilt->Equals(secret));
      } else {
        EXPECT_THAT(rebuilt, StatusIs(absl::StatusCode::kFailedPrecondition));
      }
    }
  }
  // Not every corruption is detected, though: the Lagrange weights of small x are small
  // integers, so a small change to one share moves the rebuilt piece by a small amount and
  // it still fits. From x = 1, 2, 3 the weight of x = 2 is L_2(0) = (1*3)/((1-2)(3-2)) = -3:
  // y_2 + 1 rebuilds piece 0 as s_0 - 3. Callers must check what they rebuild (a
  // commitment, a public key), and for X25519 keys compare public keys: clamping ignores
  // the low 3 bits of byte 0, so s_0 - 3 is often the same key.
  {
    const SecretBytes known = SecretWithPieces({1000, 1, 2, 3, 4});
    ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> known_shares,
                         internal::ShamirSplitWithCoefficients(
                             known, 3, 3, std::vector<Row>{{5, 6, 7, 8, 9}, {1, 1, 1, 1, 1}}));
    known_shares[1].y[0] = GfAdd(known_shares[1].y[0], 1);
    ASSERT_OK_AND_ASSIGN(SecretBytes rebuilt, ShamirCombine(known_shares, 3));
    EXPECT_EQ(internal::SecretToPieces(rebuilt), (Row{997, 1, 2, 3, 4}));
  }
  // Deterministic detection: with t = 2 from x = 1, 2, rebuilt piece 4 is 2 y_1 - y_2;
  // adding 1 to y_2 of a zero secret with zero polynomials gives p - 1, which does not fit.
  const SecretBytes zero(std::string(32, '\0'));
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> zero_shares,
                       internal::ShamirSplitWithCoefficients(zero, 2, 2, std::vector<Row>{Row{}}));
  zero_shares[1].y[4] = 1;
  EXPECT_THAT(ShamirCombine(zero_shares, 2),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("corrupted")));
}

TEST(ShamirTest, SharesAtGivenPointsRebuildTheSecretAndMatchTheWholeSharing) {
  const SecretBytes secret = RandomSecret();
  const std::vector<uint32_t> points = {17, 3, 250, 9, 1000};
  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares, ShamirSplitAt(secret, 3, points));
  ASSERT_EQ(shares.size(), points.size());
  for (size_t i = 0; i < points.size(); ++i) EXPECT_EQ(shares[i].x, points[i]);
  for (const std::vector<size_t>& pick :
       std::vector<std::vector<size_t>>{{0, 1, 2}, {4, 2, 0}, {1, 3, 4}, {0, 3, 4}}) {
    ASSERT_OK_AND_ASSIGN(SecretBytes rebuilt, ShamirCombine(Pick(shares, pick), 3));
    EXPECT_EQ(rebuilt.view(), secret.view());
  }
  // The same polynomial as ShamirSplit's at those points.
  const std::vector<Row> higher = {Row{5, 6, 7, 8, 9}, Row{1, 2, 3, 4, 5}};
  ASSERT_OK_AND_ASSIGN(auto all, internal::ShamirSplitWithCoefficients(secret, 3, 1000, higher));
  ASSERT_OK_AND_ASSIGN(auto some,
                       internal::ShamirSplitAtWithCoefficients(secret, 3, points, higher));
  for (size_t i = 0; i < points.size(); ++i) EXPECT_EQ(some[i].y, all[points[i] - 1].y) << i;
  for (const std::vector<uint32_t>& bad :
       std::vector<std::vector<uint32_t>>{{1, 2, 2}, {0, 1, 2}, {1, 2, 65536}, {1, 2}}) {
    EXPECT_THAT(ShamirSplitAt(secret, 3, bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad.size();
  }
}

TEST(ShamirTest, InvalidArgumentsAreRejected) {
  const SecretBytes secret = RandomSecret();
  for (auto [t, n] :
       {std::pair{0, 5}, std::pair{6, 5}, std::pair{-1, 3}, std::pair{1, 0}, std::pair{2, 65536}}) {
    EXPECT_THAT(ShamirSplit(secret, t, n),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("threshold")))
        << t << " " << n;
  }
  for (size_t size : {0u, 31u, 33u}) {
    EXPECT_THAT(ShamirSplit(SecretBytes(std::string(size, 's')), 2, 3),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
  }
  EXPECT_THAT(internal::ShamirSplitWithCoefficients(secret, 3, 4, std::vector<Row>{Row{}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("coefficients")));
  EXPECT_THAT(
      internal::ShamirSplitWithCoefficients(secret, 2, 4, std::vector<Row>{{kP, 0, 0, 0, 0}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("field")));

  ASSERT_OK_AND_ASSIGN(std::vector<ShamirShare> shares, ShamirSplit(secret, 3, 5));
  EXPECT_THAT(ShamirCombine(Pick(shares, {0, 1}), 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("need 3")));
  EXPECT_THAT(ShamirCombine(shares, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ShamirCombine(Pick(shares, {0, 1, 1}), 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("same x = 2")));
  std::vector<ShamirShare> zero_x = Pick(shares, {0, 1, 2});
  zero_x[2].x = 0;
  EXPECT_THAT(ShamirCombine(zero_x, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x = 0")));
  std::vector<ShamirShare> out_of_field = Pick(shares, {0, 1, 2});
  out_of_field[1].y[3] = kP;
  EXPECT_THAT(ShamirCombine(out_of_field, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("field")));
  // Extra shares after the first t are ignored, even broken ones.
  std::vector<ShamirShare> extra = Pick(shares, {4, 2, 0, 1});
  extra[3].x = 0;
  ASSERT_OK_AND_ASSIGN(SecretBytes rebuilt, ShamirCombine(extra, 3));
  EXPECT_TRUE(rebuilt.Equals(secret));
}

}  // namespace
}  // namespace tessera::crypto
