// Opening the RocksDB SiteStore (client/site_store.h); the store itself is
// client/internal/rocksdb_site_store.h.

#include "client/site_store.h"

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/internal/rocksdb_site_store.h"
#include "client/internal/site_store_files.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/file_checksum.h"
#include "rocksdb/options.h"
#include "rocksdb/status.h"
#include "rocksdb/table.h"
#include "rocksdb_status/rocksdb_status.h"

namespace tessera::client {
namespace {

using internal::CheckNewStoreIsEmpty;
using internal::DataLoss;
using internal::FromRocksDb;
using internal::LogFiles;
using internal::OpenContext;
using internal::PrepareDirectory;
using internal::RocksDbSiteStore;
using rocksdb_status::IsLockConflict;

// OpenSiteStoreReadOnly's attempts, beside a daemon that deletes table files.
constexpr int kReadOnlyAttempts = 10;
constexpr absl::Duration kReadOnlyRetryPause = absl::Milliseconds(20);

// RocksDB's info log, dropped (the read-only open's: see OpenSiteStoreReadOnly).
class DiscardLogger final : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

// The block cache all families share. Memtables: rocksdb_site_store.h.
constexpr size_t kBlockCacheBytes = size_t{2} << 20;

// The options both opens share (site_store.h).
rocksdb::DBOptions StoreOptions() {
  rocksdb::DBOptions options;
  options.db_write_buffer_size = internal::kStoreMemtableBytes;
  options.paranoid_checks = true;
  // A damaged or torn log record fails the open instead of being dropped with every
  // record after it (site_store.h).
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kAbsoluteConsistency;
  // A whole-file checksum of every table file, kept in the MANIFEST, checked at open.
  options.file_checksum_gen_factory = rocksdb::GetFileChecksumGenCrc32cFactory();
  // Obsolete logs are unlinked, never archived or recycled: they hold session secrets.
  options.WAL_ttl_seconds = 0;
  options.WAL_size_limit_MB = 0;
  options.recycle_log_file_num = 0;
  // RocksDB's own info LOG files, rotated on every open: keep a few for post-mortems.
  options.keep_log_file_num = 10;
  // The store is small (a few table files per family): open them on this thread rather
  // than starting RocksDB's 16 opening threads per family at every open.
  options.max_file_opening_threads = 1;
  return options;
}

rocksdb::ColumnFamilyOptions FamilyOptions(const std::string& name) {
  rocksdb::ColumnFamilyOptions family_options;
  family_options.paranoid_file_checks = true;  // re-read every table file written
  // Small memtables, flushed as they fill (RocksDB's default is 64 MiB per family); those
  // of a session's model-sized values hold a session's worth and are flushed after it
  // (rocksdb_site_store.h). The arena's blocks stay those of a small memtable.
  const bool session_values = name == internal::kSessionsCf || name == internal::kSessionInputsCf;
  family_options.write_buffer_size =
      session_values ? internal::kSessionMemtableBytes : internal::kFamilyMemtableBytes;
  family_options.arena_block_size = internal::kFamilyMemtableBytes / 8;
  // One small block cache for every family (RocksDB's default: 8 MiB each).
  static const std::shared_ptr<rocksdb::TableFactory> table = [] {
    rocksdb::BlockBasedTableOptions options;
    options.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
    return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(options));
  }();
  family_options.table_factory = table;
  return family_options;
}

bool Has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The families of the store in `directory` as it is (RocksDB refuses to open a database
// without naming every family it has, so families a newer version added are listed too,
// and left alone), the default family included; an empty list if there is no store yet.
absl::StatusOr<std::vector<std::string>> ExistingFamilies(const std::string& directory) {
  std::vector<std::string> names;
  if (common::PathExists(directory + "/CURRENT")) {
    RETURN_IF_ERROR(FromRocksDb(rocksdb::DB::ListColumnFamilies(StoreOptions(), directory, &names),
                                directory, "listing the column families"));
  }
  if (!Has(names, rocksdb::kDefaultColumnFamilyName)) {
    names.push_back(rocksdb::kDefaultColumnFamilyName);
  }
  return names;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors(const std::vector<std::string>& names) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.reserve(names.size());
  for (const std::string& name : names) families.emplace_back(name, FamilyOptions(name));
  return families;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SiteStore>> OpenSiteStore(const std::string& directory) {
  RETURN_IF_ERROR(PrepareDirectory(directory));
  rocksdb::DBOptions options = StoreOptions();
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  if (!common::PathExists(directory + "/CURRENT")) {
    RETURN_IF_ERROR(CheckNewStoreIsEmpty(directory));
    common::LogInfo("site_store_created").With("dir", directory);
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names, ExistingFamilies(directory));
  // Families this version has and the store lacks are created: core ones only in a new
  // store (Init refuses an older store without one), added ones in any.
  std::vector<std::string> missing_core;
  for (const char* name : internal::kCoreFamilies) {
    if (!Has(names, name)) missing_core.push_back(name);
  }
  names.insert(names.end(), missing_core.begin(), missing_core.end());
  for (const char* name : internal::kAddedFamilies) {
    if (!Has(names, name)) names.push_back(name);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  const std::string logs_at_open = LogFiles(directory);
  const rocksdb::Status s =
      rocksdb::DB::Open(options, directory, Descriptors(names), &handles, &db);
  if (IsLockConflict(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat("site store ", directory,
                     " is in use by another process (is another tessera-client running with this "
                     "data_dir?) or already open in this one (",
                     s.ToString(), ")"));
  }
  RETURN_IF_ERROR(FromRocksDb(s, directory, OpenContext(s, directory)));

  auto store = std::make_unique<RocksDbSiteStore>(directory, db, std::move(handles), logs_at_open,
                                                  /*read_only=*/false);
  RETURN_IF_ERROR(store->Init(missing_core));
  return store;
}

absl::StatusOr<std::unique_ptr<SiteStore>> OpenSiteStoreReadOnly(const std::string& directory) {
  if (!common::PathExists(directory)) {
    return absl::NotFoundError(absl::StrCat("site store ", directory, " does not exist"));
  }
  RETURN_IF_ERROR(PrepareDirectory(directory));  // exists: checks its owner and mode only
  if (!common::PathExists(directory + "/CURRENT")) {
    RETURN_IF_ERROR(CheckNewStoreIsEmpty(directory));
    return absl::NotFoundError(absl::StrCat("site store ", directory, " holds no store yet"));
  }
  // The mark first: a masked input the daemon records after the open below moves the mark
  // past what this view holds, which must not read as a log cut short.
  ASSIGN_OR_RETURN(std::optional<uint64_t> mark, internal::ReadHighWater(directory));
  ASSIGN_OR_RETURN(std::vector<std::string> names, ExistingFamilies(directory));
  for (const char* name : internal::kCoreFamilies) {
    if (!Has(names, name)) {
      return DataLoss(directory, absl::StrCat("column family ", name, " is missing"));
    }
  }
  // An added family the store lacks (written by an older version) is read as empty.

  rocksdb::DBOptions options = StoreOptions();
  // The daemon may be appending to the log: its last record may be half written.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // RocksDB's info LOG would be rotated in the daemon's directory: discard it instead.
  options.info_log = std::make_shared<DiscardLogger>();
  // A read-only instance, not a secondary one: a secondary instance leaves out, without an
  // error, a table file it cannot open (damaged or deleted), and an audit must not. RocksDB
  // promises nothing more for a read-only instance beside a writer than that it usually
  // works when opened briefly: the daemon's flushes and compactions delete table files, and
  // one deleted between reading the MANIFEST and opening (or checking) the tables fails the
  // open, as a corruption naming the missing file. So a failed open or check is tried again
  // a few times, a moment apart, before it is reported: a store that is really damaged
  // fails every time.
  absl::Status failed;
  for (int attempt = 0; attempt < kReadOnlyAttempts; ++attempt) {
    if (attempt > 0) absl::SleepFor(kReadOnlyRetryPause);
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    const rocksdb::Status s =
        rocksdb::DB::OpenForReadOnly(options, directory, Descriptors(names), &handles, &db);
    failed = FromRocksDb(s, directory, OpenContext(s, directory));
    if (!failed.ok()) continue;
    auto store = std::make_unique<RocksDbSiteStore>(directory, db, std::move(handles),
                                                    LogFiles(directory), /*read_only=*/true);
    failed = store->InitReadOnly(mark);
    if (failed.ok()) return store;
    if (failed.code() == absl::StatusCode::kFailedPrecondition) break;  // a newer format
  }
  return failed;
}

}  // namespace tessera::client
