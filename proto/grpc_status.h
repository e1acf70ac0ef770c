// The one place where gRPC and absl statuses convert. Codes map one to one.
#ifndef TESSERA_PROTO_GRPC_STATUS_H_
#define TESSERA_PROTO_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace tessera::proto {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_GRPC_STATUS_H_
