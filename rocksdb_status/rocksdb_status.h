// What a RocksDB status means to Tessera's two stores, the site's (client/site_store.h)
// and the coordinator's (coordinator/store.h): the one place where RocksDB's status kinds
// become abseil codes, and where a failed open is recognised as a held lock. Each store
// words its own messages (the site's adds its restore advice to DATA_LOSS).
// Pure functions; thread-safe.
#ifndef TESSERA_ROCKSDB_STATUS_ROCKSDB_STATUS_H_
#define TESSERA_ROCKSDB_STATUS_ROCKSDB_STATUS_H_

#include "absl/status/status.h"
#include "rocksdb/status.h"

namespace tessera::rocksdb_status {

// OK for an ok status. Checksum mismatches and other corruption are DATA_LOSS; a missing
// key or file NOT_FOUND; disk full and contention (busy, timed out, try again, shutting
// down) are conditions an operator or a retry can clear, UNAVAILABLE; other I/O errors
// and misuse INTERNAL.
absl::StatusCode CodeOf(const rocksdb::Status& s);

// True if DB::Open failed because the directory's LOCK file is held: by another process
// (fcntl fails: "While lock file: <dir>/LOCK: Resource temporarily unavailable") or by
// another open database in this process ("lock hold by current process").
bool IsLockConflict(const rocksdb::Status& s);

}  // namespace tessera::rocksdb_status

#endif  // TESSERA_ROCKSDB_STATUS_ROCKSDB_STATUS_H_
