// Private to the RocksDB site store (client/site_store.cc, client/internal/rocksdb_site_store*):
// before RocksDB opens it, and the one place where a rocksdb::Status becomes an
// absl::Status. Stateless functions; thread-safe.
#ifndef TESSERA_CLIENT_INTERNAL_SITE_STORE_FILES_H_
#define TESSERA_CLIENT_INTERNAL_SITE_STORE_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "rocksdb/status.h"

namespace tessera::client::internal {

// DATA_LOSS "site store <directory>: <what>", with the advice to restore the store from a
// backup and never to delete it.
absl::Status DataLoss(const std::string& directory, const std::string& what);

// OK for OK. Corruption is DATA_LOSS (with the advice); disk full and contention are
// conditions an operator or a retry can clear (UNAVAILABLE); NotFound is NOT_FOUND; other
// I/O errors and misuse are INTERNAL. The message names the directory and `context`.
absl::Status FromRocksDb(const rocksdb::Status& s, const std::string& directory,
                         const std::string& context);

// The directory exists (created 0700 if it did not), belongs to this process's user and
// is closed to group and others; FAILED_PRECONDITION (naming the fix) otherwise.
absl::Status PrepareDirectory(const std::string& directory);

// For a directory without RocksDB's CURRENT file: DATA_LOSS if it nevertheless holds
// table or log files (the store's index was lost, and opening would start an empty store
// next to, and later delete, the records); OK if it is empty of them.
absl::Status CheckNewStoreIsEmpty(const std::string& directory);

// The write-ahead log files in `directory`, sorted, comma-separated ("" if none).
std::string LogFiles(const std::string& directory);

// What to say Open was doing when it failed with `s`. RocksDB reports a damaged log record
// ("checksum mismatch", "truncated record body") without naming the file, so for a
// corruption that names none, this names the write-ahead logs that open replays.
std::string OpenContext(const rocksdb::Status& s, const std::string& directory);

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_SITE_STORE_FILES_H_
