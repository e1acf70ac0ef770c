// A coordinator under the attacker's control, hosted by the end-to-end test itself, for real
// site daemons to connect to. It serves the real Federation wire service (Hello, PullWork,
// PushResult, FetchCertificates) on 127.0.0.1 over gRPC with the coordinator's TLS identity —
// TLS 1.3, client certificates required and verified against the federation CA, the caller's
// identity read from its certificate — over the coordinator library's own WorkBoard and
// ClientRegistry, and runs secure-aggregation sessions with the real session driver
// (coordinator::SecureStageRunner). What it leaves out is the honest part: no task runner,
// no store of what it asked before, so the test chooses every session — cohort, attempt,
// stage, the first items — as a cheating operator could.
//
// Why not coordinator::MakeFederationService: that service is bound to a
// coordinator::Coordinator, whose work board is private and fed only by its task runners;
// nothing outside lets a test post its own work items. The handlers here do what that
// service's do (coordinator/grpc_services.cc with Coordinator::Hello/PullWork/PushResult:
// institution role required, Hello registers and redelivers, a pull waits on the board up
// to the long-poll time and 2 s short of the caller's deadline, an item handed to a call
// already cancelled goes back on the board, a push is routed to the session's sink).
//
// The gRPC handlers run on the server's threads; RunSession and Shutdown are for the test's
// one thread. Start it before the daemons that dial it; Shutdown (or destroy) it after
// stopping them.
#ifndef TESSERA_TESTS_E2E_CHEATING_COORDINATOR_H_
#define TESSERA_TESTS_E2E_CHEATING_COORDINATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/client_registry.h"
#include "coordinator/secure_stage.h"
#include "coordinator/store.h"
#include "coordinator/work_board.h"
#include "proto/config.pb.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace tessera::e2e {

class CheatingCoordinator {
 public:
  // Loads `tls` (a certificate with the coordinator role, its key and the CA) and listens
  // on 127.0.0.1 on a port the OS chooses. Errors name the TLS file or the address.
  static absl::StatusOr<std::unique_ptr<CheatingCoordinator>> Start(const v1::TlsFiles& tls,
                                                                    uint32_t long_poll_seconds = 5);
  // Shutdown().
  ~CheatingCoordinator();
  CheatingCoordinator(const CheatingCoordinator&) = delete;
  CheatingCoordinator& operator=(const CheatingCoordinator&) = delete;

  // "127.0.0.1:<port>": what the sites' configs name as coordinator_address.
  const std::string& address() const { return address_; }
  // The federation CA (PEM) the sessions check the sites' certificates against.
  const std::string& ca_cert_pem() const { return ca_cert_pem_; }

  // Runs one secure-aggregation session over the connected sites to its end (blocks).
  // `request.persist` may be left unset: this coordinator keeps nothing.
  coordinator::SecureStageResult RunSession(const coordinator::SecureStageRequest& request);

  // Cancels a session in progress, wakes every waiting pull and stops the server (a short
  // grace period for calls in flight). Idempotent.
  void Shutdown();

 private:
  CheatingCoordinator(std::string ca_cert_pem, std::unique_ptr<coordinator::Store> store,
                      uint32_t long_poll_seconds);

  const std::string ca_cert_pem_;
  const std::unique_ptr<coordinator::Store> store_;  // the registry's (in memory)
  coordinator::WorkBoard board_;
  coordinator::ClientRegistry registry_;
  coordinator::SecureStageRunner runner_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  bool shut_down_ = false;  // Shutdown's own guard; only the test thread calls it
};

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_CHEATING_COORDINATOR_H_
