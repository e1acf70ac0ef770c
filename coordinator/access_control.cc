#include "coordinator/access_control.h"

#include <sys/stat.h>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"

namespace tessera::coordinator {
namespace {

std::string Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

AccessControl::AccessControl(const common::Clock* clock, AccessControlOptions options)
    : clock_(clock), options_(std::move(options)), crl_(options_.ca_cert_pem) {}

absl::StatusOr<AccessControl::FileStamp> AccessControl::Stamp() const {
  struct stat st;
  if (::stat(options_.crl_file.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("crl_file ", options_.crl_file, " cannot be read"));
  }
  FileStamp stamp;
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  stamp.size = static_cast<int64_t>(st.st_size);
  return stamp;
}

absl::Status AccessControl::ReadCrlFile(bool* replaced) {
  ASSIGN_OR_RETURN(FileStamp stamp, Stamp());
  ASSIGN_OR_RETURN(std::string pem, common::ReadFile(options_.crl_file));
  absl::StatusOr<bool> taken = crl_.Offer(pem);
  {
    absl::MutexLock lock(&mu_);
    stamp_ = stamp;  // a refused file is not re-read until it changes again
  }
  if (!taken.ok()) {
    return common::Annotate(taken.status(), absl::StrCat("crl_file ", options_.crl_file));
  }
  *replaced = *taken;
  return absl::OkStatus();
}

absl::Status AccessControl::LoadCrl() {
  if (options_.crl_file.empty()) return absl::OkStatus();
  bool replaced = false;
  RETURN_IF_ERROR(ReadCrlFile(&replaced));
  common::LogInfo("crl_loaded")
      .With("file", options_.crl_file)
      .With("number", crl_.number())
      .With("next_update", Utc(crl_.next_update()));
  return absl::OkStatus();
}

std::vector<crypto::RevokedCertificate> AccessControl::ReloadCrl(bool force) {
  std::vector<crypto::RevokedCertificate> added;
  if (options_.crl_file.empty()) return added;
  absl::StatusOr<FileStamp> stamp = Stamp();
  if (!stamp.ok()) {
    if (force) common::LogError("crl_refused").With("error", stamp.status().ToString());
    return added;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!force && stamp->mtime_ns == stamp_.mtime_ns && stamp->size == stamp_.size) return added;
  }
  std::string before_pem = crl_.pem();
  bool replaced = false;
  absl::Status st = ReadCrlFile(&replaced);
  if (!st.ok()) {
    common::LogError("crl_refused")
        .With("file", options_.crl_file)
        .With("kept_number", crl_.number())
        .With("error", std::string(st.message()));
    return added;
  }
  if (!replaced) {
    if (force) common::LogInfo("crl_unchanged").With("number", crl_.number());
    return added;
  }
  std::set<std::string> before;
  if (!before_pem.empty()) {
    auto old = crypto::VerifyCrl(before_pem, options_.ca_cert_pem);
    if (old.ok()) {
      for (const auto& r : old->revoked) before.insert(r.serial_hex);
    }
  }
  auto now_held = crypto::VerifyCrl(crl_.pem(), options_.ca_cert_pem);
  if (now_held.ok()) {
    for (const auto& r : now_held->revoked) {
      if (before.count(r.serial_hex) == 0) added.push_back(r);
    }
  }
  common::LogInfo("crl_reloaded")
      .With("file", options_.crl_file)
      .With("number", crl_.number())
      .With("newly_revoked", static_cast<uint64_t>(added.size()))
      .With("next_update", Utc(crl_.next_update()));
  return added;
}

absl::Status AccessControl::CheckCertificate(const crypto::CertificateInfo& info) {
  const absl::Time now = clock_->Now();
  if (now > info.not_after) {
    return absl::UnauthenticatedError(absl::StrCat("the certificate of ", info.node_id, " (serial ",
                                                   info.serial_hex, ") expired at ",
                                                   Utc(info.not_after)));
  }
  if (std::optional<crypto::RevokedCertificate> entry = crl_.Find(info.serial_hex)) {
    return absl::UnauthenticatedError(
        absl::StrCat("the ", crypto::DescribeRevocation(info, *entry),
                     " by the federation CA; ask the operator for a new certificate"));
  }
  MaybeWarnExpiry(info, now);
  return absl::OkStatus();
}

void AccessControl::MaybeWarnExpiry(const crypto::CertificateInfo& info, absl::Time now) {
  if (info.not_after - now > options_.expiry_warning) return;
  {
    absl::MutexLock lock(&mu_);
    auto [it, fresh] = expiry_warned_.emplace(info.serial_hex, now);
    if (!fresh && now - it->second < absl::Hours(24)) return;
    it->second = now;
  }
  common::LogWarning("certificate_expiring")
      .With("node", info.node_id)
      .With("role", crypto::RoleName(info.role))
      .With("serial", info.serial_hex)
      .With("not_after", Utc(info.not_after))
      .With("days_left", absl::ToInt64Hours(info.not_after - now) / 24);
}

absl::Status AccessControl::BindInstance(const std::string& client_id,
                                         const std::string& instance_id, const std::string& peer) {
  if (instance_id.empty()) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = bindings_.find(client_id);
  if (it != bindings_.end() && it->second.instance_id != instance_id) {
    Binding& held = it->second;
    const bool live = held.open_pulls > 0 || now - held.last_call < options_.instance_liveness;
    if (live) {
      return absl::AlreadyExistsError(absl::StrCat(
          "identity ", client_id, " is already connected: another tessera-client (instance ",
          held.instance_id.substr(0, 16), ") from ", held.peer, " since ", Utc(held.since),
          ". Two daemons must not share one certificate; stop the other one (this one is "
          "accepted ",
          absl::FormatDuration(options_.instance_liveness),
          " after the other stops calling) or give this site its own certificate"));
    }
    common::LogWarning("client_instance_replaced")
        .With("client", client_id)
        .With("old_instance", held.instance_id.substr(0, 16))
        .With("old_peer", held.peer)
        .With("new_instance", instance_id.substr(0, 16))
        .With("new_peer", peer);
    bindings_.erase(it);
    it = bindings_.end();
  }
  if (it == bindings_.end()) {
    it = bindings_.emplace(client_id, Binding{instance_id, peer, now, now, 0}).first;
  }
  it->second.last_call = now;
  it->second.peer = peer;
  return absl::OkStatus();
}

void AccessControl::PullStarted(const std::string& client_id, const std::string& instance_id) {
  absl::MutexLock lock(&mu_);
  auto it = bindings_.find(client_id);
  if (it != bindings_.end() && it->second.instance_id == instance_id) ++it->second.open_pulls;
}

void AccessControl::PullEnded(const std::string& client_id, const std::string& instance_id,
                              bool cancelled) {
  absl::MutexLock lock(&mu_);
  auto it = bindings_.find(client_id);
  if (it == bindings_.end() || it->second.instance_id != instance_id) return;
  if (it->second.open_pulls > 0) --it->second.open_pulls;
  it->second.last_call = clock_->Now();
  // The daemon went away (stopped, killed): a restarted one may bind at once.
  if (cancelled && it->second.open_pulls == 0) bindings_.erase(it);
}

void AccessControl::Unbind(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  bindings_.erase(client_id);
}

}  // namespace tessera::coordinator
