// Fetching a work item's model that travels apart from it (WorkItem.model_size > 0: a model
// above proto::kModelChunkBytes serialized, Federation.PullModelChunk): chunk by chunk from
// offset 0, every reply checked against what the item announced, then parsed into the item,
// whose model_hash the work processor checks next as it would an inline model's.
//
// A site never takes more than its task's model can be: the announced size must be at most
// proto::MaxSerializedModelBytes of the spec's parameter count, so a coordinator cannot make
// a site download (or hold) more than that.
//
// Thread-compatible: a pure function of its arguments.
#ifndef TESSERA_CLIENT_MODEL_DOWNLOAD_H_
#define TESSERA_CLIENT_MODEL_DOWNLOAD_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/federation.pb.h"

namespace tessera::client {

// One PullModelChunk call for bytes from `offset`; its error is the transport's.
using FetchModelChunk = std::function<absl::StatusOr<v1::PullModelChunkResponse>(uint64_t offset)>;

// Puts the model `item` announces (model_size > 0, no inline model) into item->model and
// clears model_size. A `fetch` error is returned as is (nothing is changed: the daemon
// reconnects and is handed the item again). DATA_LOSS, naming what is wrong and changing
// nothing, when the coordinator's side does not add up: an announced size larger than the
// spec's model can take (or a spec whose model has no size), a reply whose total is not the
// announced size, an empty chunk or one past the end, bytes that do not parse as a model.
// FAILED_PRECONDITION if the item announces no model apart or also carries one inline.
absl::Status FetchModel(v1::WorkItem* item, const FetchModelChunk& fetch);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_MODEL_DOWNLOAD_H_
