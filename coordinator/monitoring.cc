#include "coordinator/monitoring.h"

#include <map>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_interceptor.h"
#include "proto/federation.pb.h"
#include "proto/labels.h"
#include "proto/secagg.pb.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {
namespace {

// "<task>/r<round>/<stage>/a<attempt>" -> "<stage>".
std::string StageOfSession(const std::string& session) {
  std::vector<std::string> parts = absl::StrSplit(session, '/');
  return parts.size() == 4 ? parts[2] : "unknown";
}

// A drop line of SecureStageResult ("client: step: REASON: detail") -> REASON, if it is one
// of the protocol's drop reasons.
std::string DropReason(const std::string& drop) {
  std::vector<std::string> parts = absl::StrSplit(drop, absl::MaxSplits(": ", 3));
  v1::SecAggDropReason reason;
  if (parts.size() >= 3 && v1::SecAggDropReason_Parse(parts[2], &reason)) return parts[2];
  return "OTHER";
}

// A bounded label for a called method: the services' own methods by name, anything else
// (a peer may call any name) as "other".
std::string MethodLabel(const char* method) {
  if (method == nullptr) return "other";
  std::string m(method);
  if (m == "/grpc.health.v1.Health/Check" || m == "/grpc.health.v1.Health/Watch") return m;
  if (m.size() < 2 || m[0] != '/') return "other";
  std::string full = m.substr(1);
  const size_t slash = full.find('/');
  if (slash == std::string::npos) return "other";
  full[slash] = '.';
  if (google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full) == nullptr) {
    return "other";
  }
  return m;
}

const char* Outcome(const SecureStageResult& result) {
  if (result.completed) return "completed";
  if (!result.stopped.ok()) return "stopped";
  return "aborted";
}

// Counts committed rounds past round 0.
class CountingStore final : public Store {
 public:
  CountingStore(std::unique_ptr<Store> inner, metrics::Counter* committed)
      : inner_(std::move(inner)), committed_(committed) {}

  absl::StatusOr<std::string> CreateTask(v1::TaskRecord record) override {
    return inner_->CreateTask(std::move(record));
  }
  absl::Status UpdateTask(const v1::TaskRecord& record) override {
    return inner_->UpdateTask(record);
  }
  absl::StatusOr<v1::TaskRecord> GetTask(const std::string& task_id) override {
    return inner_->GetTask(task_id);
  }
  absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks() override { return inner_->ListTasks(); }
  absl::Status CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                           std::span<const float> model, const v1::RoundRecord* previous) override {
    absl::Status st = inner_->CommitRound(task, round, model, previous);
    if (st.ok() && round.round() > 0) committed_->Increment();
    return st;
  }
  absl::StatusOr<std::vector<v1::RoundRecord>> ListRounds(const std::string& task_id) override {
    return inner_->ListRounds(task_id);
  }
  absl::StatusOr<std::vector<float>> GetCheckpoint(const std::string& task_id,
                                                   uint32_t round) override {
    return inner_->GetCheckpoint(task_id, round);
  }
  absl::StatusOr<std::string> GetCheckpointBytes(const std::string& task_id,
                                                 uint32_t round) override {
    return inner_->GetCheckpointBytes(task_id, round);
  }
  absl::Status PutInFlight(const v1::InFlightRound& record) override {
    return inner_->PutInFlight(record);
  }
  absl::Status PutInFlightWithSnapshot(const v1::InFlightRound& record,
                                       std::span<const std::string_view> snapshot) override {
    return inner_->PutInFlightWithSnapshot(record, snapshot);
  }
  absl::Status PutInFlightProgress(const v1::InFlightRound& record) override {
    return inner_->PutInFlightProgress(record);
  }
  absl::StatusOr<v1::InFlightRound> GetInFlightShown(const std::string& task_id) override {
    return inner_->GetInFlightShown(task_id);
  }
  absl::StatusOr<v1::InFlightRound> GetInFlight(const std::string& task_id) override {
    return inner_->GetInFlight(task_id);
  }
  absl::Status DeleteInFlight(const std::string& task_id) override {
    return inner_->DeleteInFlight(task_id);
  }
  absl::Status PutStatistics(const v1::PooledStatisticsRecord& record) override {
    return inner_->PutStatistics(record);
  }
  absl::StatusOr<v1::PooledStatisticsRecord> GetStatistics(
      const std::string& dataset_id, const std::vector<std::string>& columns) override {
    return inner_->GetStatistics(dataset_id, columns);
  }
  absl::Status PutClient(const v1::ClientRecord& record) override {
    return inner_->PutClient(record);
  }
  absl::StatusOr<v1::ClientRecord> GetClient(const std::string& client_id) override {
    return inner_->GetClient(client_id);
  }
  absl::StatusOr<std::vector<v1::ClientRecord>> ListClients() override {
    return inner_->ListClients();
  }
  absl::Status Checkpoint(const std::string& directory) override {
    return inner_->Checkpoint(directory);
  }

 private:
  const std::unique_ptr<Store> inner_;
  metrics::Counter* const committed_;
};

// One call: its method, and what passed through it.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(CoordinatorMetrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      Received(methods->GetRecvMessage());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      if (grpc::ByteBuffer* sent = methods->GetSerializedSendMessage(); sent != nullptr) {
        metrics_->Sent(method_, sent->Length());
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->CallHandled(method_, static_cast<int>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  void Received(void* message) {
    // Only our own services' requests are protobuf messages here (the health service's and
    // our raw methods' are byte buffers). gRPC hands over the request object its handler declared,
    // whose MessageLite base is its first and only base subobject.
    if (message == nullptr || !absl::StartsWith(method_, "/tessera.v1.")) return;
    if (IsRawMethod(method_)) {
      metrics_->Received(method_, static_cast<const grpc::ByteBuffer*>(message)->Length());
      return;
    }
    const auto* request = static_cast<const google::protobuf::MessageLite*>(message);
    metrics_->Received(method_, request->ByteSizeLong());
    if (method_ == "/tessera.v1.Federation/PushResult") {
      const auto* push = static_cast<const v1::PushResultRequest*>(message);
      if (push->has_decline())
        metrics_->Declined(v1::Decline::Reason_Name(push->decline().reason()));
    }
  }

  CoordinatorMetrics* const metrics_;
  const std::string method_;
};

class InterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InterceptorFactory(CoordinatorMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(metrics_, MethodLabel(info->method()));
  }

 private:
  CoordinatorMetrics* const metrics_;
};

}  // namespace

// Times each session's steps: a step runs from its StepPersisted to the next one, or to
// the session's end.
class CoordinatorMetrics::StepTimer final : public StageObserver {
 public:
  StepTimer(CoordinatorMetrics* metrics, StageObserver* next) : metrics_(metrics), next_(next) {}

  void StepPersisted(const std::string& session, v1::SecAggRound step) override {
    const absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      Open& open = open_[session];
      if (open.started == absl::InfinitePast()) open.started = now;
      CloseStep(session, open, now);
      open.step = step;
      open.step_started = now;
    }
    if (next_ != nullptr) next_->StepPersisted(session, step);
  }

  void AnswerAccepted(const std::string& session, v1::SecAggRound step,
                      const std::string& client) override {
    if (next_ != nullptr) next_->AnswerAccepted(session, step, client);
  }

  void SessionEnded(const std::string& session, const SecureStageResult& result) override {
    const absl::Time now = absl::Now();
    const std::string stage = StageOfSession(session);
    const std::string outcome = Outcome(result);
    {
      absl::MutexLock lock(&mu_);
      auto it = open_.find(session);
      if (it != open_.end()) {
        CloseStep(session, it->second, now);
        metrics_->session_seconds_.With({stage, outcome})
            .Observe(absl::ToDoubleSeconds(now - it->second.started));
        open_.erase(it);
      }
    }
    metrics_->sessions_.With({stage, outcome}).Increment();
    for (const std::string& drop : result.drops) {
      metrics_->drops_.With({stage, DropReason(drop)}).Increment();
    }
    if (next_ != nullptr) next_->SessionEnded(session, result);
  }

 private:
  struct Open {
    absl::Time started = absl::InfinitePast();
    v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED;
    absl::Time step_started;
  };

  void CloseStep(const std::string& session, const Open& open, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (open.step == v1::SECAGG_ROUND_UNSPECIFIED) return;
    metrics_->step_seconds_.With({StageOfSession(session), proto::StepLabel(open.step)})
        .Observe(absl::ToDoubleSeconds(now - open.step_started));
  }

  CoordinatorMetrics* const metrics_;
  StageObserver* const next_;
  absl::Mutex mu_;
  std::map<std::string, Open> open_ ABSL_GUARDED_BY(mu_);
};

CoordinatorMetrics::CoordinatorMetrics(metrics::Registry* registry)
    : registry_(registry),
      rounds_committed_(registry->Counter(
          "tessera_rounds_committed_total",
          "Rounds committed past round 0: training rounds and analytics answers.")),
      step_seconds_(
          registry->Histogram("tessera_secagg_step_duration_seconds",
                              "Duration of each secure-aggregation step, from posting to closing.",
                              {"stage", "step"}, metrics::DurationBuckets())),
      session_seconds_(registry->Histogram(
          "tessera_secagg_session_duration_seconds",
          "Duration of each secure-aggregation session (one stage attempt), by outcome.",
          {"stage", "outcome"}, metrics::DurationBuckets())),
      sessions_(registry->Counter("tessera_secagg_sessions_total",
                                  "Secure-aggregation sessions ended, by stage and outcome.",
                                  {"stage", "outcome"})),
      drops_(registry->Counter("tessera_secagg_drops_total",
                               "Sites dropped from a session, by stage and drop reason.",
                               {"stage", "reason"})),
      declines_(registry->Counter("tessera_declines_total",
                                  "Work items sites declined, by the reason they gave.",
                                  {"reason"})),
      calls_(registry->Counter("tessera_grpc_server_handled_total",
                               "gRPC calls answered, by method and status code.",
                               {"method", "code"})),
      received_bytes_(registry->Counter("tessera_grpc_server_received_bytes_total",
                                        "Request message bytes received, by method.", {"method"})),
      sent_bytes_(registry->Counter("tessera_grpc_server_sent_bytes_total",
                                    "Response message bytes sent, by method.", {"method"})),
      handshake_failures_(registry->Counter("tessera_tls_handshake_failures_total",
                                            "TLS handshakes that failed (see the log).")),
      tasks_(registry->Gauge("tessera_tasks", "Tasks by state.", {"state"})),
      clients_(registry->Gauge("tessera_clients", "Registered clients by status.", {"status"})),
      clients_live_(registry->Gauge("tessera_clients_connected",
                                    "Clients heard from within client_liveness_seconds.")),
      clients_held_back_(registry->Gauge(
          "tessera_clients_held_back",
          "Clients an operator's decision keeps out of every cohort, by reason.", {"reason"})) {}

CoordinatorMetrics::~CoordinatorMetrics() = default;

StageObserver* CoordinatorMetrics::Observer(StageObserver* next) {
  observer_ = std::make_unique<StepTimer>(this, next);
  return observer_.get();
}

std::unique_ptr<Store> CoordinatorMetrics::WrapStore(std::unique_ptr<Store> store) {
  return std::make_unique<CountingStore>(std::move(store), &rounds_committed_.With({}));
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
CoordinatorMetrics::InterceptorFactory() {
  return std::make_unique<class InterceptorFactory>(this);
}

void CoordinatorMetrics::CollectFrom(Coordinator* coordinator, absl::Duration liveness) {
  registry_->AddCollector([this, coordinator, liveness] {
    std::map<std::string, double> by_state;
    for (int s = v1::TaskState_MIN; s <= v1::TaskState_MAX; ++s) {
      if (v1::TaskState_IsValid(s) && s != v1::TASK_STATE_UNSPECIFIED) {
        by_state[v1::TaskState_Name(static_cast<v1::TaskState>(s))] = 0;
      }
    }
    if (absl::StatusOr<std::vector<v1::TaskRecord>> tasks = coordinator->ListTasks(); tasks.ok()) {
      for (const v1::TaskRecord& t : *tasks) by_state[v1::TaskState_Name(t.state())] += 1;
    }
    for (const auto& [state, n] : by_state) tasks_.With({state}).Set(n);
    std::map<std::string, double> by_status;
    double live = 0;
    double quarantined = 0;
    double disabled = 0;
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    const int64_t liveness_ms = absl::ToInt64Milliseconds(liveness);
    for (const v1::ClientRecord& c : coordinator->ListClients()) {
      by_status[v1::ClientStatus_Name(c.status())] += 1;
      if (now_ms - c.last_seen_unix_ms() <= liveness_ms) live += 1;
      if (c.has_quarantine()) quarantined += 1;
      if (c.disabled()) disabled += 1;
    }
    clients_.Clear();
    for (const auto& [status, n] : by_status) clients_.With({status}).Set(n);
    clients_live_.With({}).Set(live);
    clients_held_back_.With({"quarantined"}).Set(quarantined);
    clients_held_back_.With({"disabled"}).Set(disabled);
  });
}

void CoordinatorMetrics::CallHandled(const std::string& method, int code) {
  calls_.With({method, absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}).Increment();
}

void CoordinatorMetrics::Received(const std::string& method, size_t bytes) {
  received_bytes_.With({method}).Increment(bytes);
}

void CoordinatorMetrics::Sent(const std::string& method, size_t bytes) {
  sent_bytes_.With({method}).Increment(bytes);
}

void CoordinatorMetrics::Declined(const std::string& reason) {
  declines_.With({reason}).Increment();
}

void CoordinatorMetrics::HandshakeFailed() { handshake_failures_.With({}).Increment(); }

}  // namespace tessera::coordinator
