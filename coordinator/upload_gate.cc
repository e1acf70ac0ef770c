#include "coordinator/upload_gate.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace tessera::coordinator {

UploadGate::UploadGate(int capacity, absl::Duration timeout, uint64_t min_bytes_per_second,
                       const common::Clock* clock, uint64_t declared_budget_bytes)
    : capacity_(std::max(capacity, 1)),
      declared_budget_bytes_(declared_budget_bytes),
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
  return Acquire(site, 0, std::move(admitted), std::move(overstayed));
}

uint64_t UploadGate::Acquire(const std::string& site, uint64_t declared_bytes,
                             std::function<void(uint64_t ticket)> admitted, Overstayed overstayed) {
  uint64_t ticket = 0;
  std::vector<std::function<void()>> now_admitted;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    // Behind any older upload still waiting (AdmitWaiting keeps their order).
    waiting_.emplace(ticket,
                     Waiting{site, declared_bytes, std::move(admitted), std::move(overstayed)});
    now_admitted = AdmitWaiting(clock_->Now());
  }
  for (auto& run : now_admitted) run();
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
  std::vector<std::function<void()>> next;
  {
    absl::MutexLock lock(&mu_);
    auto it = reading_.find(ticket);
    if (it == reading_.end()) return;
    sites_reading_.erase(it->second.site);
    declared_reading_bytes_ -= it->second.declared_bytes;
    reading_.erase(it);
    next = AdmitWaiting(clock_->Now());
    ++changes_;
  }
  for (auto& run : next) run();
}

bool UploadGate::Fits(uint64_t declared_bytes) const {
  if (static_cast<int>(reading_.size()) < capacity_) return true;
  return declared_bytes > 0 && declared_reading_bytes_ + declared_bytes <= declared_budget_bytes_;
}

std::vector<std::function<void()>> UploadGate::AdmitWaiting(absl::Time now) {
  std::vector<std::function<void()>> admitted_now;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (sites_reading_.count(it->second.site) > 0) {
      ++it;  // its site's other upload is being read
      continue;
    }
    // The oldest upload that may take a place: none younger passes it.
    if (!Fits(it->second.declared_bytes)) break;
    const uint64_t ticket = it->first;
    std::function<void(uint64_t)> admitted = std::move(it->second.admitted);
    sites_reading_.insert(it->second.site);
    declared_reading_bytes_ += it->second.declared_bytes;
    reading_.emplace(ticket, Reading{it->second.site, it->second.declared_bytes,
                                     std::move(it->second.overstayed), now, 0});
    it = waiting_.erase(it);
    ++changes_;
    admitted_now.push_back([admitted = std::move(admitted), ticket] { admitted(ticket); });
  }
  return admitted_now;
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
