#include "coordinator/upload_gate.h"

#include <algorithm>
#include <utility>

namespace tessera::coordinator {

UploadGate::UploadGate(int capacity) : capacity_(std::max(capacity, 1)) {}

uint64_t UploadGate::Acquire(std::function<void()> admitted) {
  uint64_t ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    if (admitted_ >= capacity_ || !waiting_.empty()) {
      waiting_.emplace(ticket, std::move(admitted));
      return ticket;
    }
    ++admitted_;
  }
  admitted();
  return ticket;
}

bool UploadGate::Withdraw(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  return waiting_.erase(ticket) > 0;
}

void UploadGate::Release() {
  std::function<void()> next;
  {
    absl::MutexLock lock(&mu_);
    if (waiting_.empty()) {
      if (admitted_ > 0) --admitted_;
      return;
    }
    // The freed place goes straight to the oldest waiting upload.
    next = std::move(waiting_.begin()->second);
    waiting_.erase(waiting_.begin());
  }
  next();
}

int UploadGate::admitted() const {
  absl::MutexLock lock(&mu_);
  return admitted_;
}

int UploadGate::waiting() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

}  // namespace tessera::coordinator
