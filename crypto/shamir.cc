#include "crypto/shamir.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/internal/check.h"
#include "crypto/internal/shamir_field.h"
#include "crypto/random.h"

namespace tessera::crypto {
namespace {

// INVALID_ARGUMENT unless 1 <= threshold <= points.size() and the points are distinct and
// in 1..65535.
absl::Status CheckPoints(int threshold, std::span<const uint32_t> points) {
  if (threshold < 1 || static_cast<size_t>(threshold) > points.size() || points.size() > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("Shamir sharing needs 1 <= threshold <= points <= 65535, got threshold ",
                     threshold, " and ", points.size(), " points"));
  }
  std::vector<uint32_t> sorted(points.begin(), points.end());
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] < 1 || sorted[i] > 65535 || (i > 0 && sorted[i] == sorted[i - 1])) {
      return absl::InvalidArgumentError("Shamir points must be distinct and in 1..65535");
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace internal {

uint64_t GfAdd(uint64_t a, uint64_t b) {
  const uint64_t sum = a + b;  // < 2p < 2^62
  return sum >= kShamirPrime ? sum - kShamirPrime : sum;
}

uint64_t GfSub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kShamirPrime - b; }

uint64_t GfMul(uint64_t a, uint64_t b) {
  // 2^61 = 1 (mod p): fold the high bits of the 122-bit product onto the low 61.
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  const uint64_t low = static_cast<uint64_t>(product) & kShamirPrime;
  const uint64_t high = static_cast<uint64_t>(product >> 61);
  return GfAdd(low, high);  // both <= p, and their sum < 2p since a, b < p
}

uint64_t GfInverse(uint64_t a) {
  uint64_t result = 1;
  uint64_t base = a;
  for (uint64_t e = kShamirPrime - 2; e != 0; e >>= 1) {
    if (e & 1) result = GfMul(result, base);
    base = GfMul(base, base);
  }
  return result;
}

std::array<uint64_t, kShamirPieces> SecretToPieces(const SecretBytes& secret) {
  TESSERA_CRYPTO_CHECK(secret.size() == kShamirSecretBytes);
  std::array<uint64_t, kShamirPieces> pieces{};
  for (size_t i = 0; i < kShamirSecretBytes; ++i) {
    pieces[i / 7] |= uint64_t{secret.data()[i]} << (8 * (i % 7));
  }
  return pieces;
}

SecretBytes PiecesToSecret(const std::array<uint64_t, kShamirPieces>& pieces) {
  std::string bytes(kShamirSecretBytes, '\0');
  for (size_t i = 0; i < kShamirSecretBytes; ++i) {
    bytes[i] = static_cast<char>(pieces[i / 7] >> (8 * (i % 7)));
  }
  return SecretBytes(std::move(bytes));
}

absl::StatusOr<std::vector<ShamirShare>> ShamirSplitWithCoefficients(
    const SecretBytes& secret, int threshold, int num_shares,
    std::span<const std::array<uint64_t, kShamirPieces>> higher) {
  if (threshold < 1 || threshold > num_shares || num_shares > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("Shamir sharing needs 1 <= threshold <= num_shares <= 65535, got threshold ",
                     threshold, " and num_shares ", num_shares));
  }
  std::vector<uint32_t> points(static_cast<size_t>(num_shares));
  for (size_t i = 0; i < points.size(); ++i) points[i] = static_cast<uint32_t>(i + 1);
  return ShamirSplitAtWithCoefficients(secret, threshold, points, higher);
}

absl::StatusOr<std::vector<ShamirShare>> ShamirSplitAtWithCoefficients(
    const SecretBytes& secret, int threshold, std::span<const uint32_t> points,
    std::span<const std::array<uint64_t, kShamirPieces>> higher) {
  if (secret.size() != kShamirSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a Shamir secret must be ", kShamirSecretBytes,
                                                   " bytes, got ", secret.size()));
  }
  if (absl::Status valid = CheckPoints(threshold, points); !valid.ok()) return valid;
  if (higher.size() != static_cast<size_t>(threshold - 1)) {
    return absl::InvalidArgumentError(absl::StrCat("threshold ", threshold, " needs ",
                                                   threshold - 1, " coefficients per piece, got ",
                                                   higher.size()));
  }
  for (const auto& row : higher) {
    for (uint64_t c : row) {
      if (c >= kShamirPrime) return absl::InvalidArgumentError("coefficient out of the field");
    }
  }
  std::array<uint64_t, kShamirPieces> pieces = SecretToPieces(secret);
  std::vector<ShamirShare> shares(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    ShamirShare& share = shares[i];
    share.x = points[i];
    for (size_t j = 0; j < kShamirPieces; ++j) {
      // Horner: f(x) = (...(a_{t-1} x + a_{t-2}) x + ...) x + a_0.
      uint64_t y = 0;
      for (size_t k = higher.size(); k > 0; --k) y = GfAdd(GfMul(y, share.x), higher[k - 1][j]);
      share.y[j] = GfAdd(GfMul(y, share.x), pieces[j]);
    }
  }
  OPENSSL_cleanse(pieces.data(), sizeof(pieces));
  return shares;
}

}  // namespace internal

namespace {

using internal::GfAdd;
using internal::GfInverse;
using internal::GfMul;
using internal::GfSub;

void Wipe(std::vector<std::array<uint64_t, kShamirPieces>>& rows) {
  if (!rows.empty()) OPENSSL_cleanse(rows.data(), rows.size() * sizeof(rows[0]));
}

// `count` rows of uniform field elements: 61 random bits each, rejecting the one value
// (p itself) outside the field, so there is no bias.
absl::StatusOr<std::vector<std::array<uint64_t, kShamirPieces>>> RandomCoefficients(size_t count) {
  std::vector<std::array<uint64_t, kShamirPieces>> out(count);
  if (count == 0) return out;
  ASSIGN_OR_RETURN(SecretBytes bytes, RandomBytes(count * kShamirPieces * sizeof(uint64_t)));
  const uint8_t* next = bytes.data();
  for (auto& row : out) {
    for (uint64_t& c : row) {
      c = 0;
      for (size_t b = 0; b < 8; ++b) c |= uint64_t{next[b]} << (8 * b);
      next += 8;
      c &= kShamirPrime;
      while (c == kShamirPrime) {  // probability 2^-61
        absl::StatusOr<uint64_t> r = RandomUint64();
        if (!r.ok()) {
          Wipe(out);
          return r.status();
        }
        c = *r & kShamirPrime;
      }
    }
  }
  return out;
}

}  // namespace

ShamirShare::~ShamirShare() {
  OPENSSL_cleanse(y.data(), sizeof(y));
  x = 0;
}

SecretBytes ShamirShare::Serialize() const {
  std::string bytes(kShamirShareBytes, '\0');
  for (size_t b = 0; b < 4; ++b) bytes[b] = static_cast<char>(x >> (8 * b));
  for (size_t j = 0; j < kShamirPieces; ++j) {
    for (size_t b = 0; b < 8; ++b) bytes[4 + 8 * j + b] = static_cast<char>(y[j] >> (8 * b));
  }
  return SecretBytes(std::move(bytes));
}

absl::StatusOr<ShamirShare> ShamirShare::Parse(std::string_view bytes) {
  if (bytes.size() != kShamirShareBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a Shamir share must be ", kShamirShareBytes, " bytes, got ", bytes.size()));
  }
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  ShamirShare share;
  for (size_t b = 0; b < 4; ++b) share.x |= uint32_t{data[b]} << (8 * b);
  if (share.x == 0) return absl::InvalidArgumentError("a Shamir share has x = 0");
  for (size_t j = 0; j < kShamirPieces; ++j) {
    for (size_t b = 0; b < 8; ++b) share.y[j] |= uint64_t{data[4 + 8 * j + b]} << (8 * b);
    // The value itself stays out of the message: it is secret material.
    if (share.y[j] >= kShamirPrime) {
      return absl::InvalidArgumentError(
          absl::StrCat("Shamir share x = ", share.x, " has a value out of the field"));
    }
  }
  return share;
}

absl::StatusOr<std::vector<ShamirShare>> ShamirSplitAt(const SecretBytes& secret, int threshold,
                                                       std::span<const uint32_t> points) {
  // Validate before drawing randomness; the core checks the same again.
  if (secret.size() != kShamirSecretBytes || !CheckPoints(threshold, points).ok()) {
    return internal::ShamirSplitAtWithCoefficients(secret, threshold, points, {});
  }
  ASSIGN_OR_RETURN(auto coefficients, RandomCoefficients(static_cast<size_t>(threshold - 1)));
  auto shares = internal::ShamirSplitAtWithCoefficients(secret, threshold, points, coefficients);
  Wipe(coefficients);
  return shares;
}

absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(const SecretBytes& secret, int threshold,
                                                     int num_shares) {
  // Validate before drawing randomness; the core checks the same again.
  if (secret.size() != kShamirSecretBytes || threshold < 1 || threshold > num_shares ||
      num_shares > 65535) {
    return internal::ShamirSplitWithCoefficients(secret, threshold, num_shares, {});
  }
  ASSIGN_OR_RETURN(auto coefficients, RandomCoefficients(static_cast<size_t>(threshold - 1)));
  auto shares = internal::ShamirSplitWithCoefficients(secret, threshold, num_shares, coefficients);
  Wipe(coefficients);
  return shares;
}

absl::StatusOr<SecretBytes> ShamirCombine(std::span<const ShamirShare> shares, int threshold) {
  if (threshold < 1) {
    return absl::InvalidArgumentError(absl::StrCat("threshold must be >= 1, got ", threshold));
  }
  if (shares.size() < static_cast<size_t>(threshold)) {
    return absl::InvalidArgumentError(
        absl::StrCat("need ", threshold, " Shamir shares, got ", shares.size()));
  }
  const size_t t = static_cast<size_t>(threshold);
  const std::span<const ShamirShare> used = shares.first(t);
  for (size_t i = 0; i < t; ++i) {
    if (used[i].x == 0) return absl::InvalidArgumentError("a Shamir share has x = 0");
    for (uint64_t v : used[i].y) {
      if (v >= kShamirPrime) {
        return absl::InvalidArgumentError(
            absl::StrCat("Shamir share x = ", used[i].x, " has a value out of the field"));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (used[j].x == used[i].x) {
        return absl::InvalidArgumentError(
            absl::StrCat("two Shamir shares have the same x = ", used[i].x));
      }
    }
  }

  // Lagrange basis at 0: L_i = prod_{j != i} x_j / (x_j - x_i). The x are distinct and
  // below 2^32 < p, so no denominator is 0. All denominators are inverted at once
  // (Montgomery's trick: one field inversion instead of t).
  std::vector<uint64_t> numerators(t, 1);
  std::vector<uint64_t> denominators(t, 1);
  for (size_t i = 0; i < t; ++i) {
    for (size_t j = 0; j < t; ++j) {
      if (j == i) continue;
      numerators[i] = GfMul(numerators[i], used[j].x);
      denominators[i] = GfMul(denominators[i], GfSub(used[j].x, used[i].x));
    }
  }
  std::vector<uint64_t> prefix(t);  // prefix[i] = d_0 * ... * d_{i-1}
  uint64_t running = 1;
  for (size_t i = 0; i < t; ++i) {
    prefix[i] = running;
    running = GfMul(running, denominators[i]);
  }
  uint64_t inverse = GfInverse(running);  // 1 / (d_0 * ... * d_{t-1})
  std::array<uint64_t, kShamirPieces> pieces{};
  for (size_t i = t; i-- > 0;) {
    const uint64_t inv_d = GfMul(inverse, prefix[i]);  // 1 / d_i
    inverse = GfMul(inverse, denominators[i]);         // 1 / (d_0 * ... * d_{i-1})
    const uint64_t basis = GfMul(numerators[i], inv_d);
    for (size_t j = 0; j < kShamirPieces; ++j) {
      pieces[j] = GfAdd(pieces[j], GfMul(basis, used[i].y[j]));
    }
  }

  // Honest shares rebuild 7-byte pieces with the last three bytes of the 35 zero; anything
  // else means a share was corrupted (or came from a different secret).
  bool fits = pieces[kShamirPieces - 1] < (uint64_t{1} << 32);
  for (uint64_t piece : pieces) fits = fits && piece < (uint64_t{1} << 56);
  if (!fits) {
    OPENSSL_cleanse(pieces.data(), sizeof(pieces));
    return absl::FailedPreconditionError(
        "the Shamir shares do not rebuild a 32-byte secret (a share is corrupted or from a "
        "different secret)");
  }
  SecretBytes secret = internal::PiecesToSecret(pieces);
  OPENSSL_cleanse(pieces.data(), sizeof(pieces));
  return secret;
}

}  // namespace tessera::crypto
