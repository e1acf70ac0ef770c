// One Federation.PullModelChunk call on the coordinator (grpc_services.cc): a range of a
// work item's model that travels apart (coordinator/work_board.h, PostedItem::model).
//
// The call waits for a place at the download gate (an UploadGate: a bounded number of
// chunks in flight over all sites, one place per site, oldest first) before its chunk is
// handed to gRPC, and holds the place until gRPC is done sending it (OnDone), so that the
// coordinator's transport buffers hold a few chunks whatever the number of sites fetching
// at once. A chunk still unsent after the gate's timeout plus its size at the gate's
// minimum rate gives its place to the next request (logged: model_download_too_slow; the
// chunk itself still goes, as slowly as the site reads it), so that a slow or stalled site
// cannot keep the others waiting. The chunk's data is a slice over the board's one copy of the
// model (work_wire.h). Refused at once with INVALID_ARGUMENT for a request that does not parse,
// NOT_FOUND when the work is closed, not the caller's or carries no model apart,
// OUT_OF_RANGE for an offset at or past the model's end.
//
// Thread-safe as gRPC reactors are; what the gate's callbacks and gRPC share is guarded.
#ifndef TESSERA_COORDINATOR_INTERNAL_MODEL_DOWNLOAD_CALL_H_
#define TESSERA_COORDINATOR_INTERNAL_MODEL_DOWNLOAD_CALL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/upload_gate.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace tessera::coordinator::internal {

// What every download call of a service shares; must outlive every call.
struct Downloads {
  UploadGate* gate;
  // The model (or with `delta`, the model delta's data) `work_id` carries apart for `site`
  // (Coordinator::ModelFor).
  std::function<absl::StatusOr<std::shared_ptr<const std::string>>(
      const std::string& site, const std::string& work_id, bool delta)>
      model_for;
};

// What a PullModelChunk request from `site` asks for: the model and the offset, once the
// request's bytes parse (INVALID_ARGUMENT otherwise), the model is one `site` may fetch
// (model_for's error otherwise, NOT_FOUND) and the offset is inside it (OUT_OF_RANGE
// otherwise). Nothing is allocated on the request's word.
struct ChunkRequest {
  std::shared_ptr<const std::string> model;
  uint64_t offset = 0;
};
absl::StatusOr<ChunkRequest> CheckChunkRequest(const Downloads& downloads, const std::string& site,
                                               const grpc::ByteBuffer* request);

// A reactor for one PullModelChunk call from `site` (a serialized v1::PullModelChunkRequest
// in `request`; the reply goes to `response`). gRPC owns it.
grpc::ServerUnaryReactor* StartModelDownload(const Downloads* downloads,
                                             grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response, std::string site);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_MODEL_DOWNLOAD_CALL_H_
