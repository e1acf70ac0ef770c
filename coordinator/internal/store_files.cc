#include "coordinator/internal/store_files.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rocksdb/env.h"

namespace tessera::coordinator::internal {

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
