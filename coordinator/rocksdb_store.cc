// The RocksDB Store.
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

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "common/status.h"
#include "coordinator/internal/model_bytes.h"
#include "coordinator/internal/store_files.h"
#include "coordinator/internal/store_records.h"
#include "coordinator/internal/store_writes.h"
#include "coordinator/internal/task_id.h"
#include "coordinator/store.h"
#include "crypto/hash.h"
#include "proto/federation.pb.h"
#include "proto/state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "rocksdb_status/rocksdb_status.h"

namespace tessera::coordinator {
namespace {

using internal::AppendBigEndian;
using internal::BatchBytes;
using internal::CheckRecordSize;
using internal::FromRocksDb;
using internal::PutPiecesOrDelete;
using internal::ReadBigEndian;
using internal::RoundKey;
using internal::RoundPrefix;
using internal::SerializeValue;
using internal::TaskKey;

constexpr char kTasksCf[] = "tasks";
constexpr char kRoundsCf[] = "rounds";
constexpr char kModelsCf[] = "models";
constexpr char kClientsCf[] = "clients";
constexpr char kMetaCf[] = "meta";
constexpr char kInFlightCf[] = "inflight";
constexpr char kStatisticsCf[] = "statistics";
constexpr char kLastTaskSeqKey[] = "last_task_seq";
constexpr char kSchemaVersionKey[] = "schema_version";

std::string_view View(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::string directory, rocksdb::DB* db,
               std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : directory_(std::move(directory)), db_(db), handles_(std::move(handles)) {
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      const std::string& name = h->GetName();
      if (name == kTasksCf) tasks_ = h;
      if (name == kRoundsCf) rounds_ = h;
      if (name == kModelsCf) models_ = h;
      if (name == kClientsCf) clients_ = h;
      if (name == kMetaCf) meta_ = h;
      if (name == kInFlightCf) in_flight_ = h;
      if (name == kStatisticsCf) statistics_ = h;
    }
    write_options_.sync = true;
  }

  ~RocksDbStore() override {
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      // Refused only for a handle the DB owns itself; nothing to do about it then.
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();  // every write was synced already
  }

  // Checks that every column family is open and loads the task counter. Called once,
  // before the store is shared.
  absl::Status Init() {
    if (tasks_ == nullptr || rounds_ == nullptr || models_ == nullptr || clients_ == nullptr ||
        meta_ == nullptr || in_flight_ == nullptr || statistics_ == nullptr) {
      return absl::InternalError(
          absl::StrCat("opening ", directory_, ": a column family is missing after open"));
    }
    ASSIGN_OR_RETURN(std::optional<std::string> counter,
                     Get(meta_, kLastTaskSeqKey, "meta last_task_seq"));
    uint64_t last_seq = 0;
    if (counter.has_value()) {
      ASSIGN_OR_RETURN(last_seq, internal::DecodeLastTaskSeq(directory_, *counter));
    }
    // The counter and the newest task are written in one batch; a newer task than the
    // counter would let an id be handed out twice.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), tasks_));
    it->SeekToLast();
    RETURN_IF_ERROR(FromRocksDb(it->status(), "opening " + directory_ + ": reading tasks"));
    if (it->Valid() && it->key().size() != 8) {
      return absl::DataLossError(absl::StrCat("stored tasks key in ", directory_, " has length ",
                                              it->key().size(), ", want 8"));
    }
    if (it->Valid() && ReadBigEndian(View(it->key())) > last_seq) {
      return absl::DataLossError(absl::StrCat("stored meta record last_task_seq in ", directory_,
                                              " is behind the stored tasks"));
    }
    RETURN_IF_ERROR(CheckSchemaVersion());
    absl::MutexLock lock(&mu_);
    last_task_seq_ = last_seq;
    return absl::OkStatus();
  }

  absl::Status Checkpoint(const std::string& directory) override {
    rocksdb::Checkpoint* raw = nullptr;
    const std::string what = "checkpoint of " + directory_ + " into " + directory;
    RETURN_IF_ERROR(FromRocksDb(rocksdb::Checkpoint::Create(db_.get(), &raw), what));
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // Flushes the memtables first (log_size_for_flush 0). RocksDB still copies the live
    // write-ahead log, up to the size it had when listed: a write appending to it at that
    // moment would leave the copy ending in a torn record, which the absolute-consistency
    // recovery then refuses as damage (seen in CI: "truncated record body" in a restored
    // backup). Every write holds mu_, so holding it here leaves the log still while it is
    // copied; writers wait for the checkpoint (a flush and hard links: milliseconds).
    absl::MutexLock lock(&mu_);
    return FromRocksDb(checkpoint->CreateCheckpoint(directory, /*log_size_for_flush=*/0), what);
  }

  absl::StatusOr<std::string> CreateTask(v1::TaskRecord record) override {
    absl::MutexLock lock(&mu_);
    const uint64_t seq = last_task_seq_ + 1;
    record.set_task_id(internal::FormatTaskId(seq));
    ASSIGN_OR_RETURN(std::string value, SerializeValue(record, "tasks"));
    std::string counter;
    AppendBigEndian(seq, 8, &counter);
    rocksdb::WriteBatch batch;
    const std::string what = "CreateTask " + record.task_id();
    RETURN_IF_ERROR(FromRocksDb(batch.Put(tasks_, TaskKey(seq), value), what));
    RETURN_IF_ERROR(FromRocksDb(batch.Put(meta_, kLastTaskSeqKey, counter), what));
    const absl::Status written = Write(&batch, what);
    // A failed write may still have reached the disk (the WAL append went through, the
    // sync did not): never hand this id out again. Ids stay unique; they may skip.
    last_task_seq_ = seq;
    RETURN_IF_ERROR(written);
    return record.task_id();
  }

  absl::Status UpdateTask(const v1::TaskRecord& record) override {
    ASSIGN_OR_RETURN(std::string value, SerializeValue(record, "tasks"));
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(std::string key, ExistingTaskKey("UpdateTask", record.task_id()));
    rocksdb::WriteBatch batch;
    const std::string what = "UpdateTask " + record.task_id();
    RETURN_IF_ERROR(FromRocksDb(batch.Put(tasks_, key, value), what));
    return Write(&batch, what);
  }

  absl::StatusOr<v1::TaskRecord> GetTask(const std::string& task_id) override {
    const std::optional<uint64_t> seq = internal::ParseTaskId(task_id);
    if (!seq.has_value()) return TaskNotFound("GetTask", task_id);
    ASSIGN_OR_RETURN(std::optional<std::string> value,
                     Get(tasks_, TaskKey(*seq), "GetTask " + task_id));
    if (!value.has_value()) return TaskNotFound("GetTask", task_id);
    return internal::DecodeTask(TaskKey(*seq), *value);
  }

  absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks() override {
    std::vector<v1::TaskRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), tasks_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ASSIGN_OR_RETURN(v1::TaskRecord record,
                       internal::DecodeTask(View(it->key()), View(it->value())));
      out.push_back(std::move(record));
    }
    RETURN_IF_ERROR(FromRocksDb(it->status(), "ListTasks"));
    return out;
  }

  absl::Status CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                           std::span<const float> model, const v1::RoundRecord* previous) override {
    RETURN_IF_ERROR(internal::CheckCommitRound(task, round, previous));
    // The checkpoint is written as views of `model` (no copy of it serialised).
    const internal::ModelPieces model_value(model);
    RETURN_IF_ERROR(CheckRecordSize(model_value.size(), "models"));
    ASSIGN_OR_RETURN(std::string round_value, SerializeValue(round, "rounds"));
    ASSIGN_OR_RETURN(std::string task_value, SerializeValue(task, "tasks"));
    std::string previous_value;
    if (previous != nullptr) {
      ASSIGN_OR_RETURN(previous_value, SerializeValue(*previous, "rounds"));
    }

    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(std::string task_key, ExistingTaskKey("CommitRound", task.task_id()));
    const std::string round_key = RoundKey(task.task_id(), round.round());
    const std::string what = absl::StrCat("CommitRound ", task.task_id(), " round ", round.round());
    rocksdb::WriteBatch batch(
        BatchBytes({previous_value.size(), round_value.size(), model_value.size(),
                    task_value.size(), 6 * round_key.size()}));  // six keys at most
    if (previous != nullptr) {
      const std::string previous_key = RoundKey(task.task_id(), previous->round());
      ASSIGN_OR_RETURN(std::optional<std::string> stored, Get(rounds_, previous_key, what));
      if (!stored.has_value()) return internal::PreviousNotCommitted(*previous);
      RETURN_IF_ERROR(FromRocksDb(batch.Put(rounds_, previous_key, previous_value), what));
    }
    RETURN_IF_ERROR(FromRocksDb(batch.Put(rounds_, round_key, round_value), what));
    const rocksdb::Slice round_key_slice(round_key);
    const std::vector<rocksdb::Slice> model_slices(model_value.pieces().begin(),
                                                   model_value.pieces().end());
    RETURN_IF_ERROR(FromRocksDb(
        batch.Put(models_, rocksdb::SliceParts(&round_key_slice, 1),
                  rocksdb::SliceParts(model_slices.data(), static_cast<int>(model_slices.size()))),
        what));
    RETURN_IF_ERROR(FromRocksDb(batch.Put(tasks_, task_key, task_value), what));
    RETURN_IF_ERROR(DeleteInFlightValues(task.task_id(), &batch, what));
    in_flight_written_.erase(task.task_id());
    return Write(&batch, what);
  }

  absl::Status PutInFlight(const v1::InFlightRound& record) override {
    return WriteInFlight(record, /*with_bulk=*/true);
  }

  absl::Status PutInFlightWithSnapshot(const v1::InFlightRound& record,
                                       std::span<const std::string_view> snapshot) override {
    RETURN_IF_ERROR(internal::CheckSnapshotApart(record));
    return WriteInFlight(record, /*with_bulk=*/true, snapshot);
  }

  absl::Status PutInFlightProgress(const v1::InFlightRound& record) override {
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

  absl::StatusOr<v1::InFlightRound> GetInFlight(const std::string& task_id) override {
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

  absl::StatusOr<v1::InFlightRound> GetInFlightShown(const std::string& task_id) override {
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

  absl::Status DeleteInFlight(const std::string& task_id) override {
    const std::string what = "DeleteInFlight " + task_id;
    rocksdb::WriteBatch batch;
    RETURN_IF_ERROR(DeleteInFlightValues(task_id, &batch, what));
    absl::MutexLock lock(&mu_);
    in_flight_written_.erase(task_id);
    return Write(&batch, what);
  }

  absl::Status PutStatistics(const v1::PooledStatisticsRecord& record) override {
    ASSIGN_OR_RETURN(std::string key,
                     internal::StatisticsKey(record.dataset_id(),
                                             {record.columns().begin(), record.columns().end()}));
    ASSIGN_OR_RETURN(std::string value, SerializeValue(record, "statistics"));
    const std::string what = "PutStatistics " + record.dataset_id();
    rocksdb::WriteBatch batch;
    RETURN_IF_ERROR(FromRocksDb(batch.Put(statistics_, key, value), what));
    absl::MutexLock lock(&mu_);
    return Write(&batch, what);
  }

  absl::StatusOr<v1::PooledStatisticsRecord> GetStatistics(
      const std::string& dataset_id, const std::vector<std::string>& columns) override {
    ASSIGN_OR_RETURN(std::string key, internal::StatisticsKey(dataset_id, columns));
    ASSIGN_OR_RETURN(std::optional<std::string> value,
                     Get(statistics_, key, "GetStatistics " + dataset_id));
    if (!value.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("GetStatistics: no pooled statistics for dataset ", dataset_id));
    }
    return internal::DecodeStatistics(dataset_id, columns, *value);
  }

  absl::StatusOr<std::vector<v1::RoundRecord>> ListRounds(const std::string& task_id) override {
    std::vector<v1::RoundRecord> out;
    // Only canonical ids have rounds; anything else (say, an id containing '\0') must not
    // be used as a key prefix.
    if (!internal::ParseTaskId(task_id).has_value()) return out;
    const std::string prefix = RoundPrefix(task_id);
    std::string upper = prefix;
    upper.back() = '\x01';  // the first key after every key starting with `prefix`
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions options;
    options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, rounds_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      ASSIGN_OR_RETURN(v1::RoundRecord record,
                       internal::DecodeRound(task_id, View(it->key()), View(it->value())));
      out.push_back(std::move(record));
    }
    RETURN_IF_ERROR(FromRocksDb(it->status(), "ListRounds " + task_id));
    return out;
  }

  absl::StatusOr<std::vector<float>> GetCheckpoint(const std::string& task_id,
                                                   uint32_t round) override {
    const std::string description = absl::StrCat(task_id, " round ", round);
    ASSIGN_OR_RETURN(const std::string value, CheckpointValue(task_id, round, description));
    return internal::DecodeCheckpoint(description, value);
  }

  // The stored value as it is when it is written as SerializedModel writes one (every
  // checkpoint this store writes: ModelPieces); otherwise decoded and written so.
  absl::StatusOr<std::string> GetCheckpointBytes(const std::string& task_id,
                                                 uint32_t round) override {
    const std::string description = absl::StrCat(task_id, " round ", round);
    ASSIGN_OR_RETURN(std::string value, CheckpointValue(task_id, round, description));
    if (internal::PackedModelWords(value).has_value()) return value;
    ASSIGN_OR_RETURN(const std::vector<float> values,
                     internal::DecodeCheckpoint(description, value));
    return *internal::SerializedModel(values);
  }

  absl::Status PutClient(const v1::ClientRecord& record) override {
    if (record.client_id().empty()) {
      return absl::InvalidArgumentError("PutClient: client_id is empty");
    }
    ASSIGN_OR_RETURN(std::string value, SerializeValue(record, "clients"));
    rocksdb::WriteBatch batch;
    const std::string what = "PutClient " + record.client_id();
    RETURN_IF_ERROR(FromRocksDb(batch.Put(clients_, record.client_id(), value), what));
    absl::MutexLock lock(&mu_);
    return Write(&batch, what);
  }

  absl::StatusOr<v1::ClientRecord> GetClient(const std::string& client_id) override {
    ASSIGN_OR_RETURN(std::optional<std::string> value,
                     Get(clients_, client_id, "GetClient " + client_id));
    if (!value.has_value()) {
      return absl::NotFoundError(absl::StrCat("GetClient: no client \"", client_id, "\""));
    }
    return internal::DecodeClient(client_id, *value);
  }

  absl::StatusOr<std::vector<v1::ClientRecord>> ListClients() override {
    std::vector<v1::ClientRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), clients_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ASSIGN_OR_RETURN(v1::ClientRecord record,
                       internal::DecodeClient(std::string(View(it->key())), View(it->value())));
      out.push_back(std::move(record));
    }
    RETURN_IF_ERROR(FromRocksDb(it->status(), "ListClients"));
    return out;
  }

 private:
  static absl::Status TaskNotFound(const char* op, const std::string& task_id) {
    return absl::NotFoundError(absl::StrCat(op, ": no task \"", task_id, "\""));
  }

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
                             std::span<const std::string_view> snapshot = {}) {
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
    const bool model_stored =
        written != in_flight_written_.end() && written->second == model_sha256;
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

  // Deletes every value of a task's in-flight record in `batch`.
  absl::Status DeleteInFlightValues(const std::string& task_id, rocksdb::WriteBatch* batch,
                                    const std::string& what) {
    for (const std::string& key :
         {task_id, internal::InFlightBulkKey(task_id), internal::InFlightModelKey(task_id)}) {
      RETURN_IF_ERROR(FromRocksDb(batch->Delete(in_flight_, key), what));
    }
    return absl::OkStatus();
  }

  // The models value of the checkpoint `description` of `task_id`'s `round`, or NOT_FOUND.
  absl::StatusOr<std::string> CheckpointValue(const std::string& task_id, uint32_t round,
                                              const std::string& description) {
    if (!internal::ParseTaskId(task_id).has_value()) return CheckpointNotFound(description);
    ASSIGN_OR_RETURN(std::optional<std::string> value,
                     Get(models_, RoundKey(task_id, round), "GetCheckpoint " + description));
    if (!value.has_value()) return CheckpointNotFound(description);
    return *std::move(value);
  }

  static absl::Status CheckpointNotFound(const std::string& description) {
    return absl::NotFoundError(absl::StrCat("GetCheckpoint: no checkpoint for ", description));
  }

  // Refuses a store of a newer layout; stamps an unversioned one (a new store, or one from
  // before versions existed: the same layout as version 1) with kStoreSchemaVersion.
  absl::Status CheckSchemaVersion() {
    ASSIGN_OR_RETURN(std::optional<std::string> stored,
                     Get(meta_, kSchemaVersionKey, "meta schema_version"));
    if (stored.has_value()) {
      ASSIGN_OR_RETURN(const uint64_t version, internal::DecodeSchemaVersion(directory_, *stored));
      if (version > kStoreSchemaVersion) {
        return absl::FailedPreconditionError(
            absl::StrCat("coordinator store ", directory_, " has schema version ", version,
                         ", written by a newer tessera-coordinator; this one reads up to version ",
                         kStoreSchemaVersion,
                         ". Run the newer coordinator, or restore a backup made by "
                         "this version (docs/operations.md, \"Upgrading\")"));
      }
      if (version == kStoreSchemaVersion) return absl::OkStatus();
    }
    std::string value;
    AppendBigEndian(kStoreSchemaVersion, 4, &value);
    rocksdb::WriteBatch batch;
    RETURN_IF_ERROR(FromRocksDb(batch.Put(meta_, kSchemaVersionKey, value), "schema_version"));
    absl::MutexLock lock(&mu_);
    return Write(&batch, "writing schema_version in " + directory_);
  }

  // nullopt if the key is absent.
  absl::StatusOr<std::optional<std::string>> Get(rocksdb::ColumnFamilyHandle* cf,
                                                 const rocksdb::Slice& key,
                                                 const std::string& what) {
    std::string value;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
    if (s.IsNotFound()) return std::nullopt;
    RETURN_IF_ERROR(FromRocksDb(s, what));
    return value;
  }

  // Writes `batch` (synced); once written, empties it, releasing its buffer. Every write
  // holds mu_: Checkpoint relies on it to copy a log no write is appending to.
  // A large write is followed by FlushHalfFullMemtables only once the batch's copy of its
  // values is gone: the flush copies a large value once more (RocksDB's blob writer
  // reserves a string of the value's size for the record's header), and a slow flush
  // could otherwise hold it while the batch still did (seen under heaptrack at n = 200:
  // the share relays of a boundary's snapshot, 7.5 MB, in the batch, the memtable and the
  // flush at once; docs/performance.md).
  absl::Status Write(rocksdb::WriteBatch* batch, const std::string& what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RETURN_IF_ERROR(FromRocksDb(db_->Write(write_options_, batch), what));
    const bool large = batch->GetDataSize() >= internal::kFlushCheckBytes;
    *batch = rocksdb::WriteBatch();
    if (large) internal::FlushHalfFullMemtables(*db_, handles_);
    return absl::OkStatus();
  }

  // The key of an existing task, or NOT_FOUND.
  absl::StatusOr<std::string> ExistingTaskKey(const char* op, const std::string& task_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::optional<uint64_t> seq = internal::ParseTaskId(task_id);
    if (!seq.has_value()) return TaskNotFound(op, task_id);
    std::string key = TaskKey(*seq);
    ASSIGN_OR_RETURN(std::optional<std::string> value,
                     Get(tasks_, key, absl::StrCat(op, " ", task_id)));
    if (!value.has_value()) return TaskNotFound(op, task_id);
    return key;
  }

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

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenRocksDbStore(const std::string& directory) {
  // The store holds the client registry: keep it private to the coordinator's user.
  RETURN_IF_ERROR(
      common::Annotate(common::MakeDirectories(directory, 0700), "opening coordinator store"));

  rocksdb::DBOptions options = internal::StoreOpenOptions();
  options.create_if_missing = true;
  options.create_missing_column_families = true;

  // RocksDB refuses to open a database without naming every column family it has, so
  // families that a newer version added are opened too (and left alone). On a new
  // directory there is nothing to list, and Open reports any real problem.
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(options, directory, &names).ok()) names.clear();
  for (const char* name : {rocksdb::kDefaultColumnFamilyName.c_str(), kTasksCf, kRoundsCf,
                           kModelsCf, kClientsCf, kMetaCf, kInFlightCf, kStatisticsCf}) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  // Small memtables, large values in blob files, one block cache (internal/store_files.h).
  const rocksdb::ColumnFamilyOptions family_options = internal::StoreFamilyOptions();
  options.db_write_buffer_size = internal::kStoreMemtableBytes;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.reserve(names.size());
  for (const std::string& name : names) families.emplace_back(name, family_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, directory, families, &handles, &db);
  if (rocksdb_status::IsLockConflict(s)) {
    return absl::FailedPreconditionError(absl::StrCat("coordinator store ", directory,
                                                      " is in use by another coordinator process (",
                                                      s.ToString(), ")"));
  }
  RETURN_IF_ERROR(FromRocksDb(s, internal::StoreOpenContext(s, directory)));

  auto store = std::make_unique<RocksDbStore>(directory, db, std::move(handles));
  RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace tessera::coordinator
