// The RocksDB SiteStore.
//
// On-disk layout (one column family per kind; values are serialised protos):
//   contributions  32-byte contribution key   -> v1::ContributionRecord (record.key == key)
//   sessions       session label              -> v1::SiteSessionRecord (record.session == key)
//   meta           "format_version"           -> 4-byte big-endian kFormatVersion
// Keys sort bytewise, which is the order the List calls promise.
//
// Every write is synced. PutSession reads before it writes (the contribution's owner, the
// stored snapshot) and the scrub must not interleave with writes, so writers are
// serialised by mu_; readers take no lock (RocksDB reads are thread-safe).

#include "client/site_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/site_store_files.h"
#include "client/internal/site_store_rules.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "proto/site_state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/file_checksum.h"
#include "rocksdb/iterator.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"
#include "rocksdb/write_batch.h"

namespace tessera::client {
namespace {

using internal::CheckNewStoreIsEmpty;
using internal::DataLoss;
using internal::FromRocksDb;
using internal::IsLockConflict;
using internal::LogFiles;
using internal::OpenContext;
using internal::PrepareDirectory;

// Beside RocksDB's files: the sequence number of the last write that recorded a masked
// input (site_store.h, "Never silently forget what left").
constexpr char kHighWaterFile[] = "CONTRIBUTED_UP_TO";

// The background scrubs start at least this far apart (site_store.h, "Secrets on disk").
constexpr absl::Duration kScrubInterval = absl::Seconds(1);

// More table files than this in the contributions family are merged by the next scrub.
constexpr uint64_t kMaxContributionFiles = 16;

constexpr char kContributionsCf[] = "contributions";
constexpr char kSessionsCf[] = "sessions";
constexpr char kMetaCf[] = "meta";
constexpr char kFormatVersionKey[] = "format_version";
constexpr uint32_t kFormatVersion = 1;

std::string_view View(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

template <typename Message>
absl::StatusOr<std::string> Serialize(const Message& message, const char* kind) {
  if (message.ByteSizeLong() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("PutSession: ", kind, " is larger than 2 GiB"));
  }
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("PutSession: cannot serialise ", kind));
  }
  return bytes;
}

class RocksDbSiteStore final : public SiteStore {
 public:
  // `logs_at_open`: the write-ahead logs the open replayed (recovery replaces them).
  RocksDbSiteStore(std::string directory, rocksdb::DB* db,
                   std::vector<rocksdb::ColumnFamilyHandle*> handles, std::string logs_at_open)
      : directory_(std::move(directory)),
        db_(db),
        handles_(std::move(handles)),
        logs_at_open_(std::move(logs_at_open)) {
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      if (h->GetName() == kContributionsCf) contributions_ = h;
      if (h->GetName() == kSessionsCf) sessions_ = h;
      if (h->GetName() == kMetaCf) meta_ = h;
    }
    write_options_.sync = true;
  }

  ~RocksDbSiteStore() override {
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
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      // Refused only for a handle the DB owns itself; nothing to do about it then.
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();  // every write was synced already
    if (high_water_fd_ >= 0) ::close(high_water_fd_);
  }

  // Checks everything stored (see site_store.h), writes the format version of a new store
  // and scrubs. `missing` lists our families that did not exist before this open. Called
  // once, before the store is shared.
  absl::Status Init(const std::vector<std::string>& missing) {
    if (contributions_ == nullptr || sessions_ == nullptr || meta_ == nullptr) {
      return absl::InternalError(
          absl::StrCat("site store ", directory_, ": a column family is missing after open"));
    }
    RETURN_IF_ERROR(FromRocksDb(db_->VerifyChecksum(ReadAll()), directory_,
                                "verifying the block checksums of the table files"));
    RETURN_IF_ERROR(FromRocksDb(db_->VerifyFileChecksums(ReadAll()), directory_,
                                "verifying the whole-file checksums of the table files"));

    ASSIGN_OR_RETURN(std::optional<std::string> version, Get(meta_, kFormatVersionKey));
    if (version.has_value()) {
      RETURN_IF_ERROR(CheckFormatVersion(*version));
      if (!missing.empty()) {
        return DataLoss(directory_, absl::StrCat("column family ", missing.front(), " is missing"));
      }
    }
    size_t records = 0;
    RETURN_IF_ERROR(ForEach(contributions_, [&](std::string_view key, std::string_view value) {
      ++records;
      return ParseContribution(key, value).status();
    }));
    RETURN_IF_ERROR(ForEach(sessions_, [&](std::string_view key, std::string_view value) {
      ++records;
      return ParseSession(key, value).status();
    }));
    if (!version.has_value()) {
      // A new store, or one whose creation was interrupted before its first record.
      if (records > 0) {
        return DataLoss(directory_, absl::StrCat("family meta has no ", kFormatVersionKey,
                                                 " but the store holds ", records, " records"));
      }
      std::string bytes;
      for (int shift = 24; shift >= 0; shift -= 8) {
        bytes.push_back(static_cast<char>((kFormatVersion >> shift) & 0xff));
      }
      rocksdb::WriteBatch batch;
      RETURN_IF_ERROR(FromRocksDb(batch.Put(meta_, kFormatVersionKey, bytes), directory_,
                                  "writing the format version"));
      RETURN_IF_ERROR(Write(&batch, "writing the format version"));
    }
    RETURN_IF_ERROR(CheckHighWater(records));
    RETURN_IF_ERROR(ScrubNow());
    scrubber_ = std::thread([this] { ScrubInTheBackground(); });
    return absl::OkStatus();
  }

  absl::StatusOr<v1::ContributionRecord> GetContribution(const std::string& key) override {
    ASSIGN_OR_RETURN(std::optional<std::string> value, Get(contributions_, key));
    if (!value.has_value()) return internal::NoContribution(key);
    return ParseContribution(key, *value);
  }

  absl::StatusOr<std::vector<v1::ContributionRecord>> ListContributions() override {
    std::vector<v1::ContributionRecord> out;
    RETURN_IF_ERROR(ForEach(contributions_, [&](std::string_view key, std::string_view value) {
      ASSIGN_OR_RETURN(v1::ContributionRecord record, ParseContribution(key, value));
      out.push_back(std::move(record));
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<v1::SiteSessionRecord> GetSession(const std::string& session) override {
    ASSIGN_OR_RETURN(std::optional<std::string> value, Get(sessions_, session));
    if (!value.has_value()) return internal::NoSession(session);
    return ParseSession(session, *value);
  }

  absl::StatusOr<std::vector<v1::SiteSessionRecord>> ListSessions() override {
    std::vector<v1::SiteSessionRecord> out;
    RETURN_IF_ERROR(ForEach(sessions_, [&](std::string_view key, std::string_view value) {
      ASSIGN_OR_RETURN(v1::SiteSessionRecord record, ParseSession(key, value));
      out.push_back(std::move(record));
      return absl::OkStatus();
    }));
    return out;
  }

  absl::Status PutSession(const v1::SiteSessionRecord& session,
                          const v1::ContributionRecord* contribution) override {
    RETURN_IF_ERROR(internal::CheckPutSession(session, contribution));
    const std::string& label = session.session();
    ASSIGN_OR_RETURN(std::string session_value, Serialize(session, "the session record"));
    std::string contribution_value;
    if (contribution != nullptr) {
      ASSIGN_OR_RETURN(contribution_value, Serialize(*contribution, "the contribution record"));
    }
    const std::string what = absl::StrCat("PutSession \"", label, "\"");

    absl::MutexLock lock(&mu_);
    bool drops_secrets = false;
    ASSIGN_OR_RETURN(std::optional<std::string> stored_session, Get(sessions_, label));
    if (stored_session.has_value()) {
      ASSIGN_OR_RETURN(v1::SiteSessionRecord stored, ParseSession(label, *stored_session));
      drops_secrets = internal::DropsSecrets(stored, session);
    }
    rocksdb::WriteBatch batch;
    if (contribution != nullptr) {
      ASSIGN_OR_RETURN(std::optional<std::string> stored, Get(contributions_, contribution->key()));
      if (stored.has_value()) {
        ASSIGN_OR_RETURN(v1::ContributionRecord owner,
                         ParseContribution(contribution->key(), *stored));
        RETURN_IF_ERROR(internal::CheckContributionOwner(owner, label));
      }
      RETURN_IF_ERROR(FromRocksDb(
          batch.Put(contributions_, contribution->key(), contribution_value), directory_, what));
    }
    RETURN_IF_ERROR(FromRocksDb(batch.Put(sessions_, label, session_value), directory_, what));
    RETURN_IF_ERROR(Write(&batch, what));
    if (contribution != nullptr) {
      // Outside the log, so that a log that lost this write at a record boundary (which
      // recovery cannot tell from a log that never had it) is caught at the next open.
      RETURN_IF_ERROR(WriteHighWater(db_->GetLatestSequenceNumber()));
    }

    if (drops_secrets) {
      // Off the caller's path: the write is on disk, and the answer it records may leave
      // while the old versions are scrubbed (site_store.h).
      absl::MutexLock lock(&scrub_mu_);
      scrub_wanted_ = true;
    }
    return absl::OkStatus();
  }

  absl::Status ScrubNow() override {
    absl::MutexLock lock(&scrubbing_mu_);
    return Scrub();
  }

  absl::Status DeleteSession(const std::string& session) override {
    const std::string what = absl::StrCat("DeleteSession \"", session, "\"");
    absl::MutexLock lock(&mu_);
    rocksdb::WriteBatch batch;
    RETURN_IF_ERROR(FromRocksDb(batch.Delete(sessions_, session), directory_, what));
    RETURN_IF_ERROR(Write(&batch, what));
    return common::Annotate(ScrubNow(), what +
                                            ": the record is deleted, but scrubbing its old "
                                            "versions from the store's files failed (retry)");
  }

 private:
  static rocksdb::ReadOptions ReadAll() {
    rocksdb::ReadOptions options;
    options.verify_checksums = true;
    options.fill_cache = false;
    return options;
  }

  static const std::string& FamilyName(rocksdb::ColumnFamilyHandle* cf) { return cf->GetName(); }

  // nullopt if the key is absent.
  absl::StatusOr<std::optional<std::string>> Get(rocksdb::ColumnFamilyHandle* cf,
                                                 const rocksdb::Slice& key) {
    std::string value;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
    if (s.IsNotFound()) return std::nullopt;
    RETURN_IF_ERROR(FromRocksDb(
        s, directory_,
        absl::StrCat("reading family ", FamilyName(cf), ", key ", internal::Hex(View(key)))));
    return value;
  }

  // Calls `visit(key, value)` for every record of `cf` in key order; stops at the first
  // error.
  template <typename Visit>
  absl::Status ForEach(rocksdb::ColumnFamilyHandle* cf, Visit visit) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ReadAll(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      RETURN_IF_ERROR(visit(View(it->key()), View(it->value())));
    }
    return FromRocksDb(it->status(), directory_, absl::StrCat("reading family ", FamilyName(cf)));
  }

  absl::Status Write(rocksdb::WriteBatch* batch, const std::string& what) {
    return FromRocksDb(db_->Write(write_options_, batch), directory_, what);
  }

  absl::Status Damaged(const char* family, std::string_view key, const std::string& what) {
    return DataLoss(directory_,
                    absl::StrCat("family ", family, ", key ", internal::Hex(key), ": ", what));
  }

  absl::StatusOr<v1::ContributionRecord> ParseContribution(std::string_view key,
                                                           std::string_view bytes) {
    if (key.size() != internal::kContributionKeySize) {
      return Damaged(kContributionsCf, key,
                     absl::StrCat("the key has ", key.size(), " bytes, want ",
                                  internal::kContributionKeySize));
    }
    v1::ContributionRecord record;
    if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Damaged(kContributionsCf, key, "the record does not parse");
    }
    if (record.key() != key) {
      return Damaged(kContributionsCf, key,
                     absl::StrCat("the record is for key ", internal::Hex(record.key())));
    }
    if (record.session().empty()) {
      return Damaged(kContributionsCf, key, "the record names no session");
    }
    return record;
  }

  absl::StatusOr<v1::SiteSessionRecord> ParseSession(std::string_view key, std::string_view bytes) {
    v1::SiteSessionRecord record;
    if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Damaged(kSessionsCf, key, "the record does not parse");
    }
    if (key.empty() || record.session() != key) {
      return Damaged(kSessionsCf, key,
                     absl::StrCat("the record is for session ", internal::Hex(record.session())));
    }
    return record;
  }

  absl::Status CheckFormatVersion(std::string_view bytes) {
    if (bytes.size() != 4) {
      return Damaged(kMetaCf, kFormatVersionKey,
                     absl::StrCat("the format version has ", bytes.size(), " bytes, want 4"));
    }
    uint32_t version = 0;
    for (char c : bytes) version = (version << 8) | static_cast<unsigned char>(c);
    if (version == 0) return Damaged(kMetaCf, kFormatVersionKey, "the format version is 0");
    if (version > kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "site store ", directory_, " has format version ", version,
          ", written by a newer tessera-client; this one reads versions up to ", kFormatVersion,
          ": run the newer tessera-client (the store must not be deleted: it records what this "
          "site has already sent)"));
    }
    return absl::OkStatus();
  }

  // Removes dropped versions of session records from the store's files (site_store.h,
  // "Secrets on disk"): flush every family so the logs holding them become obsolete,
  // rewrite the sessions family down to the last level without them, then purge.
  absl::Status Scrub() ABSL_EXCLUSIVE_LOCKS_REQUIRED(scrubbing_mu_) {
    rocksdb::FlushOptions flush;
    flush.wait = true;
    flush.allow_write_stall = true;
    RETURN_IF_ERROR(FromRocksDb(db_->Flush(flush, handles_), directory_, "scrub: flushing"));
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    compact.exclusive_manual_compaction = true;
    RETURN_IF_ERROR(FromRocksDb(db_->CompactRange(compact, sessions_, nullptr, nullptr), directory_,
                                "scrub: compacting family sessions"));
    // Each flush leaves the contributions family a small table file, and with keys that are
    // hashes RocksDB moves them down a level without merging them: merge them once they add
    // up, or a site that ran for years would hold a file per contribution (and keep every
    // one open).
    if (TableFiles(contributions_) > kMaxContributionFiles) {
      RETURN_IF_ERROR(FromRocksDb(db_->CompactRange(compact, contributions_, nullptr, nullptr),
                                  directory_, "scrub: compacting family contributions"));
    }
    // Background jobs may still be deleting the files they made obsolete when Flush and
    // CompactRange return; re-enabling file deletions purges every obsolete file now, in
    // this thread.
    RETURN_IF_ERROR(
        FromRocksDb(db_->DisableFileDeletions(), directory_, "scrub: pausing file deletions"));
    RETURN_IF_ERROR(FromRocksDb(db_->EnableFileDeletions(/*force=*/false), directory_,
                                "scrub: purging obsolete files"));
    return absl::OkStatus();
  }

  // The scrubber thread: scrubs whenever a write dropped secrets; a failed scrub is logged
  // and tried again a second later (and at close, and at the next open).
  void ScrubInTheBackground() {
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

  // The high-water mark: 8 bytes of the sequence number (big-endian), then the same bytes
  // inverted, rewritten in place and synced after every write that records a masked input.
  absl::Status WriteHighWater(uint64_t sequence) {
    std::string bytes;
    for (int shift = 56; shift >= 0; shift -= 8)
      bytes.push_back(static_cast<char>(sequence >> shift));
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(~bytes[i]));
    const std::string path = directory_ + "/" + kHighWaterFile;
    if (high_water_fd_ < 0) {
      high_water_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (high_water_fd_ < 0) {
        return absl::UnavailableError(absl::StrCat("site store ", directory_, ": cannot open ",
                                                   path, ": ", std::strerror(errno)));
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

  // The log must reach the high-water mark: a store whose log ends before the last write
  // that recorded a masked input has lost the record of something that left the site.
  absl::Status CheckHighWater(size_t records) {
    const std::string path = directory_ + "/" + kHighWaterFile;
    if (!common::PathExists(path)) {
      // A store that never recorded a masked input (or written before the mark existed).
      return records > 0 ? WriteHighWater(db_->GetLatestSequenceNumber()) : absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::string bytes, common::ReadFile(path));
    bool intact = bytes.size() == 16;
    uint64_t sequence = 0;
    for (int i = 0; intact && i < 8; ++i) {
      intact = static_cast<char>(~bytes[i]) == bytes[8 + i];
      sequence = (sequence << 8) | static_cast<unsigned char>(bytes[i]);
    }
    if (!intact) return DataLoss(directory_, absl::StrCat(kHighWaterFile, " is damaged"));
    const uint64_t latest = db_->GetLatestSequenceNumber();
    if (latest < sequence) {
      return DataLoss(
          directory_,
          absl::StrCat("its log ends at write ", latest, ", before write ", sequence,
                       ", the last that recorded a masked input this site sent (", kHighWaterFile,
                       "; a "
                       "write-ahead log cut short, or a partial copy of the store; "
                       "logs replayed: ",
                       logs_at_open_, ")"));
    }
    return WriteHighWater(sequence);  // opens the file for the writes to come
  }

  // Table files of a family, on every level.
  uint64_t TableFiles(rocksdb::ColumnFamilyHandle* family) {
    uint64_t files = 0;
    rocksdb::ColumnFamilyMetaData meta;
    db_->GetColumnFamilyMetaData(family, &meta);
    for (const rocksdb::LevelMetaData& level : meta.levels) files += level.files.size();
    return files;
  }

  const std::string directory_;
  const std::unique_ptr<rocksdb::DB> db_;
  // Every handle opened (ours and any family a newer version added); destroyed before db_.
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* contributions_ = nullptr;
  rocksdb::ColumnFamilyHandle* sessions_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::WriteOptions write_options_;
  const std::string logs_at_open_;
  // The high-water mark file, open once the store recorded a masked input.
  int high_water_fd_ = -1;

  // Serialises writers.
  absl::Mutex mu_;
  // One scrub at a time (writers go on meanwhile: RocksDB's flush and compaction run
  // beside writes).
  absl::Mutex scrubbing_mu_ ABSL_ACQUIRED_AFTER(scrub_mu_);
  // Wakes the scrubber.
  absl::Mutex scrub_mu_;
  bool scrub_wanted_ ABSL_GUARDED_BY(scrub_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(scrub_mu_) = false;
  std::thread scrubber_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SiteStore>> OpenSiteStore(const std::string& directory) {
  RETURN_IF_ERROR(PrepareDirectory(directory));

  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
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
  rocksdb::ColumnFamilyOptions family_options;
  family_options.paranoid_file_checks = true;  // re-read every table file written

  // RocksDB refuses to open a database without naming every column family it has, so
  // families that a newer version added are opened too (and left alone).
  std::vector<std::string> names;
  if (common::PathExists(directory + "/CURRENT")) {
    RETURN_IF_ERROR(FromRocksDb(rocksdb::DB::ListColumnFamilies(options, directory, &names),
                                directory, "listing the column families"));
  } else {
    RETURN_IF_ERROR(CheckNewStoreIsEmpty(directory));
    common::LogInfo("site_store_created").With("dir", directory);
  }
  std::vector<std::string> missing;
  for (const char* name : {kContributionsCf, kSessionsCf, kMetaCf}) {
    if (std::find(names.begin(), names.end(), name) == names.end()) missing.push_back(name);
  }
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end()) {
    names.push_back(rocksdb::kDefaultColumnFamilyName);
  }
  names.insert(names.end(), missing.begin(), missing.end());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.reserve(names.size());
  for (const std::string& name : names) families.emplace_back(name, family_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  const std::string logs_at_open = LogFiles(directory);
  const rocksdb::Status s = rocksdb::DB::Open(options, directory, families, &handles, &db);
  if (IsLockConflict(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat("site store ", directory,
                     " is in use by another process (is another tessera-client running with this "
                     "data_dir?) or already open in this one (",
                     s.ToString(), ")"));
  }
  RETURN_IF_ERROR(FromRocksDb(s, directory, OpenContext(s, directory)));

  auto store = std::make_unique<RocksDbSiteStore>(directory, db, std::move(handles), logs_at_open);
  RETURN_IF_ERROR(store->Init(missing));
  return store;
}

}  // namespace tessera::client
