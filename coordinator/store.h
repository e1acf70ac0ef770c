// The coordinator's durable state, behind an interface: a RocksDB implementation for the
// daemon, an in-memory one for tests, and a fault-injecting wrapper for crash tests.
//
// Kinds of records (one RocksDB column family each): tasks, rounds, models (one
// checkpoint per task and round), clients (registry), meta (counters), inflight (the round
// a task is in the middle of: its secure-aggregation session at the last step boundary,
// so that a restart continues the same session) and statistics (pooled statistics per
// dataset and columns, shared by tasks). A round commits in one atomic write: its record,
// its checkpoint, the updated task record and the removal of its in-flight record
// together, so after a crash either all of them are there or none is.
//
// Implementations are thread-safe. Error codes: NOT_FOUND for a missing record,
// ALREADY_EXISTS for a duplicate, DATA_LOSS for a stored record that does not parse,
// INTERNAL/UNAVAILABLE for storage failures (the message names the operation and key).
#ifndef TESSERA_COORDINATOR_STORE_H_
#define TESSERA_COORDINATOR_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tessera::v1 {
class TaskRecord;
class RoundRecord;
class ClientRecord;
class InFlightRound;
class PooledStatisticsRecord;
}  // namespace tessera::v1

namespace tessera::coordinator {

// The layout version of the coordinator's durable store (rocksdb_store.cc), kept in its
// meta records. A coordinator opens a store of its own version or older (stamping an
// unversioned store from before versions existed with 1) and refuses a newer one.
// Raise it whenever a change makes the store unreadable for an older coordinator, with
// the upgrade in OpenRocksDbStore and a note in docs/operations.md ("Upgrading").
// Version 2 (5 December 2026): an in-flight record's model-sized fields are a value of their
// own (rocksdb_store.cc); version 1 records are read as they are.
// Version 3 (6 December 2026): the next model of a round in flight is a value of its own,
// written only when it changes; version 2 records (the model with the snapshot) are read
// as they are.
inline constexpr uint32_t kStoreSchemaVersion = 3;

class Store {
 public:
  virtual ~Store() = default;

  // Assigns the next task id ("task-1", "task-2", ...; never reused, also across
  // restarts), sets it in `record` (replacing any id the caller put there) and stores the
  // record, atomically. Returns the id.
  virtual absl::StatusOr<std::string> CreateTask(v1::TaskRecord record) = 0;

  // Replaces an existing task record. NOT_FOUND if there is none with that id.
  virtual absl::Status UpdateTask(const v1::TaskRecord& record) = 0;

  // NOT_FOUND if there is no such task (including any id not of the form "task-<n>").
  virtual absl::StatusOr<v1::TaskRecord> GetTask(const std::string& task_id) = 0;

  // All tasks, in creation order.
  virtual absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks() = 0;

  // One atomic write: `round` (keyed by task id and round number, replacing an earlier
  // record of the same round), the model checkpoint for that round, `task`, the removal
  // of the task's in-flight record and, when `previous` is not null, `previous` replacing
  // the committed record of round round.round() - 1 (one session per round: that round's
  // evaluation arrives with this one). INVALID_ARGUMENT if round.task_id() !=
  // task.task_id(), or `previous` is not of that task and round or that round is not
  // committed; NOT_FOUND if the task does not exist. Nothing is written on an error.
  virtual absl::Status CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                                   std::span<const float> model,
                                   const v1::RoundRecord* previous) = 0;
  absl::Status CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                           std::span<const float> model) {
    return CommitRound(task, round, model, nullptr);
  }

  // Committed rounds of a task in round order (empty if none).
  virtual absl::StatusOr<std::vector<v1::RoundRecord>> ListRounds(const std::string& task_id) = 0;

  // The checkpoint committed with `round`. NOT_FOUND if none.
  virtual absl::StatusOr<std::vector<float>> GetCheckpoint(const std::string& task_id,
                                                           uint32_t round) = 0;
  // The same checkpoint as the bytes of a serialized v1::ModelParameters, exactly as
  // internal::SerializedModel writes its values (one packed field; internal/model_bytes.h):
  // what the sites are sent, read without decoding the floats. Errors as GetCheckpoint.
  // By default GetCheckpoint, serialized.
  virtual absl::StatusOr<std::string> GetCheckpointBytes(const std::string& task_id,
                                                         uint32_t round);

  // Replaces the task's in-flight record (there is at most one per task). NOT_FOUND if the
  // task does not exist.
  virtual absl::Status PutInFlight(const v1::InFlightRound& record) = 0;
  // PutInFlight(record with server_snapshot set to the concatenation of `snapshot`): the
  // snapshot of a step boundary handed over as pieces that view the secure-aggregation
  // server's share relays and running sum (SecAggServer::SnapshotInPieces; megabytes), so
  // that an implementation can write it without a copy of its own. record.server_snapshot
  // must be empty (INVALID_ARGUMENT otherwise). By default the pieces are joined into a
  // copy of the record, which PutInFlight writes.
  virtual absl::Status PutInFlightWithSnapshot(const v1::InFlightRound& record,
                                               std::span<const std::string_view> snapshot);
  // PutInFlight of what an operator is shown (the running session's answers): the stored
  // model-sized fields (server_snapshot, next_model, strategy_state; megabytes at
  // d = 10^6) stay as the task's last PutInFlight left them, whatever `record` holds of
  // them (the task runner lets go of a step boundary's snapshot once it is written). With
  // no round in flight stored, PutInFlight(record). By default the stored record is read
  // back and written whole; an implementation may write the rest only.
  virtual absl::Status PutInFlightProgress(const v1::InFlightRound& record);
  // NOT_FOUND if the task has no round in flight.
  virtual absl::StatusOr<v1::InFlightRound> GetInFlight(const std::string& task_id) = 0;
  // GetInFlight without server_snapshot, next_model and strategy_state (what an operator is
  // shown); an implementation may skip reading them. By default GetInFlight, then cleared.
  virtual absl::StatusOr<v1::InFlightRound> GetInFlightShown(const std::string& task_id);
  // Removes it (a task that ends without committing the round); OK if there is none.
  virtual absl::Status DeleteInFlight(const std::string& task_id) = 0;

  // Pooled statistics of a dataset's columns, keyed by (dataset id, columns in order).
  // Replaces an earlier record with the same key. INVALID_ARGUMENT if the dataset id or the
  // columns are empty.
  virtual absl::Status PutStatistics(const v1::PooledStatisticsRecord& record) = 0;
  // NOT_FOUND if none.
  virtual absl::StatusOr<v1::PooledStatisticsRecord> GetStatistics(
      const std::string& dataset_id, const std::vector<std::string>& columns) = 0;

  // Inserts or replaces the registry entry of record.client_id(). INVALID_ARGUMENT if
  // the id is empty.
  virtual absl::Status PutClient(const v1::ClientRecord& record) = 0;
  virtual absl::StatusOr<v1::ClientRecord> GetClient(const std::string& client_id) = 0;
  // All clients, sorted by id.
  virtual absl::StatusOr<std::vector<v1::ClientRecord>> ListClients() = 0;

  // Writes a consistent copy of the whole store, as of one instant, into `directory`,
  // which must not exist yet (its parent must); concurrent writers go on meanwhile. On
  // the same filesystem the copy hard-links the immutable files, so it is fast and small.
  // UNIMPLEMENTED for a store that is not durable (the in-memory one).
  virtual absl::Status Checkpoint(const std::string& directory) = 0;
};

// Opens (creating if needed) the RocksDB store in `directory`. FAILED_PRECONDITION if
// another process holds it (RocksDB's LOCK file) or if it was written by a newer
// coordinator (a schema version above kStoreSchemaVersion); the message names the
// directory and, for the latter, both versions. DATA_LOSS for damage, never silently
// dropped: a damaged write-ahead log record (absolute-consistency recovery) names the log
// file and the ways out (a backup, store_repair.h).
absl::StatusOr<std::unique_ptr<Store>> OpenRocksDbStore(const std::string& directory);

// A fresh, empty, in-memory store with the same semantics.
std::unique_ptr<Store> NewMemoryStore();

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_STORE_H_
