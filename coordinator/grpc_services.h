// The coordinator's gRPC services over Coordinator: identity and role come from the
// verified TLS peer certificate (crypto::PeerIdentity), never from a message field.
//   Federation: institution certificates only (others get PERMISSION_DENIED).
//   Admin:      operator certificates only (others get PERMISSION_DENIED).
// Per-site call limits (limits.h): PullWork calls waiting and PushResult calls in progress
// at once, Hello calls per minute. Large answers come as PushResultChunked, of which two are
// read at a time, one per site, each for a bounded time (upload_gate.h,
// internal/upload_call.h); the others wait unread in their streams' flow control.
// Every handler turns errors into gRPC statuses; nothing a client sends can crash the
// coordinator.
//
// Threads: Federation uses gRPC's callback API and holds no thread per call. A waiting
// PullWork is a ticket on the work board (WorkBoard::PullAsync). Identity checks and the
// per-site limits run on gRPC's callback threads, so a refused call is answered at once
// there; the rest (store writes, the secure-aggregation state machines, serializing a
// site's own part of a response) runs on the service's fixed worker pool (twice the cores, 4 to 16
// threads, named tessera-rpc), never on gRPC's few callback threads. Admin is a synchronous
// service (gRPC's thread pool, bounded by ServerLimits::max_threads).
#ifndef TESSERA_COORDINATOR_GRPC_SERVICES_H_
#define TESSERA_COORDINATOR_GRPC_SERVICES_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "coordinator/limits.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace tessera::coordinator {

class Coordinator;

// `coordinator` must outlive the services. `long_poll_seconds`: longest a PullWork is held.
// `limits`: the per-site limits (limits.h) on waiting PullWork calls, PushResult calls in
// progress and the Hello rate;
// a call past them is refused at once with RESOURCE_EXHAUSTED naming the site and the limit.
std::unique_ptr<grpc::Service> MakeFederationService(Coordinator* coordinator,
                                                     uint32_t long_poll_seconds,
                                                     const ServerLimits& limits = {});
std::unique_ptr<grpc::Service> MakeAdminService(Coordinator* coordinator);

// The methods implemented raw: their handler's request and response are grpc::ByteBuffer,
// not protobuf messages (an interceptor must not take them for messages). PullWork is one:
// its response is built from the step's shared bytes (work_wire.h).
bool IsRawMethod(std::string_view method);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_GRPC_SERVICES_H_
