#include "coordinator/store_repair.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/internal/store_files.h"
#include "coordinator/store.h"
#include "proto/state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/iterator.h"

namespace tessera::coordinator {
namespace {

constexpr char kTasksCf[] = "tasks";

// An open database with every column family, closed when destroyed.
struct RawStore {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ~RawStore() {
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    if (db != nullptr) db->Close().PermitUncheckedError();
  }
};

// Opens `directory` with point-in-time recovery: the records before the first damaged one.
absl::Status OpenRecovered(const std::string& directory, bool read_only, RawStore* out) {
  rocksdb::DBOptions options = internal::StoreOpenOptions();
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, directory, &names);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.reserve(names.size());
  for (const std::string& name : names) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DB* db = nullptr;
  if (s.ok()) {
    s = read_only ? rocksdb::DB::OpenForReadOnly(options, directory, families, &out->handles, &db)
                  : rocksdb::DB::Open(options, directory, families, &out->handles, &db);
  }
  out->db.reset(db);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("coordinator store ", directory,
                                            " cannot be recovered even up to the damage (",
                                            s.ToString(), "): restore a backup"));
  }
  return absl::OkStatus();
}

// One line per task: its id, state and last committed round, as the store holds them.
absl::StatusOr<std::vector<std::string>> TaskLines(RawStore& store) {
  std::vector<std::string> lines;
  for (rocksdb::ColumnFamilyHandle* h : store.handles) {
    if (h->GetName() != kTasksCf) continue;
    std::unique_ptr<rocksdb::Iterator> it(store.db->NewIterator(rocksdb::ReadOptions(), h));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      v1::TaskRecord task;
      if (!task.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        lines.push_back("  a task record that does not parse");
        continue;
      }
      lines.push_back(absl::StrCat("  ", task.task_id(), " ", v1::TaskState_Name(task.state()),
                                   ", last committed round ", task.last_committed_round()));
    }
    if (!it->status().ok()) {
      return absl::DataLossError(absl::StrCat("reading the tasks: ", it->status().ToString()));
    }
  }
  if (lines.empty()) lines.push_back("  no tasks");
  return lines;
}

std::string WalLines(const std::vector<std::string>& wals) {
  std::vector<std::string> lines;
  for (const std::string& wal : wals) {
    std::error_code error;
    const auto size = std::filesystem::file_size(wal, error);
    lines.push_back(absl::StrCat("  ", wal, " (", error ? 0 : size, " bytes)"));
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace

absl::StatusOr<std::string> RepairRocksDbStore(const std::string& directory, bool confirm) {
  if (!common::PathExists(directory + "/CURRENT")) {
    return absl::NotFoundError(absl::StrCat(directory, " holds no coordinator store"));
  }
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksDbStore(directory);
    if (store.ok()) {
      return absl::StrCat("coordinator store ", directory, " is not damaged: nothing to repair\n");
    }
    if (!absl::IsDataLoss(store.status()) ||
        store.status().message().find("write-ahead log") == std::string_view::npos) {
      return store.status();
    }
  }
  const std::vector<std::string> wals = internal::WalFiles(directory);
  std::vector<std::string> before;
  {
    RawStore recovered;
    RETURN_IF_ERROR(OpenRecovered(directory, /*read_only=*/true, &recovered));
    ASSIGN_OR_RETURN(before, TaskLines(recovered));
  }
  std::string report = absl::StrCat(
      "coordinator store ", directory, ": damaged write-ahead log\n", WalLines(wals), "\n",
      "A repair keeps every record before the first damaged one and drops that record and "
      "every later one (rounds committed, task states and client records written after it "
      "are lost for good; restore a backup instead if you have a newer one).\n"
      "After a repair the store holds:\n",
      absl::StrJoin(before, "\n"), "\n");
  if (!confirm) {
    return absl::StrCat(report,
                        "Nothing was changed. Run again with --confirm-data-loss to repair.\n");
  }
  common::LogWarning("store_repaired")
      .With("dir", directory)
      .With("wal", absl::StrJoin(wals, ","))
      .With("tasks_after", absl::StrJoin(before, ";"));
  {
    RawStore recovered;
    RETURN_IF_ERROR(OpenRecovered(directory, /*read_only=*/false, &recovered));
    rocksdb::FlushOptions flush;
    flush.wait = true;
    rocksdb::Status s = recovered.db->Flush(flush, recovered.handles);
    if (s.ok()) s = recovered.db->SyncWAL();
    if (!s.ok()) {
      return absl::InternalError(
          absl::StrCat("repairing coordinator store ", directory, ": ", s.ToString()));
    }
  }
  // The repaired store must open the ordinary way.
  RETURN_IF_ERROR(OpenRocksDbStore(directory).status());
  return absl::StrCat(report, "Repaired: the store opens again.\n");
}

}  // namespace tessera::coordinator
