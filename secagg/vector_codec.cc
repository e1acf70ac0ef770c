#include "secagg/vector_codec.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/mask_generator.h"
#include "crypto/quantizer.h"
#include "crypto/random.h"
#include "proto/secagg.pb.h"

namespace tessera::secagg {

using crypto::Dequantize;
using crypto::MaskGenerator;
using crypto::MaxBitsForParties;
using crypto::QuantizationSpec;
using crypto::Quantize;
using crypto::RandomBytes;
using crypto::SecretBytes;
namespace {

using Int128 = __int128;

constexpr uint32_t kMinBits = 2;
constexpr uint32_t kMaxBits = 31;
constexpr uint32_t kMaxLimbs = 4;
constexpr uint32_t kMaxFractionBits = 40;

QuantizationSpec SpecOf(const v1::SecAggSegment& segment) {
  QuantizationSpec spec;
  spec.bits = segment.bits();
  spec.bound = segment.bound();
  return spec;
}

size_t WordsPerValue(const v1::SecAggSegment& segment) {
  return segment.kind() == v1::SecAggSegment::WIDE ? segment.limbs() : 1;
}

// An integer-valued double with |value| < 2^126 as an exact 128-bit integer.
Int128 IntegralDoubleToInt128(double value) {
  int exponent = 0;
  const double mantissa = std::frexp(value, &exponent);  // value = mantissa * 2^exponent
  // mantissa * 2^53 is an integer with |.| < 2^53; value = that * 2^(exponent - 53).
  const int64_t digits = static_cast<int64_t>(std::ldexp(mantissa, 53));
  const int shift = exponent - 53;
  if (shift >= 0) return static_cast<Int128>(digits) * (static_cast<Int128>(1) << shift);
  // The value is an integer, so the bits shifted out are zero: the division is exact.
  return static_cast<Int128>(digits / (int64_t{1} << -shift));
}

absl::Status ValidateSegment(const v1::SecAggSegment& segment, size_t index) {
  const std::string where = absl::StrCat("encoding.segments[", index, "]");
  if (segment.kind() != v1::SecAggSegment::BOUNDED && segment.kind() != v1::SecAggSegment::WIDE) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".kind must be BOUNDED or WIDE"));
  }
  if (segment.length() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".length must be positive"));
  }
  if (segment.bits() < kMinBits || segment.bits() > kMaxBits) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".bits must be in ", kMinBits, "..",
                                                   kMaxBits, ", got ", segment.bits()));
  }
  if (segment.kind() == v1::SecAggSegment::BOUNDED) {
    if (!std::isfinite(segment.bound()) || segment.bound() <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".bound must be positive and finite for a BOUNDED segment"));
    }
  } else {
    if (segment.limbs() < 1 || segment.limbs() > kMaxLimbs) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".limbs must be in 1..", kMaxLimbs, ", got ", segment.limbs()));
    }
    if (segment.fraction_bits() > kMaxFractionBits) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".fraction_bits must be at most ",
                                                     kMaxFractionBits, ", got ",
                                                     segment.fraction_bits()));
    }
  }
  return absl::OkStatus();
}

// WIDE: the signed integer range is [-2^(limbs*bits - 1), 2^(limbs*bits - 1)). A value
// beyond it saturates to the nearest edge, a non-finite one encodes as 0: the codec never
// refuses a value, so nothing about a value can surface as an error.
void EncodeWide(std::span<const double> values, const v1::SecAggSegment& segment, uint32_t* out) {
  const uint32_t bits = segment.bits();
  const uint32_t limbs = segment.limbs();
  const int total_bits = static_cast<int>(bits * limbs);
  const double limit = std::ldexp(1.0, total_bits - 1);
  const Int128 largest = (static_cast<Int128>(1) << (total_bits - 1)) - 1;
  const Int128 smallest = -(static_cast<Int128>(1) << (total_bits - 1));
  const uint32_t low_mask = (uint32_t{1} << bits) - 1;
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    Int128 q = 0;
    if (std::isfinite(v)) {
      // Scaling by a power of two is exact unless it overflows to infinity, which
      // saturates like any other value out of range.
      const double scaled = std::round(std::ldexp(v, static_cast<int>(segment.fraction_bits())));
      if (scaled >= limit) {
        q = largest;
      } else if (scaled < -limit) {
        q = smallest;
      } else {
        q = IntegralDoubleToInt128(scaled);
      }
    }
    uint32_t* word = out + i * limbs;
    for (uint32_t j = 0; j + 1 < limbs; ++j) {
      word[j] = static_cast<uint32_t>(q >> (j * bits)) & low_mask;
    }
    // The top limb keeps the sign: q >> ((limbs - 1) * bits), in [-2^(bits-1), 2^(bits-1)).
    word[limbs - 1] = static_cast<uint32_t>(static_cast<int32_t>(q >> ((limbs - 1) * bits)));
  }
}

void DecodeWide(std::span<const uint32_t> words, const v1::SecAggSegment& segment, double* out) {
  const uint32_t bits = segment.bits();
  const uint32_t limbs = segment.limbs();
  for (size_t i = 0; i < segment.length(); ++i) {
    const uint32_t* word = words.data() + i * limbs;
    // Low limb sums are below n * 2^bits <= 2^32: unsigned. The top one is signed.
    Int128 total = static_cast<Int128>(static_cast<int32_t>(word[limbs - 1]));
    for (int j = static_cast<int>(limbs) - 2; j >= 0; --j) {
      total = total * (static_cast<Int128>(1) << bits) + static_cast<Int128>(word[j]);
    }
    const long double real = static_cast<long double>(total);
    out[i] = static_cast<double>(std::ldexp(real, -static_cast<int>(segment.fraction_bits())));
  }
}

}  // namespace

absl::Status ValidateEncoding(const v1::SecAggEncoding& encoding, uint32_t num_parties) {
  if (encoding.segments_size() == 0) {
    return absl::InvalidArgumentError("encoding.segments must not be empty");
  }
  const uint32_t max_bits = MaxBitsForParties(num_parties);
  size_t words = 0;
  for (int i = 0; i < encoding.segments_size(); ++i) {
    const v1::SecAggSegment& segment = encoding.segments(i);
    RETURN_IF_ERROR(ValidateSegment(segment, i));
    if (segment.bits() > max_bits) {
      return absl::FailedPreconditionError(absl::StrCat(
          "encoding.segments[", i, "].bits = ", segment.bits(), " could overflow a sum over ",
          num_parties, " parties (at most ", max_bits, ")"));
    }
    words += static_cast<size_t>(segment.length()) * WordsPerValue(segment);
    if (words > UINT32_MAX) {
      return absl::InvalidArgumentError("encoding holds more than 2^32 - 1 words");
    }
  }
  return absl::OkStatus();
}

size_t EncodedValues(const v1::SecAggEncoding& encoding) {
  size_t values = 0;
  for (const v1::SecAggSegment& segment : encoding.segments()) values += segment.length();
  return values;
}

size_t EncodedWords(const v1::SecAggEncoding& encoding) {
  size_t words = 0;
  for (const v1::SecAggSegment& segment : encoding.segments()) {
    words += static_cast<size_t>(segment.length()) * WordsPerValue(segment);
  }
  return words;
}

absl::StatusOr<std::vector<uint32_t>> EncodeVector(std::span<const double> values,
                                                   const v1::SecAggEncoding& encoding,
                                                   const SecretBytes* rounding_key) {
  for (int i = 0; i < encoding.segments_size(); ++i) {
    RETURN_IF_ERROR(ValidateSegment(encoding.segments(i), i));
  }
  if (values.size() != EncodedValues(encoding)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected ", EncodedValues(encoding), " values for the encoding, got ", values.size()));
  }
  std::vector<uint32_t> words(EncodedWords(encoding));
  size_t value_at = 0;
  size_t word_at = 0;
  for (const v1::SecAggSegment& segment : encoding.segments()) {
    const std::span<const double> part = values.subspan(value_at, segment.length());
    if (segment.kind() == v1::SecAggSegment::BOUNDED) {
      // One uniform word per value for the stochastic rounding: an AES-CTR stream, under
      // the caller's key (keystream word = value index) or a fresh random one.
      std::vector<uint32_t> random(part.size());
      if (rounding_key != nullptr) {
        ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(*rounding_key));
        generator.Generate(value_at, random);
      } else {
        ASSIGN_OR_RETURN(SecretBytes key, RandomBytes(MaskGenerator::kKeyBytes));
        ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(key));
        generator.Generate(0, random);
      }
      Quantize(part, SpecOf(segment), random,
               std::span<uint32_t>(words.data() + word_at, part.size()));
    } else {
      EncodeWide(part, segment, words.data() + word_at);
    }
    value_at += segment.length();
    word_at += static_cast<size_t>(segment.length()) * WordsPerValue(segment);
  }
  return words;
}

absl::StatusOr<std::vector<double>> DecodeSum(std::span<const uint32_t> words,
                                              const v1::SecAggEncoding& encoding) {
  for (int i = 0; i < encoding.segments_size(); ++i) {
    RETURN_IF_ERROR(ValidateSegment(encoding.segments(i), i));
  }
  if (words.size() != EncodedWords(encoding)) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", EncodedWords(encoding),
                                                   " words for the encoding, got ", words.size()));
  }
  std::vector<double> values(EncodedValues(encoding));
  size_t value_at = 0;
  size_t word_at = 0;
  for (const v1::SecAggSegment& segment : encoding.segments()) {
    const size_t segment_words = static_cast<size_t>(segment.length()) * WordsPerValue(segment);
    const std::span<const uint32_t> part = words.subspan(word_at, segment_words);
    if (segment.kind() == v1::SecAggSegment::BOUNDED) {
      Dequantize(part, SpecOf(segment), std::span<double>(values.data() + value_at, part.size()));
    } else {
      DecodeWide(part, segment, values.data() + value_at);
    }
    value_at += segment.length();
    word_at += segment_words;
  }
  return values;
}

}  // namespace tessera::secagg
