// A work item on the wire: the PullWork response built from a posted item (work_board.h)
// without copying what every site's item of a step shares.
//
// The response is the client's own fields, serialized per call (a few hundred bytes to a
// few kilobytes: its secure-aggregation message), followed by the step's shared bytes (the
// set-up's spec, model and standardisation) as one reference-counted slice over the
// board's copy. Protobuf merges concatenated fields, so the client parses an ordinary
// PullWorkResponse. A step sent to n sites thus holds the model once, not n times.
//
// A model sent apart (PostedItem::model) goes the same way, a chunk at a time: the
// PullModelChunk response's data is a slice over the board's one copy.
//
// Thread-safe (pure functions; a slice keeps the shared bytes alive until gRPC has sent
// them).
#ifndef TESSERA_COORDINATOR_WORK_WIRE_H_
#define TESSERA_COORDINATOR_WORK_WIRE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "coordinator/work_board.h"
#include "grpcpp/support/byte_buffer.h"

namespace tessera::coordinator {

// The serialized v1::PullWorkResponse whose `work` is `item.Whole()` with `crl_pem` set;
// with the model as a delta (item.delta) instead when `request` accepts one and lists its
// base among its first proto::kMaxHeldModels held models.
grpc::ByteBuffer PullWorkResponseBytes(const PostedItem& item, std::string_view crl_pem,
                                       const v1::PullWorkRequest& request = {});

// A raw request's message, or INVALID_ARGUMENT (`method` named) if its bytes cannot be read
// or do not parse as `message`.
absl::Status ParseRequest(const grpc::ByteBuffer* request, const char* method,
                          google::protobuf::MessageLite* message);

// Whether `request` takes `item`'s model as its delta (see PullWorkResponseBytes).
bool TakesDelta(const PostedItem& item, const v1::PullWorkRequest& request);

// The serialized v1::PullModelChunkResponse for bytes [offset, offset + proto::
// kModelChunkBytes) of `model` (cut at its end), the data as a reference-counted slice over
// `model`, not a copy. `offset` must be below model->size().
grpc::ByteBuffer ModelChunkResponseBytes(const std::shared_ptr<const std::string>& model,
                                         uint64_t offset);

// The serialized empty v1::PullWorkResponse (no work yet): zero bytes, but a valid buffer,
// which an answered raw method must have.
grpc::ByteBuffer EmptyPullWorkResponse();

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_WORK_WIRE_H_
