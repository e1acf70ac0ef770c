#include "client/reconnect_backoff.h"

#include <algorithm>

namespace tessera::client {

ReconnectBackoff::ReconnectBackoff(const common::Clock* clock, absl::Duration initial,
                                   absl::Duration max)
    : clock_(clock), initial_(initial), max_(std::max(initial, max)), step_(initial) {}

absl::Time ReconnectBackoff::NextAttempt() {
  const absl::Time due = clock_->Now() + step_ * absl::Uniform(bitgen_, 0.5, 1.0);
  step_ = std::min(step_ * 2, max_);
  return due;
}

}  // namespace tessera::client
