// The RocksDB SiteStore's upkeep: the format version, scrubbing dropped secrets out of the
// files, the high-water mark (client/internal/rocksdb_site_store.h, client/site_store.h).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/internal/rocksdb_site_store.h"
#include "client/internal/site_store_files.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace tessera::client::internal {
namespace {

// 2: the sessions' snapshots live apart from their records (rocksdb_site_store.h).
constexpr uint32_t kFormatVersion = 2;

// The background scrubs start at least this far apart (site_store.h, "Secrets on disk").
constexpr absl::Duration kScrubInterval = absl::Seconds(1);

}  // namespace

absl::StatusOr<std::optional<uint64_t>> ReadHighWater(const std::string& directory) {
  const std::string path = directory + "/" + kHighWaterFile;
  if (!common::PathExists(path)) return std::nullopt;
  ASSIGN_OR_RETURN(std::string bytes, common::ReadFile(path));
  bool intact = bytes.size() == 16;
  uint64_t sequence = 0;
  for (int i = 0; intact && i < 8; ++i) {
    intact = static_cast<char>(~bytes[i]) == bytes[8 + i];
    sequence = (sequence << 8) | static_cast<unsigned char>(bytes[i]);
  }
  if (!intact) return DataLoss(directory, absl::StrCat(kHighWaterFile, " is damaged"));
  return sequence;
}

absl::Status RocksDbSiteStore::CheckFormatVersion(std::string_view bytes) {
  if (bytes.size() != 4) {
    return DamagedRecord(directory_, kMetaCf, kFormatVersionKey,
                         absl::StrCat("the format version has ", bytes.size(), " bytes, want 4"));
  }
  uint32_t version = 0;
  for (char c : bytes) version = (version << 8) | static_cast<unsigned char>(c);
  if (version == 0)
    return DamagedRecord(directory_, kMetaCf, kFormatVersionKey, "the format version is 0");
  if (version > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site store ", directory_, " has format version ", version,
        ", written by a newer tessera-client; this one reads versions up to ", kFormatVersion,
        ": run the newer tessera-client (the store must not be deleted: it records what this "
        "site has already sent)"));
  }
  return absl::OkStatus();
}

std::string RocksDbSiteStore::FormatVersionBytes() {
  std::string bytes;
  for (int shift = 24; shift >= 0; shift -= 8) {
    bytes.push_back(static_cast<char>((kFormatVersion >> shift) & 0xff));
  }
  return bytes;
}

absl::Status RocksDbSiteStore::WriteFormatVersion() {
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocksDb(batch.Put(meta_, kFormatVersionKey, FormatVersionBytes()), directory_,
                              "writing the format version"));
  return Write(&batch, "writing the format version");
}

// At a version 1 store's open (its plaintext snapshots, now sealed, may still be in the
// logs and the sessions family's tables): flush every family so that the logs holding
// old versions become obsolete, rewrite the sessions and snapshots families down to the
// last level without them, purge. Then, always: clear the keys of ended sessions.
absl::Status RocksDbSiteStore::Scrub() {
  if (sessions_hold_snapshots_) {
    rocksdb::FlushOptions flush;
    flush.wait = true;
    flush.allow_write_stall = true;
    RETURN_IF_ERROR(FromRocksDb(db_->Flush(flush, handles_), directory_, "scrub: flushing"));
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    compact.exclusive_manual_compaction = true;
    for (rocksdb::ColumnFamilyHandle* family : {sessions_, machines_}) {
      RETURN_IF_ERROR(FromRocksDb(db_->CompactRange(compact, family, nullptr, nullptr), directory_,
                                  absl::StrCat("scrub: compacting family ", family->GetName())));
    }
    // Background jobs may still be deleting the files they made obsolete when Flush and
    // CompactRange return; re-enabling file deletions purges every obsolete file now, in
    // this thread.
    RETURN_IF_ERROR(
        FromRocksDb(db_->DisableFileDeletions(), directory_, "scrub: pausing file deletions"));
    RETURN_IF_ERROR(FromRocksDb(db_->EnableFileDeletions(/*force=*/false), directory_,
                                "scrub: purging obsolete files"));
    sessions_hold_snapshots_ = false;
  }
  FlushSessionMemtables();
  absl::MutexLock lock(&mu_);
  return ForgetEndedKeys();
}

void RocksDbSiteStore::FlushSessionMemtables() {
  for (rocksdb::ColumnFamilyHandle* family : {sessions_, inputs_}) {
    uint64_t active = 0;
    if (family == nullptr ||
        !db_->GetIntProperty(family, rocksdb::DB::Properties::kCurSizeActiveMemTable, &active) ||
        active < kFlushAfterSessionBytes) {
      continue;
    }
    rocksdb::FlushOptions flush;
    flush.wait = false;
    flush.allow_write_stall = true;
    // A flush that fails leaves the memtable to the next one (or to RocksDB's own, once
    // full): nothing is lost.
    if (const rocksdb::Status s = db_->Flush(flush, family); !s.ok()) {
      common::LogWarning("site_store_flush_failed")
          .With("dir", directory_)
          .With("family", family->GetName())
          .With("error", s.ToString());
    }
  }
}

void RocksDbSiteStore::ScrubInTheBackground() {
  absl::MutexLock lock(&scrub_mu_);
  while (true) {
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(scrub_mu_) {
      return scrub_wanted_ || stopping_;
    };
    scrub_mu_.Await(absl::Condition(&ready));
    if (stopping_) return;
    scrub_wanted_ = false;
    scrub_mu_.Unlock();
    const absl::Status scrubbed = ScrubNow();
    scrub_mu_.Lock();
    if (!scrubbed.ok()) {
      common::LogWarning("site_store_scrub_failed")
          .With("dir", directory_)
          .With("error", scrubbed.ToString());
      scrub_wanted_ = true;
    }
    // At most one scrub a second: sessions that end meanwhile share the next one (a scrub
    // costs ~10 ms of flushing and compaction; one per session slowed a federation of
    // short rounds by half). A stop cuts the wait short; the destructor then scrubs.
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(scrub_mu_) { return stopping_; };
    scrub_mu_.AwaitWithTimeout(absl::Condition(&stop), kScrubInterval);
  }
}

void RocksDbSiteStore::WantScrub() {
  absl::MutexLock lock(&scrub_mu_);
  scrub_wanted_ = true;
}

void RocksDbSiteStore::StopScrubbing() {
  bool wanted = false;
  {
    absl::MutexLock lock(&scrub_mu_);
    stopping_ = true;
    wanted = scrub_wanted_;
  }
  if (scrubber_.joinable()) scrubber_.join();
  // A scrub the thread had no time for (the next open would do it otherwise).
  if (absl::Status st = wanted ? ScrubNow() : absl::OkStatus(); !st.ok()) {
    common::LogWarning("site_store_scrub_failed")
        .With("dir", directory_)
        .With("error", st.ToString());
  }
}

absl::Status RocksDbSiteStore::WriteHighWater(uint64_t sequence) {
  std::string bytes;
  for (int shift = 56; shift >= 0; shift -= 8)
    bytes.push_back(static_cast<char>(sequence >> shift));
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(~bytes[i]));
  const std::string path = directory_ + "/" + kHighWaterFile;
  if (high_water_fd_ < 0) {
    high_water_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (high_water_fd_ < 0) {
      return absl::UnavailableError(absl::StrCat("site store ", directory_, ": cannot open ", path,
                                                 ": ", std::strerror(errno)));
    }
    if (int dir = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  if (::pwrite(high_water_fd_, bytes.data(), bytes.size(), 0) !=
          static_cast<ssize_t>(bytes.size()) ||
      ::fdatasync(high_water_fd_) != 0) {
    return absl::UnavailableError(absl::StrCat("site store ", directory_, ": cannot write ", path,
                                               ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status RocksDbSiteStore::CheckHighWater(size_t records) {
  ASSIGN_OR_RETURN(std::optional<uint64_t> mark, ReadHighWater(directory_));
  if (!mark.has_value()) {
    // A store that never recorded a masked input (or written before the mark existed).
    return records > 0 ? WriteHighWater(db_->GetLatestSequenceNumber()) : absl::OkStatus();
  }
  const uint64_t sequence = *mark;
  const uint64_t latest = db_->GetLatestSequenceNumber();
  if (latest < sequence) {
    return DataLoss(
        directory_,
        absl::StrCat("its log ends at write ", latest, ", before write ", sequence,
                     ", the last that recorded a masked input this site sent (", kHighWaterFile,
                     "; a write-ahead log cut short, or a partial copy of the store; "
                     "logs replayed: ",
                     logs_at_open_, ")"));
  }
  return WriteHighWater(sequence);  // opens the file for the writes to come
}

}  // namespace tessera::client::internal
