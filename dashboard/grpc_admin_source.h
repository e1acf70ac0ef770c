// The AdminSource over the admin service's gRPC stub (includes gRPC's headers: only the
// program that makes the connection includes this).
#ifndef TESSERA_DASHBOARD_GRPC_ADMIN_SOURCE_H_
#define TESSERA_DASHBOARD_GRPC_ADMIN_SOURCE_H_

#include <memory>

#include "dashboard/dashboard.h"
#include "proto/admin.grpc.pb.h"

namespace tessera::dashboard {

// Each call with a 10 s deadline; transport errors name the coordinator as unreachable.
// Thread-safe (gRPC stubs are).
std::unique_ptr<AdminSource> GrpcAdminSource(std::unique_ptr<v1::Admin::StubInterface> stub);

}  // namespace tessera::dashboard

#endif  // TESSERA_DASHBOARD_GRPC_ADMIN_SOURCE_H_
