#include "coordinator/internal/store_files.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rocksdb/cache.h"
#include "rocksdb/env.h"
#include "rocksdb/table.h"
#include "rocksdb_status/rocksdb_status.h"

namespace tessera::coordinator::internal {

namespace {

// Values this large or larger are kept in blob files.
constexpr uint64_t kBlobBytes = uint64_t{64} << 10;
// Each family's memtable.
constexpr size_t kFamilyMemtableBytes = kStoreMemtableBytes / 2;
// The one block cache all families share.
constexpr size_t kBlockCacheBytes = size_t{4} << 20;

}  // namespace

rocksdb::ColumnFamilyOptions StoreFamilyOptions() {
  // Memtables: RocksDB's default is 64 MiB per family, which a run's models and session
  // snapshots (each up to a few times the model's size) fill before the first flush: the
  // largest part of the coordinator's memory at d = 10^6 (66 of its 161 MiB of heap,
  // measured with heaptrack). Small ones, flushed as they fill, bound it to
  // db_write_buffer_size whatever the number of rounds; writes are still synced to the log.
  // 8 MiB since large values flush to blob files (below): 16 MiB held 17 of 56 MiB of heap.
  rocksdb::ColumnFamilyOptions family_options;
  family_options.write_buffer_size = kFamilyMemtableBytes;
  // Values of 64 KiB or more (models, session snapshots, the in-flight record's bulk) go to
  // blob files when their memtable is flushed: written as they are, not copied into a table
  // block (whose builder held about three times a 4 MB value at once: 17 of the
  // coordinator's 58 MiB of heap at d = 10^6, heaptrack). Garbage collection rewrites the
  // oldest blob files' live values at compaction, so replaced in-flight records go away.
  family_options.enable_blob_files = true;
  family_options.min_blob_size = kBlobBytes;
  family_options.enable_blob_garbage_collection = true;
  // Block cache: without one set, RocksDB gives each family its own 8 MiB cache, which
  // reads of models and round records (megabytes each at d = 10^6) fill one family after
  // another, so the coordinator grew with the rounds it had run. One small cache for all:
  // the store's reads are a record at a time, not hot loops.
  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  family_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  return family_options;
}

void FlushHalfFullMemtables(rocksdb::DB& db,
                            const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  for (rocksdb::ColumnFamilyHandle* family : families) {
    uint64_t active = 0;
    if (!db.GetIntProperty(family, rocksdb::DB::Properties::kCurSizeActiveMemTable, &active) ||
        active < kFamilyMemtableBytes / 2) {  // measured: 3 rounds at d = 10^6, 1 MiB less
      continue;
    }
    rocksdb::FlushOptions flush;
    flush.wait = false;
    flush.allow_write_stall = true;
    (void)db.Flush(flush, family);
  }
}

absl::Status FromRocksDb(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(rocksdb_status::CodeOf(s), absl::StrCat(context, ": ", s.ToString()));
}

rocksdb::DBOptions StoreOpenOptions() {
  rocksdb::DBOptions options;
  options.paranoid_checks = true;
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kAbsoluteConsistency;
  // RocksDB's own info LOG files, rotated on every open: keep a few for post-mortems.
  options.keep_log_file_num = 10;
  // Open the table files on this thread: the store has a handful per family, and RocksDB's
  // default starts 16 opening threads per family at every open.
  options.max_file_opening_threads = 1;
  return options;
}

std::vector<std::string> WalFiles(const std::string& directory) {
  std::vector<std::string> children;
  std::vector<std::string> logs;
  if (rocksdb::Env::Default()->GetChildren(directory, &children).ok()) {
    for (const std::string& name : children) {
      if (name.ends_with(".log")) logs.push_back(absl::StrCat(directory, "/", name));
    }
  }
  std::sort(logs.begin(), logs.end());
  return logs;
}

bool IsDamagedWal(const rocksdb::Status& s, const std::string& directory) {
  if (!s.IsCorruption()) return false;
  const std::string text = s.ToString();
  if (text.find(".sst") != std::string::npos || text.find(".blob") != std::string::npos ||
      text.find("MANIFEST") != std::string::npos || text.find("CURRENT") != std::string::npos) {
    return false;
  }
  return !WalFiles(directory).empty();
}

std::string StoreOpenContext(const rocksdb::Status& s, const std::string& directory) {
  std::string context = absl::StrCat("opening coordinator store ", directory);
  if (!IsDamagedWal(s, directory)) return context;
  return absl::StrCat(
      context, ": its write-ahead log ", absl::StrJoin(WalFiles(directory), ", "),
      " is damaged, and the coordinator does not start rather than forget the records in and "
      "after the damage (committed rounds among them). Restore a backup "
      "(`tessera-coordinator --restore-from`), or run `tessera-coordinator --config FILE "
      "--repair-store` to see what a repair would keep and drop (docs/operations.md, "
      "\"A damaged store\")");
}

}  // namespace tessera::coordinator::internal
