// The RocksDB Store's in-flight records (coordinator/internal/rocksdb_store_impl.h): a
// round's light record, its model-sized values apart, and the next model written only when
// it changes.
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "coordinator/internal/rocksdb_store_impl.h"
#include "coordinator/internal/store_files.h"
#include "coordinator/internal/store_records.h"
#include "coordinator/internal/store_writes.h"
#include "crypto/hash.h"
#include "proto/state.pb.h"
#include "rocksdb/write_batch.h"

namespace tessera::coordinator::internal {

absl::Status RocksDbStore::PutInFlight(const v1::InFlightRound& record) {
  return WriteInFlight(record, /*with_bulk=*/true);
}

absl::Status RocksDbStore::PutInFlightWithSnapshot(const v1::InFlightRound& record,
                                                   std::span<const std::string_view> snapshot) {
  RETURN_IF_ERROR(internal::CheckSnapshotApart(record));
  return WriteInFlight(record, /*with_bulk=*/true, snapshot);
}

absl::Status RocksDbStore::PutInFlightProgress(const v1::InFlightRound& record) {
  bool light_only = false;
  {
    absl::MutexLock lock(&mu_);
    light_only = in_flight_written_.contains(record.task_id());
  }
  // Not written whole by this store yet (a version 1 record, or another process's
  // write): read back and written whole, with the stored model-sized fields.
  if (!light_only) return Store::PutInFlightProgress(record);
  return WriteInFlight(record, /*with_bulk=*/false);
}

absl::StatusOr<v1::InFlightRound> RocksDbStore::GetInFlight(const std::string& task_id) {
  const std::string what = "GetInFlight " + task_id;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Get(in_flight_, task_id, what));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("GetInFlight: no round in flight for ", task_id));
  }
  // The values concatenated parse as the whole record (a version 1 record has neither
  // other value: it is whole already; a version 2 record has its model in the bulk
  // value). Three reads: only the task's runner reads the whole record, and it is the only
  // writer of it (GetInFlightShown reads one value).
  for (const std::string& key :
       {internal::InFlightBulkKey(task_id), internal::InFlightModelKey(task_id)}) {
    ASSIGN_OR_RETURN(std::optional<std::string> part, Get(in_flight_, key, what));
    if (part.has_value()) value->append(*part);
  }
  return internal::DecodeInFlight(task_id, *value);
}

absl::StatusOr<v1::InFlightRound> RocksDbStore::GetInFlightShown(const std::string& task_id) {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(in_flight_, task_id, "GetInFlight " + task_id));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("GetInFlight: no round in flight for ", task_id));
  }
  ASSIGN_OR_RETURN(v1::InFlightRound record, internal::DecodeInFlight(task_id, *value));
  record.clear_server_snapshot();  // a version 1 record holds them
  record.clear_next_model();
  record.clear_strategy_state();
  return record;
}

absl::Status RocksDbStore::DeleteInFlight(const std::string& task_id) {
  const std::string what = "DeleteInFlight " + task_id;
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(DeleteInFlightValues(task_id, &batch, what));
  absl::MutexLock lock(&mu_);
  in_flight_written_.erase(task_id);
  return Write(&batch, what);
}

absl::Status RocksDbStore::WriteInFlight(const v1::InFlightRound& record, bool with_bulk,
                                         std::span<const std::string_view> snapshot) {
  const std::string& task_id = record.task_id();
  const std::string what = absl::StrCat("PutInFlight ", task_id);
  ASSIGN_OR_RETURN(const std::string light,
                   SerializeValue(internal::InFlightWithoutBulk(record), "inflight"));
  if (!with_bulk) {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(ExistingTaskKey("PutInFlight", task_id).status());
    rocksdb::WriteBatch batch;
    RETURN_IF_ERROR(FromRocksDb(batch.Put(in_flight_, task_id, light), what));
    return Write(&batch, what);
  }
  const internal::InFlightBulkPieces pieces(record, snapshot);
  // Read back as one message (GetInFlight).
  RETURN_IF_ERROR(CheckRecordSize(
      light.size() + internal::PiecesSize(pieces.bulk()) + internal::PiecesSize(pieces.model()),
      "inflight"));
  crypto::Sha256Stream model_hash;
  for (std::string_view piece : pieces.model()) model_hash.Update(piece);
  const std::string model_sha256 = pieces.model().empty() ? "" : model_hash.Finish();
  const std::string bulk_key = internal::InFlightBulkKey(task_id);
  const std::string model_key = internal::InFlightModelKey(task_id);

  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(ExistingTaskKey("PutInFlight", task_id).status());
  const auto written = in_flight_written_.find(task_id);
  const bool model_stored = written != in_flight_written_.end() && written->second == model_sha256;
  const size_t model_bytes = model_stored ? 0 : internal::PiecesSize(pieces.model());
  rocksdb::WriteBatch batch(
      BatchBytes({light.size(), internal::PiecesSize(pieces.bulk()), model_bytes, task_id.size(),
                  bulk_key.size(), model_key.size()}));
  RETURN_IF_ERROR(FromRocksDb(batch.Put(in_flight_, task_id, light), what));
  RETURN_IF_ERROR(PutPiecesOrDelete(in_flight_, bulk_key, pieces.bulk(), &batch, what));
  if (!model_stored)
    RETURN_IF_ERROR(PutPiecesOrDelete(in_flight_, model_key, pieces.model(), &batch, what));
  RETURN_IF_ERROR(Write(&batch, what));
  in_flight_written_[task_id] = model_sha256;
  return absl::OkStatus();
}

absl::Status RocksDbStore::DeleteInFlightValues(const std::string& task_id,
                                                rocksdb::WriteBatch* batch,
                                                const std::string& what) {
  for (const std::string& key :
       {task_id, internal::InFlightBulkKey(task_id), internal::InFlightModelKey(task_id)}) {
    RETURN_IF_ERROR(FromRocksDb(batch->Delete(in_flight_, key), what));
  }
  return absl::OkStatus();
}

}  // namespace tessera::coordinator::internal
