// The coordinator's Prometheus metrics (docs/monitoring.md lists each with its labels) and
// the few places that feed them, chosen so that the round logic knows nothing of metrics:
//   - a StageObserver (secure_stage.h) for session steps: step and session durations,
//     sessions by outcome, drops by reason;
//   - a Store wrapper (store.h) that counts committed rounds;
//   - a gRPC server interceptor: calls by method and status code, message bytes in and out
//     of the Federation and Admin services, declines by reason (from PushResult);
//   - a collector that reads tasks by state and clients by status at each scrape.
// Only counts, durations, sizes and enum names: nothing computed from a site's data.
//
// Thread-safe. Heavy headers (gRPC) stay in monitoring.cc.
#ifndef TESSERA_COORDINATOR_MONITORING_H_
#define TESSERA_COORDINATOR_MONITORING_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/secure_stage.h"
#include "coordinator/store.h"
#include "metrics/registry.h"

namespace grpc::experimental {
class ServerInterceptorFactoryInterface;
}  // namespace grpc::experimental

namespace tessera::coordinator {

class Coordinator;

class CoordinatorMetrics {
 public:
  // Registers the coordinator's families in `registry` (which must outlive this object).
  explicit CoordinatorMetrics(metrics::Registry* registry);
  ~CoordinatorMetrics();
  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  // An observer that records session steps, then tells `next` (may be null; must outlive
  // this object). Owned by this object.
  StageObserver* Observer(StageObserver* next);

  // `store`, counting each committed round past round 0 (training rounds and analytics
  // answers) in tessera_rounds_committed_total.
  std::unique_ptr<Store> WrapStore(std::unique_ptr<Store> store);

  // For grpc::ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // Tasks by state and clients by status, read from `coordinator` at each scrape (it must
  // outlive the registry's renders); a client is connected if heard from within `liveness`.
  void CollectFrom(Coordinator* coordinator, absl::Duration liveness);

  // Calls, bytes and declines, as the interceptor records them (public for it).
  void CallHandled(const std::string& method, int code);
  void Received(const std::string& method, size_t bytes);
  void Sent(const std::string& method, size_t bytes);
  void Declined(const std::string& reason);
  // A failed TLS handshake (crypto/grpc_log.h).
  void HandshakeFailed();

 private:
  class StepTimer;

  metrics::Registry* const registry_;
  metrics::CounterFamily& rounds_committed_;
  metrics::HistogramFamily& step_seconds_;
  metrics::HistogramFamily& session_seconds_;
  metrics::CounterFamily& sessions_;
  metrics::CounterFamily& drops_;
  metrics::CounterFamily& declines_;
  metrics::CounterFamily& calls_;
  metrics::CounterFamily& received_bytes_;
  metrics::CounterFamily& sent_bytes_;
  metrics::CounterFamily& handshake_failures_;
  metrics::GaugeFamily& tasks_;
  metrics::GaugeFamily& clients_;
  metrics::GaugeFamily& clients_live_;
  metrics::GaugeFamily& clients_held_back_;
  std::unique_ptr<StepTimer> observer_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_MONITORING_H_
