#include "coordinator/internal/call_identity.h"

#include <algorithm>
#include <memory>
#include <string>

#include "common/log.h"
#include "coordinator/coordinator.h"
#include "grpcpp/grpcpp.h"

namespace tessera::coordinator::internal {
namespace {

// The metadata key of a site daemon's instance id (access_control.h).
constexpr char kInstanceKey[] = "tessera-instance";

}  // namespace

std::string InstanceOf(const grpc::ServerContextBase& context) {
  auto it = context.client_metadata().find(kInstanceKey);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), std::min<size_t>(it->second.size(), 64));
}

absl::StatusOr<crypto::CertificateInfo> Caller(Coordinator* coordinator,
                                               grpc::ServerContextBase* context,
                                               crypto::Role role) {
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("no TLS peer");
  auto identity = crypto::PeerIdentity(*auth);
  if (!identity.ok()) return identity.status();
  absl::Status allowed = crypto::RequireRole(*identity, role);
  if (!allowed.ok()) {
    common::LogWarning("call_refused")
        .With("peer", identity->node_id)
        .With("role", crypto::RoleName(identity->role))
        .With("needed", crypto::RoleName(role));
    return allowed;
  }
  absl::Status admitted = coordinator->Admit(*identity, InstanceOf(*context), context->peer());
  if (!admitted.ok()) {
    common::LogWarning("call_refused")
        .With("peer", identity->node_id)
        .With("serial", identity->serial_hex)
        .With("error", std::string(admitted.message()));
    return admitted;
  }
  return identity;
}

}  // namespace tessera::coordinator::internal
