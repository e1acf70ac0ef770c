#include "coordinator/upload_gate.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace tessera::coordinator {

UploadGate::UploadGate(int capacity, absl::Duration timeout, uint64_t min_bytes_per_second,
                       const common::Clock* clock)
    : capacity_(std::max(capacity, 1)),
      timeout_(timeout),
      min_bytes_per_second_(std::max<uint64_t>(min_bytes_per_second, 1)),
      clock_(clock),
      watcher_([this] { Watch(); }) {}

UploadGate::~UploadGate() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    ++changes_;
  }
  watcher_.join();
}

uint64_t UploadGate::Acquire(const std::string& site, std::function<void(uint64_t ticket)> admitted,
                             Overstayed overstayed) {
  uint64_t ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    // No older upload waits for a free place it may take: Release hands each freed place
    // on at once.
    if (static_cast<int>(reading_.size()) >= capacity_ || sites_reading_.count(site) > 0) {
      waiting_.emplace(ticket, Waiting{site, std::move(admitted), std::move(overstayed)});
      return ticket;
    }
    sites_reading_.insert(site);
    reading_.emplace(ticket, Reading{site, std::move(overstayed), clock_->Now(), 0});
    ++changes_;
  }
  admitted(ticket);
  return ticket;
}

void UploadGate::Received(uint64_t ticket, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  auto it = reading_.find(ticket);
  if (it != reading_.end()) it->second.received += bytes;
  // The watcher's deadline only moves later: it need not wake.
}

bool UploadGate::Withdraw(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  return waiting_.erase(ticket) > 0;
}

void UploadGate::Release(uint64_t ticket) {
  std::function<void()> next;
  {
    absl::MutexLock lock(&mu_);
    auto it = reading_.find(ticket);
    if (it == reading_.end()) return;
    sites_reading_.erase(it->second.site);
    reading_.erase(it);
    next = AdmitNext(clock_->Now());
    ++changes_;
  }
  if (next) next();
}

std::function<void()> UploadGate::AdmitNext(absl::Time now) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (sites_reading_.count(it->second.site) > 0) continue;
    const uint64_t ticket = it->first;
    std::function<void(uint64_t)> admitted = std::move(it->second.admitted);
    sites_reading_.insert(it->second.site);
    reading_.emplace(ticket, Reading{it->second.site, std::move(it->second.overstayed), now, 0});
    waiting_.erase(it);
    return [admitted = std::move(admitted), ticket] { admitted(ticket); };
  }
  return nullptr;
}

absl::Time UploadGate::DeadlineOf(const Reading& r) const {
  return r.since + timeout_ +
         absl::Seconds(static_cast<double>(r.received) /
                       static_cast<double>(min_bytes_per_second_));
}

void UploadGate::Watch() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    // The earliest deadline of an upload not yet told.
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [ticket, r] : reading_) {
      if (r.overstayed) next = std::min(next, DeadlineOf(r));
    }
    const uint64_t seen = changes_;
    auto changed = [this, seen]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || changes_ != seen; };
    if (clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed), next)) continue;
    const absl::Time now = clock_->Now();
    std::vector<std::pair<Overstayed, std::pair<absl::Duration, uint64_t>>> due;
    for (auto& [ticket, r] : reading_) {
      if (r.overstayed && DeadlineOf(r) <= now) {
        due.emplace_back(std::move(r.overstayed), std::make_pair(now - r.since, r.received));
        r.overstayed = nullptr;
      }
    }
    if (due.empty()) continue;
    mu_.Unlock();
    for (auto& [overstayed, at] : due) overstayed(at.first, at.second);
    mu_.Lock();
  }
}

int UploadGate::admitted() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(reading_.size());
}

int UploadGate::waiting() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

}  // namespace tessera::coordinator
