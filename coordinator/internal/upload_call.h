// One Federation.PushResultChunked call on the coordinator (grpc_services.cc): a site's
// serialized answer, larger than one message, arriving in chunks.
//
// The call waits for a place at the upload gate (upload_gate.h) before it reads anything,
// so that its bytes stay at the site meanwhile; when admitted it sends the call's initial
// metadata, which a site told so at Hello (HelloResponse.uploads_wait_for_admission) waits
// for before it writes its first chunk (an older site's first chunks wait meanwhile in the
// stream's flow control window, 256 KiB); then it assembles the answer chunk by
// chunk, parses it on a worker and hands it on as PushResult would. Refused, naming what is
// wrong, with INVALID_ARGUMENT: an announced size of 0 or above both max_message_bytes and
// the largest answer the site's open work expects (a masked input, whatever the cap),
// chunks past the announced size, a
// stream that ends short, bytes that do not parse; with DEADLINE_EXCEEDED: an upload read
// for longer than the gate allows (a stalled or trickling site). Nothing is logged with
// the answer's contents.
//
// A site that declares its upload's size (proto::kDeclaredUploadBytesMetadata) may be read
// alongside more uploads of other sites (upload_gate.h); its first chunk must then announce
// exactly that size.
//
// Thread-safe as gRPC reactors are: gRPC runs one of a call's reactions at a time; what the
// gate's callbacks, gRPC and the worker share is guarded.
#ifndef TESSERA_COORDINATOR_INTERNAL_UPLOAD_CALL_H_
#define TESSERA_COORDINATOR_INTERNAL_UPLOAD_CALL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/worker_pool.h"
#include "coordinator/limits.h"
#include "coordinator/upload_gate.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/string_ref.h"
#include "proto/federation.pb.h"

namespace tessera::coordinator::internal {

// What every upload call of a service shares; must outlive every call.
struct Uploads {
  UploadGate* gate;
  common::WorkerPool* workers;
  // The largest upload announced that is read: the message cap, or more when the site's
  // open work expects a larger answer (largest_answer, a masked input: Coordinator::
  // LargestAnswer), up to crypto::kMaxMessageBytes.
  uint64_t max_bytes;
  std::function<uint64_t(const std::string& site)> largest_answer;
  // Hands a whole answer to the coordinator (on a worker); its status is the call's.
  std::function<absl::Status(const std::string& site, const v1::PushResultRequest& request)> push;
};

// The size a site declared for its upload in the call's metadata
// (proto::kDeclaredUploadBytesMetadata, decimal), or 0 if it declared none (the upload then
// takes only the gate's counted places). INVALID_ARGUMENT naming the metadata if it is not
// a size of at least 1 byte.
absl::StatusOr<uint64_t> DeclaredUploadBytes(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// The assembled answer's bytes as the PushResultRequest they serialise, as
// ParseFromString would read them. A masked input's words (the answer's bulk: 4 MB at
// d = 10^6) are not copied: they are moved out of `bytes`, whose buffer becomes the
// message's field. INVALID_ARGUMENT if the bytes do not parse.
absl::StatusOr<v1::PushResultRequest> ParseUploadedAnswer(std::string bytes);

// A reactor for one upload from `site`; it holds `slot` (the site's push in progress) until
// it finishes. gRPC owns it (deleted in OnDone). With `declared_bytes` (0: none), the
// upload may be read within the gate's declared budget, and is refused with
// INVALID_ARGUMENT if it announces another size.
grpc::ServerReadReactor<v1::PushResultChunk>* StartUpload(const Uploads* uploads, std::string site,
                                                          CallLimiter::PullSlot slot,
                                                          uint64_t declared_bytes = 0);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_UPLOAD_CALL_H_
