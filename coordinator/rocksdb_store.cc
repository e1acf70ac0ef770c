// The RocksDB Store (coordinator/internal/rocksdb_store_impl.h: the layout, the locking):
// opening it, tasks, rounds and their checkpoints, clients, pooled statistics. The
// in-flight records: rocksdb_store_in_flight.cc.

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
#include "coordinator/internal/rocksdb_store_impl.h"
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

namespace tessera::coordinator::internal {
namespace {

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

}  // namespace

RocksDbStore::RocksDbStore(std::string directory, rocksdb::DB* db,
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

RocksDbStore::~RocksDbStore() {
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    // Refused only for a handle the DB owns itself; nothing to do about it then.
    db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();  // every write was synced already
}

absl::Status RocksDbStore::Init() {
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

absl::Status RocksDbStore::Checkpoint(const std::string& directory) {
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

absl::StatusOr<std::string> RocksDbStore::CreateTask(v1::TaskRecord record) {
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

absl::Status RocksDbStore::UpdateTask(const v1::TaskRecord& record) {
  ASSIGN_OR_RETURN(std::string value, SerializeValue(record, "tasks"));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::string key, ExistingTaskKey("UpdateTask", record.task_id()));
  rocksdb::WriteBatch batch;
  const std::string what = "UpdateTask " + record.task_id();
  RETURN_IF_ERROR(FromRocksDb(batch.Put(tasks_, key, value), what));
  return Write(&batch, what);
}

absl::StatusOr<v1::TaskRecord> RocksDbStore::GetTask(const std::string& task_id) {
  const std::optional<uint64_t> seq = internal::ParseTaskId(task_id);
  if (!seq.has_value()) return TaskNotFound("GetTask", task_id);
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(tasks_, TaskKey(*seq), "GetTask " + task_id));
  if (!value.has_value()) return TaskNotFound("GetTask", task_id);
  return internal::DecodeTask(TaskKey(*seq), *value);
}

absl::StatusOr<std::vector<v1::TaskRecord>> RocksDbStore::ListTasks() {
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

absl::Status RocksDbStore::CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                                       std::span<const float> model,
                                       const v1::RoundRecord* previous) {
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
      BatchBytes({previous_value.size(), round_value.size(), model_value.size(), task_value.size(),
                  6 * round_key.size()}));  // six keys at most
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

absl::Status RocksDbStore::PutStatistics(const v1::PooledStatisticsRecord& record) {
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

absl::StatusOr<v1::PooledStatisticsRecord> RocksDbStore::GetStatistics(
    const std::string& dataset_id, const std::vector<std::string>& columns) {
  ASSIGN_OR_RETURN(std::string key, internal::StatisticsKey(dataset_id, columns));
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(statistics_, key, "GetStatistics " + dataset_id));
  if (!value.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("GetStatistics: no pooled statistics for dataset ", dataset_id));
  }
  return internal::DecodeStatistics(dataset_id, columns, *value);
}

absl::StatusOr<std::vector<v1::RoundRecord>> RocksDbStore::ListRounds(const std::string& task_id) {
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

absl::StatusOr<std::vector<float>> RocksDbStore::GetCheckpoint(const std::string& task_id,
                                                               uint32_t round) {
  const std::string description = absl::StrCat(task_id, " round ", round);
  ASSIGN_OR_RETURN(const std::string value, CheckpointValue(task_id, round, description));
  return internal::DecodeCheckpoint(description, value);
}

absl::StatusOr<std::string> RocksDbStore::GetCheckpointBytes(const std::string& task_id,
                                                             uint32_t round) {
  const std::string description = absl::StrCat(task_id, " round ", round);
  ASSIGN_OR_RETURN(std::string value, CheckpointValue(task_id, round, description));
  if (internal::PackedModelWords(value).has_value()) return value;
  ASSIGN_OR_RETURN(const std::vector<float> values, internal::DecodeCheckpoint(description, value));
  return *internal::SerializedModel(values);
}

absl::Status RocksDbStore::PutClient(const v1::ClientRecord& record) {
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

absl::StatusOr<v1::ClientRecord> RocksDbStore::GetClient(const std::string& client_id) {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(clients_, client_id, "GetClient " + client_id));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("GetClient: no client \"", client_id, "\""));
  }
  return internal::DecodeClient(client_id, *value);
}

absl::StatusOr<std::vector<v1::ClientRecord>> RocksDbStore::ListClients() {
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

absl::Status RocksDbStore::TaskNotFound(const char* op, const std::string& task_id) {
  return absl::NotFoundError(absl::StrCat(op, ": no task \"", task_id, "\""));
}

absl::StatusOr<std::string> RocksDbStore::CheckpointValue(const std::string& task_id,
                                                          uint32_t round,
                                                          const std::string& description) {
  if (!internal::ParseTaskId(task_id).has_value()) return CheckpointNotFound(description);
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(models_, RoundKey(task_id, round), "GetCheckpoint " + description));
  if (!value.has_value()) return CheckpointNotFound(description);
  return *std::move(value);
}

absl::Status RocksDbStore::CheckpointNotFound(const std::string& description) {
  return absl::NotFoundError(absl::StrCat("GetCheckpoint: no checkpoint for ", description));
}

absl::Status RocksDbStore::CheckSchemaVersion() {
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

absl::StatusOr<std::optional<std::string>> RocksDbStore::Get(rocksdb::ColumnFamilyHandle* cf,
                                                             const rocksdb::Slice& key,
                                                             const std::string& what) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::nullopt;
  RETURN_IF_ERROR(FromRocksDb(s, what));
  return value;
}

absl::Status RocksDbStore::Write(rocksdb::WriteBatch* batch, const std::string& what) {
  RETURN_IF_ERROR(FromRocksDb(db_->Write(write_options_, batch), what));
  const bool large = batch->GetDataSize() >= internal::kFlushCheckBytes;
  *batch = rocksdb::WriteBatch();
  if (large) internal::FlushHalfFullMemtables(*db_, handles_);
  return absl::OkStatus();
}

absl::StatusOr<std::string> RocksDbStore::ExistingTaskKey(const char* op,
                                                          const std::string& task_id) {
  const std::optional<uint64_t> seq = internal::ParseTaskId(task_id);
  if (!seq.has_value()) return TaskNotFound(op, task_id);
  std::string key = TaskKey(*seq);
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Get(tasks_, key, absl::StrCat(op, " ", task_id)));
  if (!value.has_value()) return TaskNotFound(op, task_id);
  return key;
}

}  // namespace tessera::coordinator::internal

namespace tessera::coordinator {

using internal::FromRocksDb;

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
  for (const char* name : {rocksdb::kDefaultColumnFamilyName.c_str(), internal::kTasksCf,
                           internal::kRoundsCf, internal::kModelsCf, internal::kClientsCf,
                           internal::kMetaCf, internal::kInFlightCf, internal::kStatisticsCf}) {
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

  auto store = std::make_unique<internal::RocksDbStore>(directory, db, std::move(handles));
  RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace tessera::coordinator
