// Small file helpers with errors that name the path.
#ifndef TESSERA_COMMON_FILES_H_
#define TESSERA_COMMON_FILES_H_

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::common {

// Whole file as bytes. NOT_FOUND if missing; PERMISSION_DENIED if unreadable;
// INVALID_ARGUMENT if it is a directory.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` atomically: a temporary file in the same directory is
// written, fsync'ed, given `mode` and renamed over `path`. A reader sees the old file or
// the whole new one, never a part — which is what makes ready files safe to poll.
absl::Status WriteFileAtomic(const std::string& path, std::string_view contents,
                             mode_t mode = 0644);

// A daemon's ready file (config `ready_file`): creates its folder (0755) when missing — as
// systemd's RuntimeDirectory would — then writes `contents` with WriteFileAtomic. Errors
// name the file as the ready_file, for a clear message at start-up.
absl::Status WriteReadyFile(const std::string& path, std::string_view contents);
// Removes a daemon's ready file when it stops, so that nothing takes a stopped daemon for a
// ready one. A missing file is fine; other errors name the file. No-op for an empty path.
absl::Status RemoveReadyFile(const std::string& path);

// Like WriteFileAtomic, but fails with ALREADY_EXISTS rather than replace a file. For keys.
absl::Status WriteNewFile(const std::string& path, std::string_view contents, mode_t mode);

// FAILED_PRECONDITION unless `path` is a regular file that neither group nor others may
// read or write (like ssh does for private keys).
absl::Status CheckPrivateFileMode(const std::string& path);

// Creates `path` and missing parents with `mode`. OK if it exists as a directory.
absl::Status MakeDirectories(const std::string& path, mode_t mode = 0755);

bool PathExists(const std::string& path);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_FILES_H_
