#include "coordinator/client_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status.h"

namespace tessera::coordinator {

ClientRegistry::ClientRegistry(Store* store, const common::Clock* clock, absl::Duration liveness,
                               std::function<int(const std::string&)> waiting_pulls,
                               absl::Duration stale_after)
    : store_(store),
      clock_(clock),
      liveness_(liveness),
      stale_after_(std::min(stale_after, liveness)),
      waiting_pulls_(std::move(waiting_pulls)) {}

absl::Status ClientRegistry::Load() {
  ASSIGN_OR_RETURN(std::vector<v1::ClientRecord> records, store_->ListClients());
  absl::MutexLock lock(&mu_);
  for (v1::ClientRecord& r : records) {
    std::string id = r.client_id();
    clients_[id] = std::move(r);
  }
  return absl::OkStatus();
}

absl::Status ClientRegistry::Hello(const std::string& client_id, const std::string& fingerprint,
                                   const std::vector<std::string>& dataset_ids,
                                   const std::string& version, const std::string& serial,
                                   absl::Time not_after) {
  int64_t now = common::ToUnixMillis(clock_->Now());
  v1::ClientRecord record;
  bool known = false;
  absl::Time persisted = absl::InfinitePast();
  {
    absl::MutexLock lock(&mu_);
    auto it = clients_.find(client_id);
    if (it != clients_.end()) {
      record = it->second;
      known = true;
      if (auto p = last_persisted_.find(client_id); p != last_persisted_.end())
        persisted = p->second;
    } else {
      record.set_client_id(client_id);
      record.set_first_seen_unix_ms(now);
    }
  }
  const v1::ClientRecord before = record;
  if (!record.cert_fingerprint().empty() && record.cert_fingerprint() != fingerprint) {
    common::LogInfo("client_certificate_changed")
        .With("client", client_id)
        .With("old_fingerprint", record.cert_fingerprint())
        .With("new_fingerprint", fingerprint);
  }
  record.set_cert_fingerprint(fingerprint);
  if (!serial.empty()) {
    record.set_cert_serial(serial);
    record.set_cert_not_after_unix_ms(common::ToUnixMillis(not_after));
  }
  record.set_status(v1::CLIENT_ACTIVE);
  record.set_last_seen_unix_ms(now);
  record.clear_dataset_ids();
  std::vector<std::string> sorted = dataset_ids;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (const std::string& d : sorted) record.add_dataset_ids(d);
  record.set_client_version(version.substr(0, 64));
  // Persist first: a Hello the store refused leaves the registry as it was. A Hello that
  // changes nothing but the last-seen time is written no more often than Seen writes it
  // (a synced write per Hello would let one site keep the store busy).
  v1::ClientRecord unchanged = before;
  unchanged.set_last_seen_unix_ms(record.last_seen_unix_ms());
  const bool changed = !known || unchanged.SerializeAsString() != record.SerializeAsString();
  const bool write = changed || clock_->Now() - persisted >= absl::Minutes(1);
  if (write) RETURN_IF_ERROR(store_->PutClient(record));
  absl::MutexLock lock(&mu_);
  clients_[client_id] = record;
  if (write) last_persisted_[client_id] = clock_->Now();
  excluded_.erase(client_id);
  return absl::OkStatus();
}

bool ClientRegistry::Known(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  return clients_.count(client_id) > 0;
}

void ClientRegistry::Seen(const std::string& client_id) {
  absl::Time now = clock_->Now();
  v1::ClientRecord to_persist;
  bool persist = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = clients_.find(client_id);
    if (it == clients_.end()) return;
    it->second.set_last_seen_unix_ms(common::ToUnixMillis(now));
    unresponsive_.erase(client_id);
    absl::Time& last = last_persisted_[client_id];
    if (now - last >= absl::Minutes(1)) {
      last = now;
      to_persist = it->second;
      persist = true;
    }
  }
  if (persist) {
    absl::Status st = store_->PutClient(to_persist);
    if (!st.ok()) {
      common::LogWarning("client_last_seen_not_persisted")
          .With("client", client_id)
          .With("error", st.ToString());
    }
  }
}

absl::StatusOr<v1::ClientRecord> ClientRegistry::Record(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no client '", client_id, "' ('tessera clients list' shows them)"));
  }
  return it->second;
}

absl::Status ClientRegistry::Quarantine(const std::string& client_id,
                                        const v1::ClientQuarantine& why) {
  ASSIGN_OR_RETURN(v1::ClientRecord record, Record(client_id));
  if (record.has_quarantine()) return absl::OkStatus();
  *record.mutable_quarantine() = why;
  // Persist first: a quarantine the store refused is not in force (the next session's
  // culprits name the site again).
  RETURN_IF_ERROR(store_->PutClient(record));
  {
    absl::MutexLock lock(&mu_);
    *clients_[client_id].mutable_quarantine() = why;
  }
  common::LogWarning("client_quarantined")
      .With("client", client_id)
      .With("named_by", absl::StrJoin(why.named_by(), ","))
      .With("task", why.task_id())
      .With("session", why.session())
      .With("reason", why.reason());
  return absl::OkStatus();
}

absl::StatusOr<v1::ClientRecord> ClientRegistry::Release(const std::string& client_id,
                                                         const std::string& by) {
  ASSIGN_OR_RETURN(v1::ClientRecord record, Record(client_id));
  if (!record.has_quarantine()) {
    return absl::FailedPreconditionError(absl::StrCat(client_id, " is not quarantined"));
  }
  const v1::ClientQuarantine was = record.quarantine();
  record.clear_quarantine();
  RETURN_IF_ERROR(store_->PutClient(record));
  v1::ClientRecord held;
  {
    absl::MutexLock lock(&mu_);
    clients_[client_id].clear_quarantine();
    held = clients_[client_id];
  }
  common::LogWarning("client_released")
      .With("client", client_id)
      .With("operator", by)
      .With("quarantined_since_unix_ms", was.since_unix_ms())
      .With("reason", was.reason());
  return held;
}

absl::StatusOr<v1::ClientRecord> ClientRegistry::SetDisabled(const std::string& client_id,
                                                             bool disabled, const std::string& by,
                                                             const std::string& reason) {
  ASSIGN_OR_RETURN(v1::ClientRecord record, Record(client_id));
  record.set_disabled(disabled);
  if (disabled) {
    record.set_disabled_by(by);
    record.set_disabled_unix_ms(common::ToUnixMillis(clock_->Now()));
    record.set_disabled_reason(reason);
  } else {
    record.clear_disabled_by();
    record.clear_disabled_unix_ms();
    record.clear_disabled_reason();
  }
  // Persist first: a decision the store refused is not in force.
  RETURN_IF_ERROR(store_->PutClient(record));
  absl::MutexLock lock(&mu_);
  // Keep what calls changed in memory meanwhile (last seen), with the new decision.
  v1::ClientRecord& held = clients_[client_id];
  held.set_disabled(record.disabled());
  held.set_disabled_by(record.disabled_by());
  held.set_disabled_unix_ms(record.disabled_unix_ms());
  held.set_disabled_reason(record.disabled_reason());
  return held;
}

std::optional<v1::ClientRecord> ClientRegistry::Disabled(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end() || !it->second.disabled()) return std::nullopt;
  return it->second;
}

std::vector<std::string> ClientRegistry::WithSerial(const std::string& serial_hex) const {
  std::vector<std::string> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, record] : clients_) {
    if (record.cert_serial() == serial_hex) out.push_back(id);
  }
  return out;
}

void ClientRegistry::Exclude(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  excluded_.insert(client_id);
}

bool ClientRegistry::Excluded(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  return excluded_.contains(client_id);
}

void ClientRegistry::MarkUnresponsive(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  if (clients_.count(client_id) > 0) unresponsive_.insert(client_id);
}

std::vector<std::string> ClientRegistry::Connected(const std::string& dataset_id) const {
  struct Candidate {
    std::string id;
    int64_t last_seen;
    bool unresponsive;
  };
  std::vector<Candidate> candidates;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, record] : clients_) {
      if (std::find(record.dataset_ids().begin(), record.dataset_ids().end(), dataset_id) ==
          record.dataset_ids().end()) {
        continue;
      }
      if (record.disabled() || record.has_quarantine() || excluded_.count(id) > 0) continue;
      candidates.push_back({id, record.last_seen_unix_ms(), unresponsive_.count(id) > 0});
    }
  }
  // Liveness is judged outside our lock: waiting_pulls_ takes the work board's. A waiting
  // pull proves the client is there, whatever happened before.
  int64_t cutoff = common::ToUnixMillis(clock_->Now() - liveness_);
  std::vector<std::string> out;
  for (const Candidate& c : candidates) {
    if (waiting_pulls_(c.id) > 0 || (!c.unresponsive && c.last_seen >= cutoff)) {
      out.push_back(c.id);
    }
  }
  return out;
}

std::vector<v1::ClientRecord> ClientRegistry::List() const {
  std::vector<v1::ClientRecord> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(clients_.size());
    for (const auto& [id, record] : clients_) out.push_back(record);
  }
  // Outside our lock: waiting_pulls_ takes the work board's.
  const absl::Time now = clock_->Now();
  for (v1::ClientRecord& r : out) {
    const absl::Duration idle = now - absl::FromUnixMillis(r.last_seen_unix_ms());
    if (waiting_pulls_(r.client_id()) > 0 || idle <= stale_after_) {
      r.set_status(v1::CLIENT_ACTIVE);
    } else {
      r.set_status(idle > liveness_ ? v1::CLIENT_OFFLINE : v1::CLIENT_STALE);
    }
  }
  return out;
}

}  // namespace tessera::coordinator
