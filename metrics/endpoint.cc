#include "metrics/endpoint.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/version.h"
#include "http/server.h"

namespace tessera::metrics {
namespace {

bool IsLoopback(const std::string& listen) {
  return absl::StartsWith(listen, "127.") || absl::StartsWith(listen, "localhost:") ||
         absl::StartsWith(listen, "[::1]:");
}

}  // namespace

Endpoint::Endpoint(std::unique_ptr<http::Server> server) : server_(std::move(server)) {}

Endpoint::~Endpoint() { Stop(); }

absl::StatusOr<std::unique_ptr<Endpoint>> Endpoint::Start(const Registry* registry,
                                                          const EndpointOptions& options) {
  http::Routes routes;
  routes.Get("/metrics", [registry](const http::Request&) {
    http::Response r;
    r.content_type = kContentType;
    r.body = registry->Render();
    return r;
  });
  routes.Get("/healthz", [](const http::Request&) {
    http::Response r;
    r.body = "ok\n";
    return r;
  });
  auto readiness = options.readiness;
  routes.Get("/readyz", [readiness](const http::Request&) {
    http::Response r;
    const std::string why = readiness ? readiness() : "";
    if (why.empty()) {
      r.body = "ready\n";
    } else {
      r.status = 503;
      r.body = why + "\n";
    }
    return r;
  });
  http::ServerOptions server_options;
  server_options.listen = options.listen;
  server_options.threads = 1;
  if (IsLoopback(options.listen)) server_options.allowed_hosts = http::LoopbackHosts();
  absl::StatusOr<std::unique_ptr<http::Server>> server =
      http::Server::Start(server_options, std::move(routes));
  if (!server.ok()) return server.status();
  auto endpoint = std::unique_ptr<Endpoint>(new Endpoint(*std::move(server)));
  if (!options.ready_file.empty()) {
    absl::Status written = common::WriteReadyFile(options.ready_file, endpoint->address() + "\n");
    if (!written.ok()) return written;
  }
  return endpoint;
}

std::string Endpoint::address() const { return server_->address(); }

void Endpoint::Stop() {
  if (server_ != nullptr) server_->Stop();
}

void RegisterProcessMetrics(Registry* registry, const std::string& program) {
  registry
      ->Gauge("tessera_build_info", "Always 1; the labels name the program and its version.",
              {"program", "version"})
      .With({program, std::string(common::Version())})
      .Set(1);
  registry->Gauge("process_start_time_seconds", "Start time of the process since the Unix epoch.")
      .With({})
      .Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

}  // namespace tessera::metrics
