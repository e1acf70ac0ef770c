// How a work item's model travels when it is large (proto/federation.proto: WorkItem.model_size,
// Federation.PullModelChunk): both the coordinator, which decides, and the site, which fetches,
// use these sizes.
#ifndef TESSERA_PROTO_TRANSFER_H_
#define TESSERA_PROTO_TRANSFER_H_

#include <cstddef>

namespace tessera::proto {

// A model whose serialized ModelParameters exceed this travels apart from its work item, in
// chunks of at most this size (a model of about 262,000 parameters or more).
inline constexpr size_t kModelChunkBytes = size_t{1} << 20;

// The largest serialized ModelParameters of `num_parameters` float32 values: the packed
// field's tag, its length (a varint of at most 10 bytes) and 4 bytes per value.
constexpr size_t MaxSerializedModelBytes(size_t num_parameters) {
  return 1 + 10 + 4 * num_parameters;
}

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_TRANSFER_H_
