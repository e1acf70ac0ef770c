#include "coordinator/server.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "common/signals.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "coordinator/limits.h"
#include "coordinator/monitoring.h"
#include "coordinator/store.h"
#include "coordinator/store_backup.h"
#include "crypto/grpc_log.h"
#include "crypto/signature.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/support/server_interceptor.h"
#include "metrics/endpoint.h"
#include "metrics/registry.h"
#include "proto/config.pb.h"

namespace tessera::coordinator {
namespace {

std::string HostOf(const std::string& address) {
  size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

// Where the daemon is in its life, for /readyz.
enum class Phase { kStarting, kReady, kStopping };

// The metrics and health listener when config.metrics_listen_address is set (null
// otherwise). /readyz: ready between the ready file and the stop.
absl::StatusOr<std::unique_ptr<metrics::Endpoint>> StartMetricsListener(
    const v1::CoordinatorConfig& config, const metrics::Registry* registry,
    const std::atomic<Phase>* phase) {
  if (config.metrics_listen_address().empty()) return nullptr;
  metrics::EndpointOptions options;
  options.listen = config.metrics_listen_address();
  options.ready_file = config.metrics_ready_file();
  options.readiness = [phase]() -> std::string {
    switch (phase->load()) {
      case Phase::kStarting:
        return "starting: resuming unfinished tasks";
      case Phase::kReady:
        return "";
      case Phase::kStopping:
        return "stopping";
    }
    return "unknown";
  };
  ASSIGN_OR_RETURN(std::unique_ptr<metrics::Endpoint> endpoint,
                   metrics::Endpoint::Start(registry, options));
  common::LogInfo("metrics_listening").With("address", endpoint->address());
  return endpoint;
}

// Re-reads the CRL file every crl_poll_seconds (and, with `hangups`, on SIGHUP, which also
// reopens the log file) until `done`; warns daily about the coordinator's own certificate
// when it expires within 30 days.
std::thread StartCrlWatch(const v1::CoordinatorConfig& config, Coordinator* coordinator,
                          const crypto::CertificateInfo& own, bool hangups,
                          absl::Notification* done) {
  return std::thread([&config, coordinator, own, hangups, done] {
    const absl::Duration period = absl::Seconds(std::max<uint32_t>(config.crl_poll_seconds(), 1));
    absl::Time next_poll = absl::Now() + period;
    absl::Time next_expiry_check = absl::Now();
    while (!done->HasBeenNotified()) {
      bool hangup = false;
      if (hangups) {
        hangup = common::WaitForHangup(absl::Milliseconds(100));
      } else {
        done->WaitForNotificationWithTimeout(absl::Milliseconds(100));
      }
      if (hangup) {
        common::NotifyReloading();
        if (absl::Status st = common::ReopenLogFile(); !st.ok()) {
          common::LogError("log_reopen_failed").With("error", std::string(st.message()));
        } else {
          common::LogInfo("log_reopened");
        }
        coordinator->RefreshCrl(/*force=*/true);
        common::NotifyReloaded();
      } else if (absl::Now() >= next_poll) {
        coordinator->RefreshCrl(/*force=*/false);
        next_poll = absl::Now() + period;
      }
      if (absl::Now() >= next_expiry_check) {
        if (own.not_after - absl::Now() < absl::Hours(24 * 30)) {
          common::LogWarning("own_certificate_expiring")
              .With("identity", own.node_id)
              .With("not_after",
                    absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", own.not_after, absl::UTCTimeZone()));
        }
        next_expiry_check = absl::Now() + absl::Hours(24);
      }
    }
  });
}

}  // namespace

absl::Status RunCoordinator(const v1::CoordinatorConfig& config, absl::Notification* stop,
                            StageObserver* observer, bool reload_on_hangup) {
  const common::Clock* clock = common::Clock::Real();
  ASSIGN_OR_RETURN(const ServerLimits limits, ResolveServerLimits(config));
  RETURN_IF_ERROR(crypto::RequireTls13ForProcess());
  ASSIGN_OR_RETURN(crypto::TlsMaterial tls,
                   crypto::LoadTlsMaterial(config.tls(), crypto::Role::kCoordinator, clock->Now()));
  RETURN_IF_ERROR(common::MakeDirectories(config.data_dir(), 0700));
  ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenRocksDbStore(config.data_dir()));
  // A backup interrupted by a crash leaves its checkpoint behind.
  RETURN_IF_ERROR(RemoveBackupStaging(config.data_dir()));

  // Metrics (coordinator/monitoring.h): declared before everything they observe, so they
  // outlive it.
  metrics::Registry registry;
  metrics::RegisterProcessMetrics(&registry, "tessera-coordinator");
  CoordinatorMetrics meters(&registry);
  std::atomic<Phase> phase{Phase::kStarting};
  crypto::SetHandshakeFailureHook([&meters] { meters.HandshakeFailed(); });
  struct Unhook {
    ~Unhook() { crypto::SetHandshakeFailureHook(nullptr); }
  } unhook;

  CoordinatorOptions options;
  options.ca_cert_pem = tls.ca_cert_pem;
  options.client_liveness = absl::Seconds(config.client_liveness_seconds());
  // Twice the long-poll: a healthy client re-polls at once when its long-poll returns.
  options.client_stale_after = absl::Seconds(2 * config.long_poll_seconds());
  options.runner.observer = meters.Observer(observer);
  // The key that signs model provenance records (ExportModel) is the TLS certificate's.
  ASSIGN_OR_RETURN(crypto::Signer signer, crypto::Signer::Create(tls.key_pem));
  options.signer = std::make_shared<const crypto::Signer>(std::move(signer));
  options.certificate_pem = tls.cert_pem;
  options.backup_staging_dir = BackupStagingDir(config.data_dir());
  options.crl_file = config.crl_file();
  // A site daemon always has a long-poll open except while it computes: its identity stays
  // bound to it this long after its last call (access_control.h).
  options.instance_liveness = std::min(options.client_stale_after, absl::Seconds(10));
  options.max_message_bytes = limits.max_message_bytes;
  ASSIGN_OR_RETURN(std::unique_ptr<Coordinator> coordinator,
                   Coordinator::Create(meters.WrapStore(std::move(store)), clock, options));
  meters.CollectFrom(coordinator.get(), options.client_liveness);

  std::unique_ptr<grpc::Service> federation =
      MakeFederationService(coordinator.get(), config.long_poll_seconds(), limits);
  std::unique_ptr<grpc::Service> admin = MakeAdminService(coordinator.get());

  // The standard health service (grpc.health.v1.Health) on the same port, behind the same
  // mutual TLS: SERVING once ready, NOT_SERVING while shutting down.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(meters.InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  int port = 0;
  // Revoked certificates and disabled sites are refused at the handshake already.
  Coordinator* admitting = coordinator.get();
  builder.AddListeningPort(
      config.listen_address(),
      crypto::MakeServerCredentials(
          tls,
          [admitting](const crypto::CertificateInfo& c) { return admitting->AdmitHandshake(c); }),
      &port);
  builder.RegisterService(federation.get());
  builder.RegisterService(admin.get());
  // Resource limits (limits.h): a message above the cap is refused with RESOURCE_EXHAUSTED;
  // gRPC's threads and buffers are bounded, whatever a caller sends.
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(limits.max_message_bytes));
  grpc::ResourceQuota quota("tessera-coordinator");
  quota.SetMaxThreads(limits.max_threads);
  quota.Resize(limits.memory_quota_bytes);
  builder.SetResourceQuota(quota);
  // Keep idle connections of long-polling clients healthy through NATs and firewalls.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Every stream may hold this much unread: a chunked upload waiting at the upload gate
  // (upload_gate.h) holds no more than that here, whatever the number of sites sending at
  // once. Without the bandwidth-delay probe, which would grow every stream's window to the
  // link's (on loopback: megabytes each). 256 KiB a stream carries about 5 MB/s per call
  // over a 50 ms round trip.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 256 << 10);
  // A read takes at most 8 KiB of buffer (gRPC's default: up to 4 MiB, sized after the
  // connection's recent reads), of which an idle connection keeps what the read left unused:
  // at n = 200 sites 64 KiB cost 12 MiB more at the peak than 8, and rounds took as long
  // (docs/performance.md). Applies with gRPC's tcp_read_chunks experiment off, as the
  // daemon runs it (crypto::KeepGrpcReadBuffersSmall).
  builder.AddChannelArgument(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 8 << 10);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen_address(), " (address in use or invalid)"));
  }
  std::string bound = absl::StrCat(HostOf(config.listen_address()), ":", port);
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(false);

  absl::StatusOr<std::unique_ptr<metrics::Endpoint>> listener =
      StartMetricsListener(config, &registry, &phase);
  absl::Status resumed = listener.status();
  if (resumed.ok()) resumed = coordinator->ResumeTasks();
  if (resumed.ok() && !config.ready_file().empty()) {
    resumed = common::WriteReadyFile(config.ready_file(), bound + "\n");
  }
  if (!resumed.ok()) {
    coordinator->Shutdown();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return resumed;
  }
  if (health != nullptr) health->SetServingStatus(true);
  phase = Phase::kReady;
  absl::Notification watch_done;
  std::thread crl_watch =
      StartCrlWatch(config, coordinator.get(), tls.identity, reload_on_hangup, &watch_done);
  common::LogInfo("coordinator_ready")
      .With("address", bound)
      .With("identity", tls.identity.node_id)
      .With("federation", tls.identity.federation)
      .With("data_dir", config.data_dir());
  common::NotifyReady(absl::StrCat("serving on ", bound, " as ", tls.identity.node_id));

  stop->WaitForNotification();
  common::NotifyStopping();
  watch_done.Notify();
  crl_watch.join();
  common::LogInfo("coordinator_stopping");
  if (health != nullptr) health->SetServingStatus(false);
  phase = Phase::kStopping;
  // Runners first: they stop posting work and waiting on stages; waiting pulls wake up.
  coordinator->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  if (*listener != nullptr) (*listener)->Stop();
  for (const std::string& file : {config.ready_file(), config.metrics_ready_file()}) {
    if (absl::Status st = common::RemoveReadyFile(file); !st.ok()) {
      common::LogWarning("ready_file_not_removed").With("error", st.ToString());
    }
  }
  common::LogInfo("coordinator_stopped");
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
