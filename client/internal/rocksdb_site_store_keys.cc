// The RocksDB SiteStore's session keys: each open session's snapshot is sealed under a key
// of its own, kept in a slot of one file beside RocksDB's and overwritten with zeros when
// the session's snapshot is dropped (client/internal/rocksdb_site_store.h, "Why the
// snapshots are sealed").
//
// The file, SESSION_KEYS: slots of 64 bytes, the SHA-256 of a session's label then its
// 32-byte key; a slot of zeros is free. A slot is written in place and the file synced
// (fdatasync) before the first snapshot sealed under the key is written, and overwritten
// with zeros (synced) once the session's snapshot is gone. No file is created or removed
// per session: the filesystem's inode allocation was most of that cost when sessions
// follow each other quickly.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/rocksdb_site_store.h"
#include "client/internal/site_store_files.h"
#include "client/internal/site_store_rules.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace tessera::client::internal {
namespace {

constexpr size_t kDigestBytes = 32;
constexpr size_t kSlotBytes = kDigestBytes + crypto::AesGcm256::kKeyBytes;

// What a sealed snapshot (or its input kept apart) is bound to besides its key: what it
// is and its session.
std::string SealingContext(std::string_view label, std::string_view family) {
  std::string context(family == kSessionInputsCf ? "tessera/site-input/v1"
                                                 : "tessera/site-snapshot/v1");
  context.push_back('\0');
  context.append(label);
  return context;
}

absl::Status Unavailable(const std::string& path, const char* what) {
  return absl::UnavailableError(
      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

std::string RocksDbSiteStore::KeysPath() const {
  return absl::StrCat(directory_, "/", kSessionKeysFile);
}

absl::Status RocksDbSiteStore::LoadKeys() {
  if (keys_loaded_ && !read_only_) return absl::OkStatus();
  const std::string path = KeysPath();
  if (keys_fd_ < 0) {
    keys_fd_ = read_only_ ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC)
                          : ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (keys_fd_ < 0) {
      if (read_only_ && errno == ENOENT) return absl::OkStatus();  // no key made yet
      return Unavailable(path, "open");
    }
  }
  struct stat st;
  if (::fstat(keys_fd_, &st) != 0) return Unavailable(path, "stat");
  // Read straight into the string that is wiped when this function returns.
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n =
        ::pread(keys_fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0) return Unavailable(path, "read");
    if (n == 0) {  // shorter than it was a moment ago: read what is there
      bytes.resize(done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  crypto::SecretBytes held(std::move(bytes));
  if (held.size() % kSlotBytes != 0) {
    return DataLoss(directory_,
                    absl::StrCat(kSessionKeysFile, " has ", held.size(),
                                 " bytes, not a whole number of ", kSlotBytes, "-byte slots"));
  }
  key_slots_.clear();
  keys_.clear();
  const std::string_view view = held.view();
  for (size_t slot = 0; slot * kSlotBytes < view.size(); ++slot) {
    const std::string_view entry = view.substr(slot * kSlotBytes, kSlotBytes);
    const std::string digest(entry.substr(0, kDigestBytes));
    const bool free = digest == std::string(kDigestBytes, '\0');
    key_slots_.push_back(free ? std::string() : digest);
    if (!free) {
      keys_.insert_or_assign(digest, crypto::SecretBytes::CopyFrom(entry.substr(kDigestBytes)));
    }
  }
  keys_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> RocksDbSiteStore::SealSnapshot(const std::string& label,
                                                           std::string_view machine,
                                                           const char* family) {
  const std::string digest = crypto::Sha256(label);
  crypto::SecretBytes key;
  {
    absl::MutexLock lock(&keys_mu_);
    RETURN_IF_ERROR(LoadKeys());
    if (auto it = keys_.find(digest); it != keys_.end()) {
      key = it->second.Clone();
    } else {
      ASSIGN_OR_RETURN(key, crypto::RandomBytes(crypto::AesGcm256::kKeyBytes));
      size_t slot = 0;
      while (slot < key_slots_.size() && !key_slots_[slot].empty()) ++slot;
      std::string slot_bytes = digest;
      slot_bytes.append(key.view());
      const crypto::SecretBytes entry(std::move(slot_bytes));
      const off_t offset = static_cast<off_t>(slot * kSlotBytes);
      if (::pwrite(keys_fd_, entry.data(), entry.size(), offset) !=
              static_cast<ssize_t>(entry.size()) ||
          ::fdatasync(keys_fd_) != 0) {
        return Unavailable(KeysPath(), "write the key of a session to");
      }
      if (slot == key_slots_.size()) key_slots_.emplace_back();
      key_slots_[slot] = digest;
      keys_.insert_or_assign(digest, key.Clone());
    }
  }
  ASSIGN_OR_RETURN(crypto::AesGcm256 aead, crypto::AesGcm256::Create(std::move(key)));
  return aead.Encrypt(machine, SealingContext(label, family));
}

absl::StatusOr<crypto::SecretBytes> RocksDbSiteStore::OpenSnapshot(const std::string& label,
                                                                   std::string_view sealed,
                                                                   const char* family) {
  const std::string digest = crypto::Sha256(label);
  crypto::SecretBytes key;
  {
    absl::MutexLock lock(&keys_mu_);
    auto it = keys_.find(digest);
    if (it == keys_.end()) {
      RETURN_IF_ERROR(LoadKeys());  // a read-only store reads the daemon's latest keys
      it = keys_.find(digest);
    }
    if (it == keys_.end()) {
      return absl::NotFoundError(absl::StrCat("site store ", directory_,
                                              ": no key for the snapshot of session \"", label,
                                              "\" in ", kSessionKeysFile));
    }
    key = it->second.Clone();
  }
  ASSIGN_OR_RETURN(crypto::AesGcm256 aead, crypto::AesGcm256::Create(std::move(key)));
  absl::StatusOr<crypto::SecretBytes> machine = aead.Decrypt(sealed, SealingContext(label, family));
  if (!machine.ok()) {
    return DamagedRecord(directory_, family, label,
                         std::string_view(family) == kSessionInputsCf
                             ? "the sealed input does not open under its session's key"
                             : "the sealed snapshot does not open under its session's key");
  }
  return machine;
}

absl::Status RocksDbSiteStore::ForgetEndedKeys() {
  // The sessions that still have a snapshot keep their keys.
  std::set<std::string> live;
  RETURN_IF_ERROR(ForEach(machines_, [&](std::string_view key, std::string_view) {
    live.insert(crypto::Sha256(key));
    return absl::OkStatus();
  }));
  absl::MutexLock lock(&keys_mu_);
  RETURN_IF_ERROR(LoadKeys());
  bool cleared = false;
  const std::string zeros(kSlotBytes, '\0');
  for (size_t slot = 0; slot < key_slots_.size(); ++slot) {
    if (key_slots_[slot].empty() || live.contains(key_slots_[slot])) continue;
    if (::pwrite(keys_fd_, zeros.data(), zeros.size(), static_cast<off_t>(slot * kSlotBytes)) !=
        static_cast<ssize_t>(zeros.size())) {
      return Unavailable(KeysPath(), "clear the key of an ended session in");
    }
    keys_.erase(key_slots_[slot]);
    key_slots_[slot].clear();
    cleared = true;
  }
  if (cleared && ::fdatasync(keys_fd_) != 0) return Unavailable(KeysPath(), "sync");
  return absl::OkStatus();
}

}  // namespace tessera::client::internal
