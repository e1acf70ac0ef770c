// A large answer sent in chunks: Federation.PushResultChunked (proto/federation.proto).
//
// The site serializes (and records in its egress ledger) a PushResultRequest once, as for
// any call; an answer larger than kUploadChunkBytes (a masked input) then leaves as those
// same bytes cut into PushResultChunk messages, one write in flight at a time. The
// coordinator reads a bounded number of uploads at once and leaves the others waiting in
// their streams' flow control, so a cohort's masked inputs never sit in its memory together.
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
// `reply`. UNIMPLEMENTED from a coordinator that predates the method: the caller then sends
// the answer as one PushResult, on a new context.
grpc::Status CallChunked(grpc::GenericStub& stub, grpc::ClientContext* ctx,
                         const std::string& request_bytes, grpc::ByteBuffer* reply);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CHUNKED_UPLOAD_H_
