// What the coordinator's RocksDB store (rocksdb_store.cc) and its repair (store_repair.cc)
// share: the options the store is opened with, how RocksDB's statuses become absl ones
// and how a failed open is described.
// Included only by those two .cc files (it brings in RocksDB's headers). Thread-safe.
#ifndef TESSERA_COORDINATOR_INTERNAL_STORE_FILES_H_
#define TESSERA_COORDINATOR_INTERNAL_STORE_FILES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/status.h"

namespace tessera::coordinator::internal {

// The store's options: paranoid checks and absolute-consistency WAL recovery, so that a
// damaged or torn log record fails the open instead of being dropped with every record
// after it (RocksDB's default, point-in-time recovery, drops them silently); a few of
// RocksDB's info LOG files kept for post-mortems.
rocksdb::DBOptions StoreOpenOptions();

// All the store's memtables together (DBOptions::db_write_buffer_size).
inline constexpr size_t kStoreMemtableBytes = size_t{8} << 20;

// Every column family's options: half of kStoreMemtableBytes of memtable, values of
// 64 KiB or more in blob files once flushed (with garbage collection), one small block
// cache shared by every family (store_files.cc says what each was measured to save).
rocksdb::ColumnFamilyOptions StoreFamilyOptions();

// Flushes, without waiting, each of `families` whose memtable is at least half full.
// RocksDB itself switches a full memtable only at the next write, so one that a large
// value (a step boundary's snapshot: 4 MB at d = 10^6) filled would be held, with that
// value, until then, which may be the next boundary; and a value just under a memtable
// (a 3.8 MiB checkpoint in a 4 MiB one) would stay until the next such value joined it.
// Called after a large write: the flush that would come anyway comes now, at most twice
// as often. A failure is left to that next write (it schedules the flush).
void FlushHalfFullMemtables(rocksdb::DB& db,
                            const std::vector<rocksdb::ColumnFamilyHandle*>& families);

// Writes at least this large (WriteBatch::GetDataSize) are followed by
// FlushHalfFullMemtables: a value as large as a blob (store_files.cc) may fill a memtable.
inline constexpr size_t kFlushCheckBytes = size_t{64} << 10;

// rocksdb::Status -> absl::Status (rocksdb_status/rocksdb_status.h: disk full and
// contention UNAVAILABLE, checksum mismatches DATA_LOSS, ...). The message is
// "<context>: <RocksDB's text>".
absl::Status FromRocksDb(const rocksdb::Status& s, const std::string& context);

// Full paths of the write-ahead log files (*.log, RocksDB's info LOG excluded) in
// `directory`, sorted; empty if none or the directory cannot be listed.
std::vector<std::string> WalFiles(const std::string& directory);

// True if `s` (from opening the store in `directory`) is a damaged write-ahead log: a
// corruption that names no table file, MANIFEST or CURRENT, with log files present.
bool IsDamagedWal(const rocksdb::Status& s, const std::string& directory);

// The context of a failed open, for FromRocksDb: "opening coordinator store DIR", and for
// a damaged write-ahead log (RocksDB does not name the file) the log files' paths, that the
// coordinator does not start rather than forget what they hold, and the two ways out
// (restore a backup; `tessera-coordinator --repair-store`).
std::string StoreOpenContext(const rocksdb::Status& s, const std::string& directory);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_STORE_FILES_H_
