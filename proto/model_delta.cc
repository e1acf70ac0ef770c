#include "proto/model_delta.h"

#include <zlib.h>

#include <bit>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tessera::proto {
namespace {

// Fast: the coordinator encodes a model once a round, on the round's path; the default
// level saves 2-4 % more at about three times the time (docs/performance.md).
constexpr int kLevel = Z_BEST_SPEED;

uint32_t WordOf(std::span<const float> v, size_t i) { return std::bit_cast<uint32_t>(v[i]); }

}  // namespace

absl::StatusOr<std::string> EncodeModelDelta(std::span<const float> base,
                                             std::span<const float> next) {
  if (base.size() != next.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a model delta needs models of one size: ", base.size(), " and ", next.size(), " values"));
  }
  const size_t n = next.size();
  // Byte k of every word, then byte k + 1: the XOR's high bytes (sign, exponent) are long
  // runs of zeros.
  std::string planes(4 * n, '\0');
  for (size_t i = 0; i < n; ++i) {
    const uint32_t x = WordOf(base, i) ^ std::bit_cast<uint32_t>(next[i]);
    planes[i] = static_cast<char>(x & 0xff);
    planes[n + i] = static_cast<char>((x >> 8) & 0xff);
    planes[2 * n + i] = static_cast<char>((x >> 16) & 0xff);
    planes[3 * n + i] = static_cast<char>(x >> 24);
  }
  uLongf size = compressBound(planes.size());
  std::string out(size, '\0');
  const int z = compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                          reinterpret_cast<const Bytef*>(planes.data()), planes.size(), kLevel);
  if (z != Z_OK) return absl::InternalError(absl::StrCat("zlib compress2 failed (", z, ")"));
  out.resize(size);
  out.shrink_to_fit();  // compressBound's room, a model's size, is not kept with the delta
  return out;
}

absl::StatusOr<std::vector<float>> DecodeModelDelta(std::span<const float> base,
                                                    std::string_view data) {
  const size_t n = base.size();
  std::string planes(4 * n, '\0');
  uLongf size = planes.size();
  uLong consumed = data.size();
  const int z = uncompress2(reinterpret_cast<Bytef*>(planes.data()), &size,
                            reinterpret_cast<const Bytef*>(data.data()), &consumed);
  if (z == Z_BUF_ERROR && size == planes.size() && n > 0) {
    return absl::DataLossError(
        absl::StrCat("model delta: inflates to more than the model's ", planes.size(), " bytes"));
  }
  if (z != Z_OK) {
    return absl::DataLossError(absl::StrCat(
        "model delta: ", data.size(), " bytes are not a whole zlib stream (",
        z == Z_DATA_ERROR ? "corrupt or cut short" : absl::StrCat("zlib error ", z), ")"));
  }
  if (size != planes.size()) {
    return absl::DataLossError(
        absl::StrCat("model delta: inflates to ", size, " bytes, the model takes ", planes.size()));
  }
  if (consumed != data.size()) {
    return absl::DataLossError(absl::StrCat("model delta: ", data.size() - consumed,
                                            " bytes after the end of its zlib stream"));
  }
  std::vector<float> model(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t x = static_cast<uint32_t>(static_cast<uint8_t>(planes[i])) |
                       static_cast<uint32_t>(static_cast<uint8_t>(planes[n + i])) << 8 |
                       static_cast<uint32_t>(static_cast<uint8_t>(planes[2 * n + i])) << 16 |
                       static_cast<uint32_t>(static_cast<uint8_t>(planes[3 * n + i])) << 24;
    model[i] = std::bit_cast<float>(WordOf(base, i) ^ x);
  }
  return model;
}

}  // namespace tessera::proto
