// A daemon's metrics and health listener: a small HTTP server (http/server.h) on its own port,
// separate from the daemon's gRPC port, answering
//   GET /metrics  the registry in the Prometheus text format 0.0.4
//   GET /healthz  200 "ok" while the process serves HTTP at all (liveness)
//   GET /readyz   200 "ready" when the daemon says it is ready, else 503 with its reason
// and nothing else (404). Bound to loopback by default: the daemons' config validation
// refuses another address unless metrics_allow_remote is set (proto/validation.h). A
// loopback-bound listener also checks the Host header (127.0.0.1, localhost, [::1] with its
// port) against DNS rebinding.
//
// Thread-safe; Stop (or the destructor) ends serving. The registry and `readiness` must
// outlive the endpoint.
#ifndef TESSERA_METRICS_ENDPOINT_H_
#define TESSERA_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace tessera::http {
class Server;
}  // namespace tessera::http

namespace tessera::metrics {

struct EndpointOptions {
  // "host:port"; port 0 lets the OS choose.
  std::string listen = "127.0.0.1:0";
  // Written (atomically) with the bound "host:port" once serving. Optional.
  std::string ready_file;
  // "" when ready; otherwise why not (the body of /readyz's 503). Called per request.
  std::function<std::string()> readiness;
};

class Endpoint {
 public:
  // UNAVAILABLE (naming the address) if it cannot be bound, INVALID_ARGUMENT if malformed;
  // the ready file's errors name the file.
  static absl::StatusOr<std::unique_ptr<Endpoint>> Start(const Registry* registry,
                                                         const EndpointOptions& options);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // The bound "host:port".
  std::string address() const;
  void Stop();

 private:
  explicit Endpoint(std::unique_ptr<http::Server> server);
  std::unique_ptr<http::Server> server_;
};

// Registers tessera_build_info{program, version} (always 1) and process_start_time_seconds.
void RegisterProcessMetrics(Registry* registry, const std::string& program);

}  // namespace tessera::metrics

#endif  // TESSERA_METRICS_ENDPOINT_H_
