// A large answer sent in chunks: Federation.PushResultChunked (proto/federation.proto).
//
// The site serializes (and records in its egress ledger) a PushResultRequest once, as for
// any call; a large answer (a masked input: above kUploadChunkBytes, or above
// proto::kAdmittedUploadBytes to a coordinator that admits uploads) then leaves as those
// same bytes cut into PushResultChunk messages, one write in flight at a time. The
// coordinator reads a bounded number of uploads at once. One that admits uploads
// (HelloResponse.uploads_wait_for_admission) sends the call's initial metadata when its turn
// comes, and the site writes nothing before: waiting answers wait at their sites. An older
// coordinator leaves them waiting in their streams' flow control. Either way a cohort's
// masked inputs never sit in its memory together.
//
// Thread-compatible: one call per ClientContext.
#ifndef TESSERA_CLIENT_CHUNKED_UPLOAD_H_
#define TESSERA_CLIENT_CHUNKED_UPLOAD_H_

#include <cstddef>
#include <string>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "proto/transfer.h"

namespace tessera::client {

// Answers up to this size go as one PushResult; larger ones in chunks of this size.
inline constexpr size_t kUploadChunkBytes = proto::kUploadChunkBytes;

inline constexpr char kPushResultMethod[] = "/tessera.v1.Federation/PushResult";
inline constexpr char kPushResultChunkedMethod[] = "/tessera.v1.Federation/PushResultChunked";

// Sends `request_bytes` (a serialized PushResultRequest) as PushResultChunked on `ctx`
// (deadline and metadata set by the caller) and waits for the reply, which goes to
// `reply`. With `wait_for_admission`, the first chunk is written only once the
// coordinator's initial metadata has arrived (the call's deadline still bounds the wait).
// UNIMPLEMENTED from a coordinator that predates the method: the caller then sends the
// answer as one PushResult, on a new context.
grpc::Status CallChunked(grpc::GenericStub& stub, grpc::ClientContext* ctx,
                         const std::string& request_bytes, bool wait_for_admission,
                         grpc::ByteBuffer* reply);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CHUNKED_UPLOAD_H_
