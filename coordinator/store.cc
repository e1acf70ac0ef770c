#include "coordinator/store.h"

#include <utility>

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

}  // namespace tessera::coordinator
