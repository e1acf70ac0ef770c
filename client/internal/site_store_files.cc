// Directory, open-time and status helpers of the RocksDB site store
// (client/internal/site_store_files.h).
#include "client/internal/site_store_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"
#include "rocksdb/env.h"
#include "rocksdb_status/rocksdb_status.h"

namespace tessera::client::internal {
namespace {

// Appended to every DATA_LOSS: what the operator must (not) do.
constexpr char kRestoreAdvice[] =
    ". The site store records what this site has already sent: restore it from a backup; "
    "do not delete it (an empty store would let this site send the same contribution again)";

}  // namespace

absl::Status DataLoss(const std::string& directory, const std::string& what) {
  return absl::DataLossError(absl::StrCat("site store ", directory, ": ", what, kRestoreAdvice));
}

// Corruption is DATA_LOSS with the advice; the other codes as rocksdb_status::CodeOf.
absl::Status FromRocksDb(const rocksdb::Status& s, const std::string& directory,
                         const std::string& context) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsCorruption()) return DataLoss(directory, absl::StrCat(context, ": ", s.ToString()));
  return absl::Status(rocksdb_status::CodeOf(s),
                      absl::StrCat("site store ", directory, ": ", context, ": ", s.ToString()));
}

// The directory exists (created 0700 if it did not), is ours and only ours.
absl::Status PrepareDirectory(const std::string& directory) {
  struct stat st;
  if (::stat(directory.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return absl::InternalError(absl::StrCat("site store directory ", directory,
                                              ": cannot stat: ", std::strerror(errno)));
    }
    RETURN_IF_ERROR(common::Annotate(common::MakeDirectories(directory, 0700),
                                     "creating the site store directory"));
    // mkdir applies the umask; the mode must be exactly 0700 whatever the umask.
    if (::chmod(directory.c_str(), 0700) != 0 || ::stat(directory.c_str(), &st) != 0) {
      return absl::InternalError(
          absl::StrCat("site store directory ", directory, ": ", std::strerror(errno)));
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("site store path ", directory, " exists and is not a directory"));
  }
  if (st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site store directory ", directory, " belongs to uid ", st.st_uid,
        ", not to this process's uid ", ::geteuid(),
        "; it holds session secrets: chown it to the daemon's user and chmod 700 ", directory));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "site store directory %s has mode %04o, which lets group or others at it; it holds "
        "session secrets: run chmod 700 %s",
        directory, st.st_mode & 07777, directory));
  }
  return absl::OkStatus();
}

// A directory without RocksDB's CURRENT file is a new store, unless it holds table or log
// files: then the store's index was lost, and opening would start an empty store next to
// (and later delete) the records.
absl::Status CheckNewStoreIsEmpty(const std::string& directory) {
  std::vector<std::string> children;
  rocksdb::Env* env = rocksdb::Env::Default();
  RETURN_IF_ERROR(FromRocksDb(env->GetChildren(directory, &children), directory, "listing"));
  for (const std::string& name : children) {
    const bool data = name.ends_with(".sst") || name.ends_with(".log");
    if (data) {
      return DataLoss(directory, absl::StrCat("there is no CURRENT file, but ", name,
                                              " holds records (the store's index is lost)"));
    }
  }
  return absl::OkStatus();
}

std::string LogFiles(const std::string& directory) {
  std::vector<std::string> children;
  std::vector<std::string> logs;
  if (rocksdb::Env::Default()->GetChildren(directory, &children).ok()) {
    for (const std::string& name : children) {
      if (name.ends_with(".log")) logs.push_back(name);
    }
  }
  std::sort(logs.begin(), logs.end());
  return absl::StrJoin(logs, ", ");
}

std::string OpenContext(const rocksdb::Status& s, const std::string& directory) {
  const std::string text = s.ToString();
  if (!s.IsCorruption() || text.find(".sst") != std::string::npos ||
      text.find("MANIFEST") != std::string::npos || text.find("CURRENT") != std::string::npos) {
    return "opening";
  }
  const std::string logs = LogFiles(directory);
  if (logs.empty()) return "opening";
  return absl::StrCat("opening (RocksDB names no file; the write-ahead logs replayed at open are ",
                      logs, ")");
}

}  // namespace tessera::client::internal
