#include "rocksdb_status/rocksdb_status.h"

#include <string>

namespace tessera::rocksdb_status {

absl::StatusCode CodeOf(const rocksdb::Status& s) {
  if (s.ok()) return absl::StatusCode::kOk;
  if (s.IsNotFound()) return absl::StatusCode::kNotFound;
  if (s.IsCorruption()) return absl::StatusCode::kDataLoss;
  if (s.IsNoSpace() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsShutdownInProgress()) {
    return absl::StatusCode::kUnavailable;
  }
  return absl::StatusCode::kInternal;
}

bool IsLockConflict(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  return text.find("lock hold by current process") != std::string::npos ||
         text.find("While lock file") != std::string::npos;
}

}  // namespace tessera::rocksdb_status
