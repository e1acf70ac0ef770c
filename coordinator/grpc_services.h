// The coordinator's gRPC services over Coordinator: identity and role come from the
// verified TLS peer certificate (crypto::PeerIdentity), never from a message field.
//   Federation: institution certificates only (others get PERMISSION_DENIED).
//   Admin:      operator certificates only (others get PERMISSION_DENIED).
// Every handler turns errors into gRPC statuses; nothing a client sends can crash the
// coordinator.
#ifndef TESSERA_COORDINATOR_GRPC_SERVICES_H_
#define TESSERA_COORDINATOR_GRPC_SERVICES_H_

#include <cstdint>
#include <memory>

namespace grpc {
class Service;
}  // namespace grpc

namespace tessera::coordinator {

class Coordinator;

// `coordinator` must outlive the services. `long_poll_seconds`: longest a PullWork is held.
std::unique_ptr<grpc::Service> MakeFederationService(Coordinator* coordinator,
                                                     uint32_t long_poll_seconds);
std::unique_ptr<grpc::Service> MakeAdminService(Coordinator* coordinator);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_GRPC_SERVICES_H_
