// Backups of the coordinator store (docs/operations.md, "Backup, restore and upgrade").
//
// A backup is a folder with two things in it:
//   store/              the files of a RocksDB checkpoint of the running store, unchanged;
//   manifest.textproto  a v1::StoreBackupManifest (proto/admin.proto): the store's schema
//                       version, the coordinator's version, when it was taken, each file's
//                       size and SHA-256, and how many tasks it holds. Written last: a
//                       folder without it is an incomplete backup and is never restored.
//
// The three parties:
//   - the coordinator (StreamStoreBackup): checkpoints its store while it runs into a
//     staging folder inside its data directory, streams the files and the manifest, and
//     removes the checkpoint;
//   - the console (BackupWriter, `tessera admin backup DIR`): writes the stream into DIR
//     and checks every file against the manifest before writing the manifest;
//   - the coordinator daemon started with --restore-from (RestoreStoreBackup): checks the
//     backup again and copies it into an empty data directory.
// A backup holds what the coordinator store holds (tasks, rounds, models, the client
// registry, in-flight rounds): no key, share or mask — the store never has any.
//
// Thread safety: StreamStoreBackup may run concurrently with itself and with every store
// operation. A BackupWriter is used by one thread. Errors name the file and what is wrong;
// a refused restore leaves the data directory as it was.
#ifndef TESSERA_COORDINATOR_STORE_BACKUP_H_
#define TESSERA_COORDINATOR_STORE_BACKUP_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/store.h"
#include "proto/admin.pb.h"

namespace tessera::coordinator {

inline constexpr char kBackupManifestFile[] = "manifest.textproto";
inline constexpr char kBackupStoreFolder[] = "store";
// Largest data chunk of a backup stream.
inline constexpr size_t kBackupChunkBytes = size_t{1} << 20;

// Where checkpoints are staged: "<data_dir>/backup-staging" (inside the data directory, so
// the checkpoint hard-links the store's files and needs no write access elsewhere — the
// systemd unit allows writes to the state directory only). RocksDB ignores the folder.
std::string BackupStagingDir(const std::string& data_dir);
// Removes the staging folder and everything in it (leftovers of a backup interrupted by a
// crash). OK if there is none.
absl::Status RemoveBackupStaging(const std::string& data_dir);

// Checkpoints `store` into a new folder under `staging_dir` (created 0700 if missing),
// hands every file to `send` in chunks of at most kBackupChunkBytes (files in name order),
// then one chunk with the manifest, and removes the checkpoint, also on error. `send`
// returning false (the receiver went away) stops the stream with CANCELLED. `now` is the
// manifest's created_ms. UNIMPLEMENTED for a store without a disk (Store::Checkpoint).
absl::Status StreamStoreBackup(Store& store, const std::string& staging_dir, absl::Time now,
                               const std::function<bool(const v1::BackupStoreChunk&)>& send);

// Writes a backup stream into a folder.
class BackupWriter {
 public:
  // Creates `dir` (mode 0700) and its store/ folder. ALREADY_EXISTS if `dir` exists and is
  // not an empty folder (a backup never overwrites anything).
  static absl::StatusOr<std::unique_ptr<BackupWriter>> Create(const std::string& dir);

  BackupWriter(const BackupWriter&) = delete;
  BackupWriter& operator=(const BackupWriter&) = delete;
  // Closes the file being written; keeps what was written (see Abandon).
  ~BackupWriter();

  // Takes the stream's next chunk. Data chunks must come file by file with contiguous
  // offsets and safe names (no '/', not "." or ".."); the last chunk is the manifest: then
  // every file written is checked against it (the same set of files, sizes and SHA-256)
  // and manifest.textproto is written. DATA_LOSS naming the file when the stream and the
  // manifest disagree, INVALID_ARGUMENT for a malformed stream, FAILED_PRECONDITION after
  // the manifest.
  absl::Status Add(const v1::BackupStoreChunk& chunk);

  // True once the manifest was taken and written.
  bool complete() const { return complete_; }
  // The manifest (valid once complete()).
  const v1::StoreBackupManifest& manifest() const { return manifest_; }
  // Bytes of file data written so far.
  uint64_t bytes() const { return bytes_; }

  // Removes every file this writer wrote and the folders it created, after a failed
  // stream: an incomplete backup is never left to be taken for a good one.
  void Abandon();

 private:
  explicit BackupWriter(std::string dir, bool created_dir);
  absl::Status AddData(const v1::BackupStoreChunk& chunk);
  absl::Status Finish(const v1::StoreBackupManifest& manifest);

  std::string dir_;
  bool created_dir_ = false;
  int fd_ = -1;  // the file being written, if any
  std::string current_;
  uint64_t current_size_ = 0;
  std::map<std::string, uint64_t> sizes_;  // every file written, with its size
  uint64_t bytes_ = 0;
  bool complete_ = false;
  v1::StoreBackupManifest manifest_;
};

// Reads DIR/manifest.textproto and checks DIR/store against it: exactly the files listed,
// each of the listed size and SHA-256; and a schema version this coordinator reads.
// NOT_FOUND without a manifest (an incomplete backup), DATA_LOSS naming the first file
// that differs, FAILED_PRECONDITION for a backup from a newer store schema.
absl::StatusOr<v1::StoreBackupManifest> VerifyStoreBackup(const std::string& dir);

struct RestoreSummary {
  v1::StoreBackupManifest manifest;
  uint32_t tasks = 0;
  uint32_t unfinished_tasks = 0;
};

// Checks the backup in `backup_dir` (VerifyStoreBackup), copies its store into
// `data_dir` — which must not exist or be an empty folder (FAILED_PRECONDITION otherwise:
// move the old store away first) — with modes 0700/0600 and fsync, then opens it as a
// coordinator store to confirm it reads and counts its tasks. On any error after copying
// began, what was copied is removed again.
absl::StatusOr<RestoreSummary> RestoreStoreBackup(const std::string& backup_dir,
                                                  const std::string& data_dir);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_STORE_BACKUP_H_
