// How the coordinator's RocksDB store (coordinator/rocksdb_store.cc; its layout is
// documented in coordinator/internal/rocksdb_store_impl.h) spells its keys and reads its records
// back: pure functions, so that what a damaged record does is decided here, tested and fuzzed
// (tests/fuzz/ coordinator_records_fuzz.cc) without a database.
//
// Every decoder checks that the record parses and that it is the record of the key it is
// stored under; otherwise DATA_LOSS "stored <family> record of <key> ..." (or "... key
// ..."), naming the family and the key, never quoting the value. Thread-safe (no state).
#ifndef TESSERA_COORDINATOR_INTERNAL_STORE_RECORDS_H_
#define TESSERA_COORDINATOR_INTERNAL_STORE_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/internal/model_bytes.h"
#include "proto/federation.pb.h"
#include "proto/state.pb.h"

namespace tessera::coordinator::internal {

// ---- keys

// Appends the low `bytes` bytes of `value`, most significant first.
void AppendBigEndian(uint64_t value, int bytes, std::string* out);
// The number `bytes` (at most 8) holds, most significant first.
uint64_t ReadBigEndian(std::string_view bytes);

// tasks: the 8-byte big-endian sequence number.
std::string TaskKey(uint64_t seq);
// rounds and models: the task id, a NUL, the 4-byte big-endian round.
std::string RoundPrefix(const std::string& task_id);
std::string RoundKey(const std::string& task_id, uint32_t round);

// ---- records

// A tasks record stored under `key` (8 bytes; the record's task_id must be the one the key
// numbers).
absl::StatusOr<v1::TaskRecord> DecodeTask(std::string_view key, std::string_view value);

// A rounds record of `task_id` stored under `key` (RoundPrefix(task_id) + 4 bytes; the
// record must name that task and round).
absl::StatusOr<v1::RoundRecord> DecodeRound(const std::string& task_id, std::string_view key,
                                            std::string_view value);

// A models record: the parameters of the checkpoint `description` ("task-3 round 7").
absl::StatusOr<std::vector<float>> DecodeCheckpoint(const std::string& description,
                                                    std::string_view value);

// An inflight record stored under `task_id`.
absl::StatusOr<v1::InFlightRound> DecodeInFlight(const std::string& task_id,
                                                 std::string_view value);

// inflight (schema version 3): a record is kept as up to three values, each an
// InFlightRound with the task id, so that each parses as a record of the task and their
// concatenation as the whole record:
//   task id                 the record without its model-sized fields (InFlightWithoutBulk)
//   InFlightBulkKey(id)     server_snapshot and strategy_state (schema 2: next_model too)
//   InFlightModelKey(id)    next_model (schema 3), written only when it changes
std::string InFlightBulkKey(const std::string& task_id);
std::string InFlightModelKey(const std::string& task_id);

// Values written as pieces (rocksdb::SliceParts): field headers owned here, model-sized
// bytes viewed where they already are, never copied (a model's: ModelPieces,
// model_bytes.h).

// The bulk and model values of `record` (schema version 3) as pieces, without copying the
// snapshot, the strategy's state or the model. With `snapshot` pieces, those are the
// record's server snapshot (record.server_snapshot is then empty: CheckSnapshotApart).
// Views `record` and `snapshot`'s bytes, which must outlive it and stay unchanged; not
// movable.
class InFlightBulkPieces {
 public:
  explicit InFlightBulkPieces(const v1::InFlightRound& record,
                              std::span<const std::string_view> snapshot = {});
  InFlightBulkPieces(const InFlightBulkPieces&) = delete;
  InFlightBulkPieces& operator=(const InFlightBulkPieces&) = delete;

  // Empty when the record has neither a snapshot nor a strategy state.
  const std::vector<std::string_view>& bulk() const { return bulk_; }
  // Empty when the record has no next model.
  const std::vector<std::string_view>& model() const { return model_; }

 private:
  std::string task_id_field_;
  std::string snapshot_header_;
  std::string strategy_header_;
  std::string model_header_;
  std::optional<ModelPieces> model_values_;
  std::string model_serialized_;  // only when the model has unknown fields (a newer version)
  std::vector<std::string_view> bulk_;
  std::vector<std::string_view> model_;
};

// Bytes in `pieces`.
size_t PiecesSize(std::span<const std::string_view> pieces);

// INVALID_ARGUMENT if `record` holds a server snapshot although one is given apart, as
// pieces (Store::PutInFlightWithSnapshot).
absl::Status CheckSnapshotApart(const v1::InFlightRound& record);

// `record` without its model-sized fields (the light part's content, unknown fields
// kept), copied without copying those fields: what a progress write serialises.
v1::InFlightRound InFlightWithoutBulk(const v1::InFlightRound& record);

// A clients record stored under `client_id`.
absl::StatusOr<v1::ClientRecord> DecodeClient(const std::string& client_id, std::string_view value);

// A statistics record stored under StatisticsKey(dataset_id, columns) (task_id.h): it must
// name that dataset and those columns, in order.
absl::StatusOr<v1::PooledStatisticsRecord> DecodeStatistics(const std::string& dataset_id,
                                                            const std::vector<std::string>& columns,
                                                            std::string_view value);

// The meta records of the store in `directory`: last_task_seq (8 bytes) and schema_version
// (4 bytes).
absl::StatusOr<uint64_t> DecodeLastTaskSeq(const std::string& directory, std::string_view value);
absl::StatusOr<uint64_t> DecodeSchemaVersion(const std::string& directory, std::string_view value);

// ---- arguments both stores (RocksDB and memory) check alike

// INVALID_ARGUMENT unless Store::CommitRound's records agree: `round` of `task`, and
// `previous` (may be null) of the same task and the round before.
absl::Status CheckCommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                              const v1::RoundRecord* previous);
// INVALID_ARGUMENT: CommitRound was given a `previous` record of a round not committed.
absl::Status PreviousNotCommitted(const v1::RoundRecord& previous);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_STORE_RECORDS_H_
