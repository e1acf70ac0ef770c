// The RocksDB Store behind OpenRocksDbStore (coordinator/store.h): its class, private to
// coordinator/rocksdb_store.cc (tasks, rounds, clients, statistics, opening) and
// coordinator/rocksdb_store_in_flight.cc (the in-flight records).
//
// On-disk layout (one column family per kind; values are serialised protos):
//   tasks    8-byte big-endian task sequence number n   -> v1::TaskRecord ("task-<n>")
//   rounds   task id + '\0' + 4-byte big-endian round    -> v1::RoundRecord
//   models   same key as rounds                          -> v1::ModelParameters
//   clients  client id                                   -> v1::ClientRecord
//   meta     "last_task_seq"                             -> 8-byte big-endian n
//            "schema_version"                            -> 4-byte big-endian version
//   inflight task id                                     -> v1::InFlightRound without its
//                                                           model-sized fields (schema 2)
//            task id + '\0' + "bulk"                     -> server_snapshot, strategy_state
//                                                           (schema 2: next_model too)
//            task id + '\0' + "model"                    -> next_model (schema 3), written
//                                                           only when it changes
//   statistics dataset id + '\0' + each column + '\0'     -> v1::PooledStatisticsRecord
// Values of 64 KiB or more live in RocksDB's blob files (*.blob) once flushed; a backup
// carries them like the table files.
// Big-endian numbers make RocksDB's bytewise order numeric order: tasks list in creation
// order and a prefix scan lists one task's rounds in round order. Task ids never contain
// '\0', so the prefix of "task-1" never matches a key of "task-10".
//
// Opened with absolute-consistency WAL recovery (internal/store_files.h): a damaged log
// record refuses the open (DATA_LOSS naming the log file) instead of silently dropping it and
// every record after it; store_repair.h is the operator's explicit way out.
// Every write is synced (WriteOptions::sync): a call that returned OK survives a crash of
// the process or the machine. Every write holds mu_: writers that read before they write
// (CreateTask, UpdateTask, CommitRound, PutInFlight) are serialised by it, and Checkpoint
// takes it to copy a write-ahead log no write is appending to. Readers take no lock
// (RocksDB reads are thread-safe; the only records ever deleted are in-flight ones, which
// are read and written by their task's runner alone).
#ifndef TESSERA_COORDINATOR_INTERNAL_ROCKSDB_STORE_IMPL_H_
#define TESSERA_COORDINATOR_INTERNAL_ROCKSDB_STORE_IMPL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store.h"
#include "proto/federation.pb.h"
#include "proto/state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/write_batch.h"

namespace tessera::coordinator::internal {

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::string directory, rocksdb::DB* db,
               std::vector<rocksdb::ColumnFamilyHandle*> handles);
  ~RocksDbStore() override;

  // Checks that every column family is open and loads the task counter. Called once,
  // before the store is shared.
  absl::Status Init();
  absl::Status Checkpoint(const std::string& directory) override;
  absl::StatusOr<std::string> CreateTask(v1::TaskRecord record) override;
  absl::Status UpdateTask(const v1::TaskRecord& record) override;
  absl::StatusOr<v1::TaskRecord> GetTask(const std::string& task_id) override;
  absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks() override;
  absl::Status CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                           std::span<const float> model, const v1::RoundRecord* previous) override;
  absl::Status PutInFlight(const v1::InFlightRound& record) override;
  absl::Status PutInFlightWithSnapshot(const v1::InFlightRound& record,
                                       std::span<const std::string_view> snapshot) override;
  absl::Status PutInFlightProgress(const v1::InFlightRound& record) override;
  absl::StatusOr<v1::InFlightRound> GetInFlight(const std::string& task_id) override;
  absl::StatusOr<v1::InFlightRound> GetInFlightShown(const std::string& task_id) override;
  absl::Status DeleteInFlight(const std::string& task_id) override;
  absl::Status PutStatistics(const v1::PooledStatisticsRecord& record) override;
  absl::StatusOr<v1::PooledStatisticsRecord> GetStatistics(
      const std::string& dataset_id, const std::vector<std::string>& columns) override;
  absl::StatusOr<std::vector<v1::RoundRecord>> ListRounds(const std::string& task_id) override;
  absl::StatusOr<std::vector<float>> GetCheckpoint(const std::string& task_id,
                                                   uint32_t round) override;

  // The stored value as it is when it is written as SerializedModel writes one (every
  // checkpoint this store writes: ModelPieces); otherwise decoded and written so.
  absl::StatusOr<std::string> GetCheckpointBytes(const std::string& task_id,
                                                 uint32_t round) override;
  absl::Status PutClient(const v1::ClientRecord& record) override;
  absl::StatusOr<v1::ClientRecord> GetClient(const std::string& client_id) override;
  absl::StatusOr<std::vector<v1::ClientRecord>> ListClients() override;

 private:
  static absl::Status TaskNotFound(const char* op, const std::string& task_id);

  // The in-flight record as its values (internal/store_records.h, InFlightBulkPieces): the
  // light part always; the snapshot and strategy state `with_bulk` (!with_bulk: a task this
  // process wrote whole, whose stored ones stay: PutInFlightProgress); the next model when
  // it differs from the one this process last wrote for the task (its SHA-256: the model is
  // the same through the steps of the evaluation that follows an update). Only the light
  // part is serialised; the model-sized fields are written as views of the record
  // (InFlightBulkPieces), the snapshot as `snapshot`'s pieces if there are any. Only the
  // task's runner writes its record, so what in_flight_written_ says of it does not change
  // between the two looks.
  absl::Status WriteInFlight(const v1::InFlightRound& record, bool with_bulk,
                             std::span<const std::string_view> snapshot = {});

  // Deletes every value of a task's in-flight record in `batch`.
  absl::Status DeleteInFlightValues(const std::string& task_id, rocksdb::WriteBatch* batch,
                                    const std::string& what);

  // The models value of the checkpoint `description` of `task_id`'s `round`, or NOT_FOUND.
  absl::StatusOr<std::string> CheckpointValue(const std::string& task_id, uint32_t round,
                                              const std::string& description);

  static absl::Status CheckpointNotFound(const std::string& description);

  // Refuses a store of a newer layout; stamps an unversioned one (a new store, or one from
  // before versions existed: the same layout as version 1) with kStoreSchemaVersion.
  absl::Status CheckSchemaVersion();

  // nullopt if the key is absent.
  absl::StatusOr<std::optional<std::string>> Get(rocksdb::ColumnFamilyHandle* cf,
                                                 const rocksdb::Slice& key,
                                                 const std::string& what);

  // Writes `batch` (synced); once written, empties it, releasing its buffer. Every write
  // holds mu_: Checkpoint relies on it to copy a log no write is appending to.
  // A large write is followed by FlushHalfFullMemtables only once the batch's copy of its
  // values is gone: the flush copies a large value once more (RocksDB's blob writer
  // reserves a string of the value's size for the record's header), and a slow flush
  // could otherwise hold it while the batch still did (seen under heaptrack at n = 200:
  // the share relays of a boundary's snapshot, 7.5 MB, in the batch, the memtable and the
  // flush at once; docs/performance.md).
  absl::Status Write(rocksdb::WriteBatch* batch, const std::string& what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The key of an existing task, or NOT_FOUND.
  absl::StatusOr<std::string> ExistingTaskKey(const char* op, const std::string& task_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string directory_;
  const std::unique_ptr<rocksdb::DB> db_;
  // Every handle opened (ours and any family a newer version added); destroyed before db_.
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* tasks_ = nullptr;
  rocksdb::ColumnFamilyHandle* rounds_ = nullptr;
  rocksdb::ColumnFamilyHandle* models_ = nullptr;
  rocksdb::ColumnFamilyHandle* clients_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* in_flight_ = nullptr;
  // Tasks whose in-flight record this process has written whole (WriteInFlight), each with
  // the SHA-256 of the next model it wrote ("" for none).
  absl::flat_hash_map<std::string, std::string> in_flight_written_ ABSL_GUARDED_BY(mu_);
  rocksdb::ColumnFamilyHandle* statistics_ = nullptr;
  rocksdb::WriteOptions write_options_;

  // Serialises read-modify-write: the counter and the task-existence checks.
  absl::Mutex mu_;
  uint64_t last_task_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_ROCKSDB_STORE_IMPL_H_
