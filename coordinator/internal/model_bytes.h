// A model's parameters as serialized v1::ModelParameters, the one way the coordinator
// writes them: nothing for no parameters, otherwise the packed field's tag, its length as
// a shortest varint and the floats' little-endian words, which is also what protobuf
// writes (ModelParameters{values}.SerializeAsString()). The sites are sent these bytes
// (setup_bytes.h) and the store keeps checkpoints and next models as them
// (store_records.h); HashModel (crypto/hash.h) is the SHA-256 of the words. Pure functions
// and a view; no I/O.
#ifndef TESSERA_COORDINATOR_INTERNAL_MODEL_BYTES_H_
#define TESSERA_COORDINATOR_INTERNAL_MODEL_BYTES_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::coordinator::internal {

// `values` as pieces to be written one after the other (rocksdb::SliceParts): the header
// owned here, the floats' bytes viewed where they are, never copied (on this machine, a
// little-endian one, the floats' bytes are their wire bytes). Views `values`, which must
// outlive it; not movable (its pieces view its own header).
class ModelPieces {
 public:
  explicit ModelPieces(std::span<const float> values);
  ModelPieces(const ModelPieces&) = delete;
  ModelPieces& operator=(const ModelPieces&) = delete;

  const std::vector<std::string_view>& pieces() const { return pieces_; }
  size_t size() const;

 private:
  std::string header_;
  std::vector<std::string_view> pieces_;
};

// `values` serialized, in one buffer (its pieces joined): no RepeatedField copy.
std::shared_ptr<const std::string> SerializedModel(std::span<const float> values);

// The words of `bytes` if they are written as above (an empty view for no parameters);
// nullopt for any other encoding of a message, which protobuf may still parse.
std::optional<std::string_view> PackedModelWords(std::string_view bytes);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_MODEL_BYTES_H_
