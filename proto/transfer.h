// How large vectors travel (proto/federation.proto): a work item's model above one chunk goes
// apart (WorkItem.model_size, Federation.PullModelChunk), a site's answer above one chunk in
// chunks (Federation.PushResultChunked; above 64 KiB to a coordinator that admits uploads).
// Both ends use these sizes; no message needs to hold a whole model or masked input.
#ifndef TESSERA_PROTO_TRANSFER_H_
#define TESSERA_PROTO_TRANSFER_H_

#include <cstddef>

namespace tessera::proto {

// A model whose serialized ModelParameters exceed this travels apart from its work item, in
// chunks of at most this size (a model of about 262,000 parameters or more).
inline constexpr size_t kModelChunkBytes = size_t{1} << 20;

// The most model hashes a site lists in PullWorkRequest.held_model_hashes (and the most a
// coordinator reads).
inline constexpr size_t kMaxHeldModels = 8;

// A site's answer (a serialized PushResultRequest) above this size goes in chunks of it.
inline constexpr size_t kUploadChunkBytes = size_t{1} << 20;

// To a coordinator that admits uploads (HelloResponse.uploads_wait_for_admission), an answer
// above this size goes chunked too, so that it waits for its turn at the site rather than in
// the coordinator's memory: a masked input of 16,000 values or more. Smaller answers (a
// logistic regression's) go as one PushResult, without the admission's round trip.
inline constexpr size_t kAdmittedUploadBytes = size_t{64} << 10;

// The PushResultChunked call metadata in which a site declares its answer's size in bytes
// (decimal; what the first chunk then announces): the coordinator may read several small
// declared uploads at once (coordinator/upload_gate.h).
inline constexpr char kDeclaredUploadBytesMetadata[] = "tessera-upload-bytes";

// The most certificates one Federation.FetchCertificates call asks for (a larger list is
// fetched in several calls): about 0.8 MB of PEM in one reply.
inline constexpr size_t kMaxCertificatesPerFetch = 1024;

// The largest serialized ModelParameters of `num_parameters` float32 values: the packed
// field's tag, its length (a varint of at most 10 bytes) and 4 bytes per value.
constexpr size_t MaxSerializedModelBytes(size_t num_parameters) {
  return 1 + 10 + 4 * num_parameters;
}

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_TRANSFER_H_
