// The daemon's local control socket: the SiteControl gRPC service (proto/site_control.proto)
// for the site's staff (`tessera-client tasks ...`), on a Unix socket only — never a
// network port.
//
// Security, in three layers:
//   1. the socket's directory must be mode 0700 and owned by the daemon's user (created so
//      when missing; FAILED_PRECONDITION naming it, with the chmod to fix it, otherwise);
//   2. the socket file is made mode 0600 before it listens;
//   3. every accepted connection's peer credentials (SO_PEERCRED: the uid of the process
//      that connected) are checked before gRPC sees a byte: only the daemon's own uid and
//      root are served; any other connection gets one line ("refused: ...") and is closed,
//      and the refusal is logged with the uid and pid.
// The server accepts connections itself and hands each admitted one to gRPC
// (grpc::AddInsecureChannelFromFd); gRPC opens no listening socket of its own. Decisions
// record the caller as "<user> (uid N)" from those same credentials.
//
// A stale socket file (no one listening) is replaced; one that answers is another daemon's:
// FAILED_PRECONDITION. The file is removed when the server stops.
#ifndef TESSERA_CLIENT_CONTROL_SERVER_H_
#define TESSERA_CLIENT_CONTROL_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "proto/site_control.pb.h"

namespace tessera::client {

class ApprovalQueue;

struct ControlHandlers {
  // The approval queue; must outlive the server.
  ApprovalQueue* approvals = nullptr;
  // The config in force (its datasets and current policy), for ShowTask.
  std::function<v1::ClientConfig()> config;
  // Reloads the policy (ReloadPolicy); its error goes back to the caller as is.
  std::function<absl::StatusOr<v1::ReloadPolicyResponse>()> reload;
};

class ControlServer {
 public:
  // Binds `socket_path` (above) and starts serving. FAILED_PRECONDITION for an unsafe
  // directory, a path in use or too long; INTERNAL for other socket errors; each naming the
  // path.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(const std::string& socket_path,
                                                              ControlHandlers handlers);
  // Stops accepting, ends the calls in flight, removes the socket file.
  ~ControlServer();

  class Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CONTROL_SERVER_H_
