#include "coordinator/store.h"

#include <utility>

#include "coordinator/internal/model_bytes.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {

absl::StatusOr<v1::InFlightRound> Store::GetInFlightShown(const std::string& task_id) {
  absl::StatusOr<v1::InFlightRound> record = GetInFlight(task_id);
  if (!record.ok()) return record;
  record->clear_server_snapshot();
  record->clear_next_model();
  record->clear_strategy_state();
  return record;
}

absl::StatusOr<std::string> Store::GetCheckpointBytes(const std::string& task_id, uint32_t round) {
  absl::StatusOr<std::vector<float>> values = GetCheckpoint(task_id, round);
  if (!values.ok()) return values.status();
  return *internal::SerializedModel(*values);
}

}  // namespace tessera::coordinator
