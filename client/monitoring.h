// The client daemon's Prometheus metrics (docs/monitoring.md lists each with its labels):
// work items by stage and step, declines by reason, message bytes sent and received by
// method, models received whole or as deltas, the time each answer took, local training time, and
// whether the daemon is connected to the coordinator. Only counts, durations, sizes and enum names:
// nothing computed from the site's data.
//
// Thread-safe (atomics); the registry must outlive this object.
#ifndef TESSERA_CLIENT_MONITORING_H_
#define TESSERA_CLIENT_MONITORING_H_

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "metrics/registry.h"

namespace tessera::client {

class ClientMetrics {
 public:
  explicit ClientMetrics(metrics::Registry* registry);

  // A work item arrived for (stage, step) labels (proto/labels.h).
  void WorkReceived(const std::string& stage, const std::string& step);
  // The site answered it after `took` (computing and sending); `declined` names the decline
  // reason (Decline.Reason's name), empty for a protocol answer. `training` is set for the
  // first step of a fit session, where the site trains.
  void Answered(const std::string& stage, const std::string& step, const std::string& declined,
                absl::Duration took, bool training);
  // One call's request and reply sizes, by method ("/tessera.v1.Federation/PushResult").
  void Call(const std::string& method, size_t sent, size_t received);
  // A work item's model arrived: whole (inline or apart) or as a delta from the model the
  // site held (WorkItem.model_delta); `refused` for a delta that did not add up.
  enum class ModelForm { kWhole, kDelta, kDeltaRefused };
  void ModelReceived(ModelForm form);
  // The coordinator accepted a Hello (true) or a call failed and the daemon reconnects.
  void SetConnected(bool connected);
  bool connected() const;

 private:
  metrics::CounterFamily& work_items_;
  metrics::CounterFamily& declines_;
  metrics::HistogramFamily& step_seconds_;
  metrics::HistogramFamily& training_seconds_;
  metrics::CounterFamily& sent_bytes_;
  metrics::CounterFamily& received_bytes_;
  metrics::CounterFamily& models_;
  metrics::Gauge& connected_;
  metrics::Counter& connects_;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_MONITORING_H_
