#include "coordinator/store_backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "common/version.h"
#include "crypto/hash.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {
namespace {

namespace fs = std::filesystem;

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

bool IsSafeName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.size() <= 255 &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

bool IsUnfinished(const v1::TaskRecord& task) {
  return task.state() != v1::TASK_COMPLETED && task.state() != v1::TASK_FAILED &&
         task.state() != v1::TASK_CANCELLED;
}

// The regular files of `dir` by name; INTERNAL for anything else in it.
absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) {
      return absl::InternalError(
          absl::StrCat(dir, " holds ", entry.path().filename().string(), ", not a regular file"));
    }
    names.push_back(entry.path().filename().string());
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", dir, ": ", ec.message()));
  std::sort(names.begin(), names.end());
  return names;
}

// Reads `path` in chunks of kBackupChunkBytes, calling `each(offset, bytes)`; `each`
// returning a non-OK status stops the read with it. Returns the file's SHA-256 (hex) and
// size.
absl::Status ReadInChunks(const std::string& path,
                          const std::function<absl::Status(uint64_t, std::string_view)>& each,
                          std::string* sha256_hex, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("opening", path);
  crypto::Sha256Stream hash;
  std::string buffer(kBackupChunkBytes, '\0');
  uint64_t offset = 0;
  absl::Status status;
  while (status.ok()) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = Errno("reading", path);
      break;
    }
    const std::string_view piece(buffer.data(), static_cast<size_t>(n));
    hash.Update(piece);
    // An empty file still gets one (empty) chunk, so that the receiver creates it.
    if (n > 0 || offset == 0) status = each(offset, piece);
    offset += static_cast<uint64_t>(n);
    if (n == 0) break;
  }
  ::close(fd);
  RETURN_IF_ERROR(status);
  *sha256_hex = crypto::ToHex(hash.Finish());
  *size = offset;
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("writing", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("syncing", dir);
  return absl::OkStatus();
}

// ALREADY_EXISTS unless `dir` is missing or an empty folder; sets *exists.
absl::Status RequireMissingOrEmpty(const std::string& dir, const char* what, bool* exists) {
  std::error_code ec;
  *exists = fs::exists(dir, ec);
  if (!*exists) return absl::OkStatus();
  if (!fs::is_directory(dir, ec) || !fs::is_empty(dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, " ", dir, " exists and is not an empty folder"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string BackupStagingDir(const std::string& data_dir) {
  return (fs::path(data_dir) / "backup-staging").string();
}

absl::Status RemoveBackupStaging(const std::string& data_dir) {
  std::error_code ec;
  fs::remove_all(BackupStagingDir(data_dir), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("removing ", BackupStagingDir(data_dir), ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status StreamStoreBackup(Store& store, const std::string& staging_dir, absl::Time now,
                               const std::function<bool(const v1::BackupStoreChunk&)>& send) {
  static std::atomic<uint64_t> sequence{0};
  RETURN_IF_ERROR(common::MakeDirectories(staging_dir, 0700));
  const std::string checkpoint =
      (fs::path(staging_dir) / absl::StrCat("checkpoint-", ::getpid(), "-", sequence++)).string();
  // Tasks are never deleted, so the count just before the checkpoint is a lower bound of
  // what it holds (RestoreStoreBackup counts exactly).
  ASSIGN_OR_RETURN(std::vector<v1::TaskRecord> tasks, store.ListTasks());
  RETURN_IF_ERROR(store.Checkpoint(checkpoint));
  struct RemoveCheckpoint {
    const std::string& dir;
    const std::string& staging;
    ~RemoveCheckpoint() {
      std::error_code ignored;  // a leftover is removed at the next start
      fs::remove_all(dir, ignored);
      fs::remove(staging, ignored);  // only when empty: another backup may be staging
    }
  } remove{checkpoint, staging_dir};

  v1::StoreBackupManifest manifest;
  manifest.set_schema_version(kStoreSchemaVersion);
  manifest.set_coordinator_version(std::string(common::Version()));
  manifest.set_created_ms(absl::ToUnixMillis(now));
  manifest.set_tasks(static_cast<uint32_t>(tasks.size()));
  manifest.set_unfinished_tasks(
      static_cast<uint32_t>(std::count_if(tasks.begin(), tasks.end(), IsUnfinished)));
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(checkpoint));
  for (const std::string& name : names) {
    v1::StoreBackupManifest::File* file = manifest.add_files();
    file->set_name(name);
    std::string sha256;
    uint64_t size = 0;
    RETURN_IF_ERROR(ReadInChunks((fs::path(checkpoint) / name).string(),
                                 [&](uint64_t offset, std::string_view data) {
                                   v1::BackupStoreChunk chunk;
                                   chunk.set_file(name);
                                   chunk.set_offset(offset);
                                   chunk.set_data(std::string(data));
                                   if (!send(chunk))
                                     return absl::CancelledError("the backup's receiver went away");
                                   return absl::OkStatus();
                                 },
                                 &sha256, &size));
    file->set_size(size);
    file->set_sha256(sha256);
  }
  v1::BackupStoreChunk last;
  *last.mutable_manifest() = std::move(manifest);
  if (!send(last)) return absl::CancelledError("the backup's receiver went away");
  return absl::OkStatus();
}

// ---- BackupWriter ----

BackupWriter::BackupWriter(std::string dir, bool created_dir)
    : dir_(std::move(dir)), created_dir_(created_dir) {}

BackupWriter::~BackupWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<BackupWriter>> BackupWriter::Create(const std::string& dir) {
  bool exists = false;
  RETURN_IF_ERROR(RequireMissingOrEmpty(dir, "backup folder", &exists));
  RETURN_IF_ERROR(common::MakeDirectories(dir, 0700));
  if (::chmod(dir.c_str(), 0700) != 0) return Errno("setting the mode of", dir);
  RETURN_IF_ERROR(common::MakeDirectories((fs::path(dir) / kBackupStoreFolder).string(), 0700));
  return std::unique_ptr<BackupWriter>(new BackupWriter(dir, !exists));
}

absl::Status BackupWriter::Add(const v1::BackupStoreChunk& chunk) {
  if (complete_) return absl::FailedPreconditionError("the backup stream went on after its end");
  if (chunk.has_manifest()) return Finish(chunk.manifest());
  return AddData(chunk);
}

absl::Status BackupWriter::AddData(const v1::BackupStoreChunk& chunk) {
  const std::string& name = chunk.file();
  if (!IsSafeName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "backup stream names a file \"", name.substr(0, 64), "\" that is not a plain name"));
  }
  const std::string path = (fs::path(dir_) / kBackupStoreFolder / name).string();
  if (name != current_) {
    if (sizes_.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("backup stream sends ", name, " twice"));
    }
    if (fd_ >= 0) {
      const int rc = ::fsync(fd_);
      ::close(fd_);
      fd_ = -1;
      if (rc != 0) return Errno("syncing", current_);
    }
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) return Errno("creating", path);
    current_ = name;
    current_size_ = 0;
    sizes_[name] = 0;
  }
  if (chunk.offset() != current_size_) {
    return absl::InvalidArgumentError(absl::StrCat("backup stream sends ", name, " at offset ",
                                                   chunk.offset(), ", want ", current_size_));
  }
  RETURN_IF_ERROR(WriteAll(fd_, chunk.data(), path));
  current_size_ += chunk.data().size();
  sizes_[name] = current_size_;
  bytes_ += chunk.data().size();
  return absl::OkStatus();
}

absl::Status BackupWriter::Finish(const v1::StoreBackupManifest& manifest) {
  if (fd_ >= 0) {
    const int rc = ::fsync(fd_);
    ::close(fd_);
    fd_ = -1;
    if (rc != 0) return Errno("syncing", current_);
  }
  const std::string store_dir = (fs::path(dir_) / kBackupStoreFolder).string();
  RETURN_IF_ERROR(SyncDirectory(store_dir));
  // The files were hashed as they streamed on the coordinator; read them back here, so a
  // backup is only complete when what is on this disk is what the coordinator sent.
  std::set<std::string> listed;
  for (const v1::StoreBackupManifest::File& file : manifest.files()) {
    listed.insert(file.name());
    if (!sizes_.contains(file.name())) {
      return absl::DataLossError(
          absl::StrCat("backup manifest lists ", file.name(), ", which the stream did not send"));
    }
  }
  for (const auto& [name, size] : sizes_) {
    if (!listed.contains(name)) {
      return absl::DataLossError(
          absl::StrCat("backup stream sent ", name, ", which its manifest does not list"));
    }
  }
  manifest_ = manifest;
  const std::string manifest_path = (fs::path(dir_) / kBackupManifestFile).string();
  // Written to a temporary name first: VerifyStoreBackup needs the manifest in place.
  RETURN_IF_ERROR(
      common::WriteFileAtomic(manifest_path + ".unverified", common::ToTextProto(manifest), 0600));
  std::error_code ec;
  fs::rename(manifest_path + ".unverified", manifest_path, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", manifest_path, ": ", ec.message()));
  absl::StatusOr<v1::StoreBackupManifest> verified = VerifyStoreBackup(dir_);
  if (!verified.ok()) {
    fs::remove(manifest_path, ec);
    return verified.status();
  }
  RETURN_IF_ERROR(SyncDirectory(dir_));
  complete_ = true;
  return absl::OkStatus();
}

void BackupWriter::Abandon() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ignored;
  fs::remove(fs::path(dir_) / kBackupManifestFile, ignored);
  for (const auto& [name, size] : sizes_) {
    fs::remove(fs::path(dir_) / kBackupStoreFolder / name, ignored);
  }
  fs::remove(fs::path(dir_) / kBackupStoreFolder, ignored);
  if (created_dir_) fs::remove(dir_, ignored);
  sizes_.clear();
}

// ---- Verify and restore ----

absl::StatusOr<v1::StoreBackupManifest> VerifyStoreBackup(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / kBackupManifestFile).string();
  if (!common::PathExists(manifest_path)) {
    return absl::NotFoundError(
        absl::StrCat(dir, " has no ", kBackupManifestFile, ": not a backup, or an incomplete one"));
  }
  v1::StoreBackupManifest manifest;
  RETURN_IF_ERROR(common::LoadProtoFile(manifest_path, &manifest));
  if (manifest.schema_version() == 0 || manifest.schema_version() > kStoreSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("backup ", dir, " holds a store of schema version ", manifest.schema_version(),
                     "; this tessera-coordinator reads versions 1 to ", kStoreSchemaVersion));
  }
  const std::string store_dir = (fs::path(dir) / kBackupStoreFolder).string();
  ASSIGN_OR_RETURN(std::vector<std::string> present, ListFiles(store_dir));
  std::set<std::string> listed;
  for (const v1::StoreBackupManifest::File& file : manifest.files()) {
    if (!IsSafeName(file.name()) || !listed.insert(file.name()).second) {
      return absl::DataLossError(absl::StrCat(manifest_path, " lists a bad or repeated file name"));
    }
    const std::string path = (fs::path(store_dir) / file.name()).string();
    if (!common::PathExists(path)) {
      return absl::DataLossError(absl::StrCat("backup file ", path, " is missing"));
    }
    std::string sha256;
    uint64_t size = 0;
    RETURN_IF_ERROR(ReadInChunks(
        path, [](uint64_t, std::string_view) { return absl::OkStatus(); }, &sha256, &size));
    if (size != file.size() || sha256 != file.sha256()) {
      return absl::DataLossError(
          absl::StrCat("backup file ", path, " has ", size, " bytes with SHA-256 ", sha256,
                       "; the manifest says ", file.size(), " bytes with SHA-256 ", file.sha256()));
    }
  }
  for (const std::string& name : present) {
    if (!listed.contains(name)) {
      return absl::DataLossError(absl::StrCat("backup folder ", store_dir, " holds ", name,
                                              ", which the manifest does not list"));
    }
  }
  return manifest;
}

absl::StatusOr<RestoreSummary> RestoreStoreBackup(const std::string& backup_dir,
                                                  const std::string& data_dir) {
  ASSIGN_OR_RETURN(v1::StoreBackupManifest manifest, VerifyStoreBackup(backup_dir));
  bool exists = false;
  if (absl::Status empty = RequireMissingOrEmpty(data_dir, "data_dir", &exists); !empty.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(empty.message(),
                     ": a restore only goes into an empty data directory; stop the "
                     "coordinator and move the old one away first"));
  }
  RETURN_IF_ERROR(common::MakeDirectories(data_dir, 0700));
  std::vector<std::string> copied;
  auto undo = [&] {
    std::error_code ignored;
    for (const std::string& path : copied) fs::remove(path, ignored);
    // Opening the store may have added files of its own (LOG, a new MANIFEST).
    for (const fs::directory_entry& entry : fs::directory_iterator(data_dir, ignored)) {
      fs::remove_all(entry.path(), ignored);
    }
    if (!exists) fs::remove(data_dir, ignored);
  };
  absl::StatusOr<RestoreSummary> summary = [&]() -> absl::StatusOr<RestoreSummary> {
    for (const v1::StoreBackupManifest::File& file : manifest.files()) {
      const std::string from = (fs::path(backup_dir) / kBackupStoreFolder / file.name()).string();
      const std::string to = (fs::path(data_dir) / file.name()).string();
      const int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return Errno("creating", to);
      copied.push_back(to);
      std::string sha256;
      uint64_t size = 0;
      absl::Status st = ReadInChunks(
          from, [&](uint64_t, std::string_view data) { return WriteAll(fd, data, to); }, &sha256,
          &size);
      if (st.ok() && ::fsync(fd) != 0) st = Errno("syncing", to);
      ::close(fd);
      RETURN_IF_ERROR(st);
      if (sha256 != file.sha256()) {
        return absl::DataLossError(absl::StrCat("backup file ", from, " changed while restoring"));
      }
    }
    RETURN_IF_ERROR(SyncDirectory(data_dir));
    ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenRocksDbStore(data_dir));
    ASSIGN_OR_RETURN(std::vector<v1::TaskRecord> tasks, store->ListTasks());
    RestoreSummary out;
    out.manifest = manifest;
    out.tasks = static_cast<uint32_t>(tasks.size());
    out.unfinished_tasks =
        static_cast<uint32_t>(std::count_if(tasks.begin(), tasks.end(), IsUnfinished));
    return out;
  }();
  if (!summary.ok()) undo();
  return summary;
}

}  // namespace tessera::coordinator
