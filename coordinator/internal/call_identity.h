// Who is calling the coordinator's services: the verified TLS peer certificate's identity,
// admitted now (coordinator.h Admit: expiry, revocation, an operator's disable, the site
// daemon's instance binding). Shared by the federation and admin services.
//
// Thread-safe (a pure function over the call's context and the coordinator, which must
// outlive the call).
#ifndef TESSERA_COORDINATOR_INTERNAL_CALL_IDENTITY_H_
#define TESSERA_COORDINATOR_INTERNAL_CALL_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "crypto/tls.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace tessera::coordinator {

class Coordinator;

namespace internal {

// The site daemon's instance id the call names (metadata `tessera-instance`,
// access_control.h; at most 64 characters), or "".
std::string InstanceOf(const grpc::ServerContextBase& context);

// The caller's verified identity, if it has `role` and is admitted now: every call checks
// expiry, revocation, an operator's disable and the instance binding (Coordinator::Admit),
// so a live connection gets nothing once its certificate expires or is revoked.
// UNAUTHENTICATED without a TLS peer; PERMISSION_DENIED for another role; Admit's refusal
// otherwise. Refusals are logged (`call_refused`).
absl::StatusOr<crypto::CertificateInfo> Caller(Coordinator* coordinator,
                                               grpc::ServerContextBase* context, crypto::Role role);

}  // namespace internal
}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_INTERNAL_CALL_IDENTITY_H_
