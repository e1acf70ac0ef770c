#include "coordinator/store.h"

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "coordinator/internal/model_bytes.h"
#include "coordinator/internal/store_records.h"
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

absl::Status Store::PutInFlightProgress(const v1::InFlightRound& record) {
  absl::StatusOr<v1::InFlightRound> stored = GetInFlight(record.task_id());
  if (absl::IsNotFound(stored.status())) return PutInFlight(record);
  if (!stored.ok()) return stored.status();
  v1::InFlightRound whole = internal::InFlightWithoutBulk(record);
  whole.set_server_snapshot(std::move(*stored->mutable_server_snapshot()));
  whole.set_strategy_state(std::move(*stored->mutable_strategy_state()));
  if (stored->has_next_model()) whole.mutable_next_model()->Swap(stored->mutable_next_model());
  return PutInFlight(whole);
}

absl::Status Store::PutInFlightWithSnapshot(const v1::InFlightRound& record,
                                            std::span<const std::string_view> snapshot) {
  RETURN_IF_ERROR(internal::CheckSnapshotApart(record));
  v1::InFlightRound whole = record;
  std::string& joined = *whole.mutable_server_snapshot();
  joined.reserve(internal::PiecesSize(snapshot));
  for (std::string_view piece : snapshot) joined.append(piece.data(), piece.size());
  return PutInFlight(whole);
}

absl::StatusOr<std::string> Store::GetCheckpointBytes(const std::string& task_id, uint32_t round) {
  absl::StatusOr<std::vector<float>> values = GetCheckpoint(task_id, round);
  if (!values.ok()) return values.status();
  return *internal::SerializedModel(*values);
}

}  // namespace tessera::coordinator
