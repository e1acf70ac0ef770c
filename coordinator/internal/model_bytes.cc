#include "coordinator/internal/model_bytes.h"

#include <bit>
#include <cstdint>

#include "coordinator/internal/wire_fields.h"
#include "proto/federation.pb.h"

namespace tessera::coordinator::internal {

ModelPieces::ModelPieces(std::span<const float> values) {
  static_assert(std::endian::native == std::endian::little,
                "the floats' bytes are their wire bytes only on a little-endian machine");
  if (values.empty()) return;  // an empty packed field is not written
  const std::string_view floats(reinterpret_cast<const char*>(values.data()),
                                sizeof(float) * values.size());
  AppendFieldHeader(v1::ModelParameters::kValuesFieldNumber, floats.size(), &header_);
  pieces_ = {header_, floats};
}

size_t ModelPieces::size() const {
  size_t total = 0;
  for (std::string_view piece : pieces_) total += piece.size();
  return total;
}

std::shared_ptr<const std::string> SerializedModel(std::span<const float> values) {
  const ModelPieces pieces(values);
  auto out = std::make_shared<std::string>();
  out->reserve(pieces.size());
  for (std::string_view piece : pieces.pieces()) out->append(piece);
  return out;
}

std::optional<std::string_view> PackedModelWords(std::string_view bytes) {
  if (bytes.empty()) return std::string_view();  // no parameters: no field
  constexpr auto kTag = static_cast<unsigned char>((v1::ModelParameters::kValuesFieldNumber << 3) |
                                                   2);  // length-delimited
  if (static_cast<unsigned char>(bytes[0]) != kTag) return std::nullopt;
  uint64_t length = 0;
  size_t at = 1;
  for (int shift = 0;; shift += 7) {
    if (at == bytes.size() || shift > 56) return std::nullopt;
    const auto byte = static_cast<unsigned char>(bytes[at++]);
    length |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) != 0) continue;
    if (byte == 0) return std::nullopt;  // a zero length, or not the shortest varint
    break;
  }
  if (length % 4 != 0 || length != bytes.size() - at) return std::nullopt;
  return bytes.substr(at);
}

}  // namespace tessera::coordinator::internal
