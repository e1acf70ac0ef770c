#include "proto/model_delta.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

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
  z_stream z{};
  if (deflateInit(&z, kLevel) != Z_OK) return absl::InternalError("zlib deflateInit failed");
  // Byte k of every word, then byte k + 1: the XOR's high bytes (sign, exponent) are long
  // runs of zeros. One plane (a quarter of the model) at a time, compressed as it is made,
  // into output pieces joined once at the end: the encoder holds a plane and the delta, not
  // the four planes, a model-sized output buffer and a copy (10 MB at d = 10^6). The same
  // zlib stream as one compress2 call over the planes.
  constexpr size_t kPieceBytes = size_t{256} << 10;
  std::string plane(n, '\0');
  std::vector<std::string> pieces;
  size_t total = 0;
  int z_status = Z_OK;
  for (int k = 0; k < 4; ++k) {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t x = WordOf(base, i) ^ std::bit_cast<uint32_t>(next[i]);
      plane[i] = static_cast<char>((x >> (8 * k)) & 0xff);
    }
    z.next_in = reinterpret_cast<Bytef*>(plane.data());
    z.avail_in = static_cast<uInt>(n);
    const int flush = k == 3 ? Z_FINISH : Z_NO_FLUSH;
    do {
      if (pieces.empty() || z.avail_out == 0) {
        pieces.emplace_back(kPieceBytes, '\0');
        z.next_out = reinterpret_cast<Bytef*>(pieces.back().data());
        z.avail_out = static_cast<uInt>(kPieceBytes);
      }
      z_status = deflate(&z, flush);
      if (z_status != Z_OK && z_status != Z_STREAM_END && z_status != Z_BUF_ERROR) break;
    } while (z.avail_in > 0 || (flush == Z_FINISH && z_status != Z_STREAM_END));
    if (z_status != Z_OK && z_status != Z_STREAM_END && z_status != Z_BUF_ERROR) break;
  }
  total = z.total_out;
  deflateEnd(&z);
  if (z_status != Z_STREAM_END) {
    return absl::InternalError(absl::StrCat("zlib deflate failed (", z_status, ")"));
  }
  std::string out;
  out.reserve(total);
  for (const std::string& piece : pieces) {
    out.append(piece, 0, std::min(piece.size(), total - out.size()));
  }
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
