#include "client/daemon.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/chunked_upload.h"
#include "client/config_reload.h"
#include "client/control_server.h"
#include "client/internal/item_downloads.h"
#include "client/internal/recorded_caller.h"
#include "client/ledger.h"
#include "client/monitoring.h"
#include "client/reconnect_backoff.h"
#include "client/site_agent.h"
#include "client/site_crl.h"
#include "client/site_store.h"
#include "client/update_sink.h"
#include "common/files.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "common/signals.h"
#include "common/status.h"
#include "crypto/signature.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "metrics/endpoint.h"
#include "metrics/registry.h"
#include "proto/config.pb.h"
#include "proto/federation.grpc.pb.h"
#include "proto/grpc_status.h"
#include "proto/labels.h"

namespace tessera::client {
namespace {

constexpr absl::Duration kHelloTimeout = absl::Seconds(15);
// A PullWork call's deadline is the coordinator's long-poll time plus this margin, so the
// coordinator always answers first.
constexpr absl::Duration kPullMargin = absl::Seconds(15);
// Minimum time given to a PushResult even when the stage deadline is near.
constexpr absl::Duration kMinPushTimeout = absl::Seconds(10);

using internal::CallGuard;
using internal::IsTransient;
using internal::ItemDownloads;
using internal::RecordedCaller;
using internal::SetDeadline;

class GrpcUpdateSink final : public UpdateSink {
 public:
  explicit GrpcUpdateSink(RecordedCaller* caller) : caller_(caller) {}

  absl::Status Send(const v1::WorkItem& item, const v1::PushResultRequest& answer) override {
    grpc::ClientContext ctx;
    absl::Duration left = absl::FromUnixMillis(item.deadline_unix_ms()) - absl::Now();
    SetDeadline(&ctx, std::max(left, kMinPushTimeout));
    v1::PushResultResponse response;
    return caller_->Call(&ctx, kPushResultMethod, answer, PushResultMessage(item, answer),
                         &response);
  }

 private:
  RecordedCaller* const caller_;
};

std::string NewInstanceId() {
  absl::BitGen gen;
  return absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16),
                      absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
}

class ClientDaemon {
 public:
  ClientDaemon(const v1::ClientConfig& config, absl::Notification* stop,
               const ClientRunOptions& options)
      : config_(config), stop_(stop), options_(options), guard_(stop) {}

  absl::Status Run() {
    RETURN_IF_ERROR(Start());
    // Cancels the call in flight as soon as a stop is requested.
    // It also ends when Run returns without a stop (a fatal site-side error).
    absl::Notification run_ended;
    std::thread canceller([this, &run_ended] {
      while (!stop_->WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
        if (run_ended.HasBeenNotified()) return;
      }
      common::NotifyStopping();
      guard_.CancelCurrent();
    });
    std::thread hangups;
    if (options_.reload_on_hangup) hangups = WatchHangups(&run_ended);
    struct JoinAtExit {
      std::thread* t;
      absl::Notification* ended;
      ~JoinAtExit() {
        if (!ended->HasBeenNotified()) ended->Notify();
        if (t->joinable()) t->join();
      }
    } join_hangups{&hangups, &run_ended};

    if (absl::Status st = Sessions(); !st.ok()) {
      run_ended.Notify();
      canceller.join();
      common::LogError("client_stopped").With("error", st.ToString());
      return st;
    }
    canceller.join();
    Stop();
    return absl::OkStatus();
  }

 private:
  // Everything a session needs, in order: TLS material, the site store (a damaged one
  // stops the daemon here, before anything is sent), the agent, the control socket, the
  // channel, the egress ledger and the metrics listener.
  absl::Status Start() {
    RETURN_IF_ERROR(crypto::RequireTls13ForProcess());
    ASSIGN_OR_RETURN(
        crypto::TlsMaterial tls,
        crypto::LoadTlsMaterial(config_.tls(), crypto::Role::kInstitution, absl::Now()));
    client_id_ = tls.identity.node_id;
    ASSIGN_OR_RETURN(crypto::Signer signer, crypto::Signer::Create(tls.key_pem));
    signer_ = std::make_unique<crypto::Signer>(std::move(signer));
    WarnIfExpiringSoon(tls.identity);
    // The site store first: a damaged one stops the daemon here, before anything is sent.
    ASSIGN_OR_RETURN(std::unique_ptr<SiteStore> store, OpenSiteStore(config_.data_dir()));
    ASSIGN_OR_RETURN(crl_, SiteCrl::Open(tls.ca_cert_pem, config_.data_dir(), config_.crl_file()));
    agent_ = std::make_unique<SiteAgent>(config_, client_id_, tls.cert_pem, tls.ca_cert_pem,
                                         signer_.get(), std::move(store), crl_->list());
    RETURN_IF_ERROR(agent_->Preload());
    live_ = std::make_unique<LiveConfig>(config_);
    applied_generation_ = live_->generation();
    if (!config_.control_socket().empty()) {
      ControlHandlers handlers;
      handlers.approvals = agent_->approvals();
      handlers.config = [this] { return live_->Get(); };
      handlers.reload = [this] { return Reload("control_socket"); };
      ASSIGN_OR_RETURN(control_, ControlServer::Start(config_.control_socket(), handlers));
    }
    crypto::ChannelOptions channel_options;
    channel_options.initial_reconnect_backoff =
        absl::Milliseconds(config_.retry().initial_backoff_ms());
    channel_options.max_reconnect_backoff = absl::Milliseconds(config_.retry().max_backoff_ms());
    if (config_.max_message_bytes() != 0) {
      channel_options.max_message_bytes = static_cast<int>(config_.max_message_bytes());
    }
    channel_ = crypto::MakeChannel(config_.coordinator_address(), config_.server_name(), tls,
                                   channel_options);
    EgressLedgerOptions ledger_options;
    ledger_options.coordinator_address = config_.coordinator_address();
    ledger_options.coordinator_name = ServerName();
    ledger_options.checkpoint_every = config_.ledger().checkpoint_every();
    ledger_options.certificate_pem = tls.cert_pem;
    ASSIGN_OR_RETURN(
        ledger_, EgressLedger::Open(&agent_->store(), signer_.get(), std::move(ledger_options)));
    agent_->SetLedger(ledger_.get());
    caller_ =
        std::make_unique<RecordedCaller>(channel_, ledger_.get(), &guard_, &meters_, instance_id_);
    downloads_ = std::make_unique<ItemDownloads>(caller_.get(), &meters_);
    downloads_->AddOwnCertificate(tls.cert_pem);
    RETURN_IF_ERROR(StartMetricsListener());
    sink_ = std::make_unique<GrpcUpdateSink>(caller_.get());
    if (options_.wrap_sink) sink_ = options_.wrap_sink(std::move(sink_));
    common::LogInfo("client_started")
        .With("client", client_id_)
        .With("coordinator", config_.coordinator_address())
        .With("instance", instance_id_)
        .With("datasets", static_cast<uint64_t>(config_.datasets_size()));
    return absl::OkStatus();
  }

  // SIGHUP: a policy reload, logged (there is no caller to answer), and the log file
  // reopened (logrotate). The thread ends on a stop or once `run_ended` is notified.
  std::thread WatchHangups(absl::Notification* run_ended) {
    return std::thread([this, run_ended] {
      while (!stop_->HasBeenNotified() && !run_ended->HasBeenNotified()) {
        if (!common::WaitForHangup(absl::Milliseconds(100))) continue;
        common::NotifyReloading();
        if (absl::Status st = common::ReopenLogFile(); !st.ok()) {
          common::LogError("log_reopen_failed").With("error", std::string(st.message()));
        }
        Reload("SIGHUP").IgnoreError();
        crl_->ReloadFile();
        common::NotifyReloaded();
      }
    });
  }

  // Sessions one after the other, with a backoff between failed ones, until a stop is
  // requested (OK) or the ready file cannot be written (that error: the daemon stops).
  absl::Status Sessions() {
    ReconnectBackoff backoff(common::Clock::Real(),
                             absl::Milliseconds(config_.retry().initial_backoff_ms()),
                             absl::Milliseconds(config_.retry().max_backoff_ms()));
    int failures = 0;
    while (!stop_->HasBeenNotified()) {
      absl::Status st = Session();
      meters_.SetConnected(false);
      if (stop_->HasBeenNotified()) break;
      if (!ready_error_.ok()) return ready_error_;
      if (session_ok_) {
        // The coordinator was there a moment ago: come back quickly.
        backoff.Reset();
        failures = 0;
        session_ok_ = false;
      }
      LogSessionEnd(st, failures, backoff.step());
      agent_->ExpireSessions(absl::Now());  // no work comes while the coordinator is away
      ++failures;
      WaitToReconnect(&backoff);
    }
    return absl::OkStatus();
  }

  // Why a session ended, for the operator: the `failures` before it in a row, and the
  // wait before the next.
  void LogSessionEnd(const absl::Status& st, int failures, absl::Duration retry_in) const {
    if (st.code() == absl::StatusCode::kAlreadyExists) {
      // Another daemon holds this identity. Retrying (slowly) rather than exiting: when
      // the other one stops (a replacement, a failover) this one takes over by itself.
      common::LogError("duplicate_identity")
          .With("client", client_id_)
          .With("instance", instance_id_)
          .With("retry_in_ms", absl::ToInt64Milliseconds(retry_in))
          .With("error", std::string(st.message()));
    } else if (!IsTransient(st)) {
      // E.g. PERMISSION_DENIED: our certificate is not welcome. Retrying slowly lets an
      // operator fix it without anyone restarting the site.
      common::LogError("coordinator_refused").With("error", st.ToString());
      common::NotifyStatus(absl::StrCat("refused by the coordinator: ", st.message()));
    } else if (failures == 0 || failures % 10 == 0) {
      common::LogWarning("coordinator_unreachable")
          .With("address", config_.coordinator_address())
          .With("attempt", failures + 1)
          .With("retry_in_ms", absl::ToInt64Milliseconds(retry_in))
          .With("error", st.ToString());
      common::NotifyStatus(absl::StrCat("coordinator ", config_.coordinator_address(),
                                        " unreachable (attempt ", failures + 1, ")"));
    }
  }

  // Waits out the backoff while watching the channel: gRPC advances a reconnect (TCP
  // connect, TLS handshake) only while something polls the channel, and between our
  // fail-fast calls nothing does but its 5 s backup poller, which made a reconnect take
  // ~15 s. Slices of 100 ms keep a stop request prompt.
  // (gRPC's wait takes real time: the backoff's clock is the real one here.)
  void WaitToReconnect(ReconnectBackoff* backoff) {
    const absl::Time until = backoff->NextAttempt();
    while (!stop_->HasBeenNotified() && backoff->clock()->Now() < until) {
      const absl::Time slice = std::min(until, backoff->clock()->Now() + absl::Milliseconds(100));
      if (channel_->WaitForConnected(absl::ToChronoTime(slice))) {
        backoff->WaitUntil(until, stop_);
        break;
      }
    }
  }

  // After the last session: the metrics listener stopped, the ledger sealed, the ready
  // files removed.
  void Stop() {
    if (endpoint_ != nullptr) endpoint_->Stop();
    // Seals what left since the last checkpoint.
    absl::Status sealed = ledger_->Checkpoint("stop", absl::Now());
    if (!sealed.ok()) common::LogError("ledger_checkpoint_failed").With("error", sealed.ToString());
    for (const std::string& file : {config_.ready_file(), config_.metrics_ready_file()}) {
      if (absl::Status st = common::RemoveReadyFile(file); !st.ok()) {
        common::LogWarning("ready_file_not_removed").With("error", st.ToString());
      }
    }
    common::LogInfo("client_stopped").With("client", client_id_);
  }

  // The metrics and health listener, when config.metrics_listen_address is set. /readyz:
  // ready while the coordinator has accepted this site's Hello.
  absl::Status StartMetricsListener() {
    if (config_.metrics_listen_address().empty()) return absl::OkStatus();
    metrics::RegisterProcessMetrics(&registry_, "tessera-client");
    metrics::EndpointOptions options;
    options.listen = config_.metrics_listen_address();
    options.ready_file = config_.metrics_ready_file();
    options.readiness = [this]() -> std::string {
      return meters_.connected() ? "" : "not connected to the coordinator";
    };
    ASSIGN_OR_RETURN(endpoint_, metrics::Endpoint::Start(&registry_, options));
    common::LogInfo("metrics_listening").With("address", endpoint_->address());
    return absl::OkStatus();
  }

  // The site's own certificate: a warning when it expires within 30 days.
  static void WarnIfExpiringSoon(const crypto::CertificateInfo& own) {
    if (own.not_after - absl::Now() >= absl::Hours(24 * 30)) return;
    common::LogWarning("own_certificate_expiring")
        .With("identity", own.node_id)
        .With("serial", own.serial_hex)
        .With("not_after",
              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", own.not_after, absl::UTCTimeZone()))
        .With("what_to_do", "tessera-client renew --config FILE, then have the CSR signed");
  }

  // The name the coordinator's certificate must carry (the channel checks it).
  std::string ServerName() const {
    if (!config_.server_name().empty()) return config_.server_name();
    const std::string& address = config_.coordinator_address();
    std::string host = address.substr(0, address.rfind(':'));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    return host;
  }

  // One connection's life: Hello, then pull and answer until a call fails.
  absl::Status Session() {
    v1::HelloRequest hello;
    hello.set_client_version(ClientVersion());
    hello.set_instance_id(instance_id_);
    for (const v1::LocalDataset& d : config_.datasets()) hello.add_dataset_ids(d.id());
    v1::HelloResponse welcome;
    {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, kHelloTimeout);
      EgressMessage what;
      what.kind = v1::LEDGER_HELLO;
      RETURN_IF_ERROR(caller_->Call(&ctx, "/tessera.v1.Federation/Hello", hello, what, &welcome));
    }
    session_ok_ = true;
    caller_->SetUploadsWaitForAdmission(welcome.uploads_wait_for_admission());
    crl_->Offer(welcome.crl_pem(), "coordinator");
    meters_.SetConnected(true);
    common::LogInfo("connected")
        .With("client", welcome.client_id())
        .With("coordinator", config_.coordinator_address());
    if (!ready_written_ && !config_.ready_file().empty()) {
      // A site-side problem, not the coordinator's: the daemon stops with it (Run).
      ready_error_ = common::WriteReadyFile(config_.ready_file(), welcome.client_id() + "\n");
      RETURN_IF_ERROR(ready_error_);
      ready_written_ = true;
    }
    common::NotifyReady(
        absl::StrCat("connected to ", config_.coordinator_address(), " as ", welcome.client_id()));
    const absl::Duration pull_timeout =
        absl::Seconds(std::max<uint32_t>(welcome.long_poll_seconds(), 1)) + kPullMargin;
    EgressMessage pull_message;
    pull_message.kind = v1::LEDGER_PULL_WORK;
    while (!stop_->HasBeenNotified()) {
      v1::PullWorkResponse response;
      {
        grpc::ClientContext ctx;
        SetDeadline(&ctx, pull_timeout);
        RETURN_IF_ERROR(caller_->Call(&ctx, "/tessera.v1.Federation/PullWork", NextPull(),
                                      pull_message, &response));
      }
      if (!response.has_work()) {
        agent_->ExpireSessions(absl::Now());  // an idle coordinator: no Answer expires them
        continue;
      }
      absl::Status completed = downloads_->Complete(response.mutable_work());
      if (absl::IsNotFound(completed)) {
        // The step closed meanwhile (or the item is not this site's): nothing to answer.
        common::LogInfo("model_download_closed")
            .With("work", response.work().work_id())
            .With("error", std::string(completed.message()));
        continue;
      }
      RETURN_IF_ERROR(completed);
      // The request that follows the answer is known now: its ledger entry may be written
      // with the answer's, one sync for both (EgressLedger::WriteNextAhead).
      if (absl::StatusOr<std::string> next = SentBytes(NextPull()); next.ok()) {
        ledger_->WriteNextAhead(pull_message, *next);
      }
      RETURN_IF_ERROR(Answer(response.work()));
    }
    return absl::CancelledError("stopping");
  }

  // The PullWork request: the hashes of the models last sent to this site (the
  // coordinator's own), so that the next model may come as a delta from one of them.
  v1::PullWorkRequest NextPull() const {
    v1::PullWorkRequest pull;
    downloads_->ListHeldModels(&pull);
    return pull;
  }

  // Re-reads the config file and swaps in its policy (client/config_reload.h); the daemon's
  // loop applies it before the next item. `via` names the request in the log.
  absl::StatusOr<v1::ReloadPolicyResponse> Reload(const char* via) {
    if (options_.config_path.empty()) {
      return absl::FailedPreconditionError(
          "this daemon was not started from a config file: nothing to reload");
    }
    absl::StatusOr<std::vector<std::string>> needs_restart = live_->Reload(options_.config_path);
    if (!needs_restart.ok()) {
      common::LogError("policy_reload_refused")
          .With("via", via)
          .With("error", std::string(needs_restart.status().message()));
      return needs_restart.status();
    }
    v1::ReloadPolicyResponse response;
    response.set_config_file(options_.config_path);
    for (const std::string& field : *needs_restart) response.add_needs_restart(field);
    auto log = common::LogInfo("policy_reloaded");
    log.With("via", via).With("file", options_.config_path);
    if (!needs_restart->empty()) {
      log.With("needs_restart", absl::StrJoin(*needs_restart, ","));
    }
    return response;
  }

  // A policy reloaded since the last item goes to the agent now, between items.
  void ApplyReloadedPolicy() {
    uint64_t generation = 0;
    v1::ClientConfig live = live_->Get(&generation);
    if (generation == applied_generation_) return;
    agent_->SetPolicy(live.policy());
    applied_generation_ = generation;
  }

  // Computes and sends the answer to one item. Returns an error only when the coordinator
  // could not be reached (the session then reconnects).
  absl::Status Answer(const v1::WorkItem& item) {
    const v1::SecAggRound step = item.secagg().round();
    common::LogInfo("work_received")
        .With("task", item.task_id())
        .With("round", item.round())
        .With("stage", proto::StageLabel(item.stage()))
        .With("step", proto::StepLabel(step))
        .With("work", item.work_id());
    absl::Time started = absl::Now();
    const std::string stage = proto::StageLabel(item.stage());
    meters_.WorkReceived(stage, proto::StepLabel(step));
    crl_->Offer(item.crl_pem(), "coordinator");
    ApplyReloadedPolicy();
    // Recorded in the site store before it is returned: only then may it leave.
    v1::PushResultRequest answer = agent_->Answer(item, started);
    absl::Status sent = sink_->Send(item, answer);
    meters_.Answered(
        stage, proto::StepLabel(step),
        answer.has_decline() ? v1::Decline::Reason_Name(answer.decline().reason()) : "",
        absl::Now() - started,
        (item.stage() == v1::STAGE_FIT || item.stage() == v1::STAGE_FIT_EVALUATE) &&
            step == v1::SECAGG_ADVERTISE_KEYS);
    if (answer.has_secagg()) {
      common::LogInfo("work_answered")
          .With("work", item.work_id())
          .With("step", proto::StepLabel(step))
          .With("bytes", static_cast<uint64_t>(answer.ByteSizeLong()))
          .With("compute_ms", absl::ToInt64Milliseconds(absl::Now() - started))
          .With("status", sent.ok() ? "accepted" : sent.ToString());
    } else {
      common::LogWarning("work_declined")
          .With("work", item.work_id())
          .With("reason", v1::Decline::Reason_Name(answer.decline().reason()))
          .With("detail", answer.decline().detail())
          .With("status", sent.ok() ? "accepted" : sent.ToString());
    }
    if (IsTransient(sent)) return sent;
    return absl::OkStatus();
  }

  const v1::ClientConfig& config_;
  absl::Notification* const stop_;
  const ClientRunOptions options_;
  // Declared before everything that records into them, so they outlive it.
  metrics::Registry registry_;
  ClientMetrics meters_{&registry_};
  std::unique_ptr<metrics::Endpoint> endpoint_;
  CallGuard guard_;
  std::string client_id_;
  // Random per start: names this daemon to the coordinator (duplicate identities).
  const std::string instance_id_ = NewInstanceId();
  std::unique_ptr<SiteCrl> crl_;
  std::unique_ptr<crypto::Signer> signer_;
  std::unique_ptr<SiteAgent> agent_;
  std::unique_ptr<LiveConfig> live_;
  uint64_t applied_generation_ = 0;  // of the policy the agent runs (daemon loop only)
  std::unique_ptr<ControlServer> control_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<EgressLedger> ledger_;
  std::unique_ptr<RecordedCaller> caller_;
  std::unique_ptr<ItemDownloads> downloads_;  // Session's thread
  std::unique_ptr<UpdateSink> sink_;
  bool ready_written_ = false;
  absl::Status ready_error_;  // writing the ready file failed: the daemon stops
  bool session_ok_ = false;
};

}  // namespace

const char* ClientVersion() { return "tessera-client/0.1.0"; }

absl::Status RunClient(const v1::ClientConfig& config, absl::Notification* stop,
                       const ClientRunOptions& options) {
  ClientDaemon daemon(config, stop, options);
  return daemon.Run();
}

}  // namespace tessera::client
