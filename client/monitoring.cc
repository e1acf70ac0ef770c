#include "client/monitoring.h"

namespace tessera::client {

ClientMetrics::ClientMetrics(metrics::Registry* registry)
    : work_items_(registry->Counter("tessera_client_work_items_total",
                                    "Work items received from the coordinator, by stage and step.",
                                    {"stage", "step"})),
      declines_(registry->Counter("tessera_client_declines_total",
                                  "Work items this site declined, by reason.", {"reason"})),
      step_seconds_(registry->Histogram(
          "tessera_client_step_duration_seconds",
          "Time from a work item's arrival to its answer being sent, by stage and step.",
          {"stage", "step"}, metrics::DurationBuckets())),
      training_seconds_(registry->Histogram(
          "tessera_client_training_duration_seconds",
          "Local training: computing and sending the first answer of a fit session.", {},
          metrics::DurationBuckets())),
      sent_bytes_(registry->Counter("tessera_client_sent_bytes_total",
                                    "Request message bytes sent to the coordinator, by method.",
                                    {"method"})),
      received_bytes_(registry->Counter(
          "tessera_client_received_bytes_total",
          "Reply message bytes received from the coordinator, by method.", {"method"})),
      models_(registry->Counter("tessera_client_models_received_total",
                                "Work items' models received: whole, as a delta from the model "
                                "the site held, or a delta refused (then sent whole).",
                                {"form"})),
      connected_(registry
                     ->Gauge("tessera_client_connected",
                             "1 while the coordinator has accepted this site's Hello, else 0.")
                     .With({})),
      connects_(registry
                    ->Counter("tessera_client_connects_total",
                              "Hellos the coordinator accepted (the first and every reconnect).")
                    .With({})) {}

void ClientMetrics::WorkReceived(const std::string& stage, const std::string& step) {
  work_items_.With({stage, step}).Increment();
}

void ClientMetrics::Answered(const std::string& stage, const std::string& step,
                             const std::string& declined, absl::Duration took, bool training) {
  if (!declined.empty()) declines_.With({declined}).Increment();
  step_seconds_.With({stage, step}).Observe(absl::ToDoubleSeconds(took));
  if (training && declined.empty()) training_seconds_.With({}).Observe(absl::ToDoubleSeconds(took));
}

void ClientMetrics::ModelReceived(ModelForm form) {
  switch (form) {
    case ModelForm::kWhole:
      models_.With({"whole"}).Increment();
      break;
    case ModelForm::kDelta:
      models_.With({"delta"}).Increment();
      break;
    case ModelForm::kDeltaRefused:
      models_.With({"delta_refused"}).Increment();
      break;
  }
}

void ClientMetrics::Call(const std::string& method, size_t sent, size_t received) {
  sent_bytes_.With({method}).Increment(sent);
  received_bytes_.With({method}).Increment(received);
}

void ClientMetrics::SetConnected(bool connected) {
  if (connected && connected_.value() == 0) connects_.Increment();
  connected_.Set(connected ? 1 : 0);
}

bool ClientMetrics::connected() const { return connected_.value() != 0; }

}  // namespace tessera::client
