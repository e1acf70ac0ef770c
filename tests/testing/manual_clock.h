// A common::Clock that stands still until a test moves it. Thread-safe.
#ifndef TESSERA_TESTS_TESTING_MANUAL_CLOCK_H_
#define TESSERA_TESTS_TESTING_MANUAL_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tessera::testing {

class ManualClock : public common::Clock {
 public:
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_MANUAL_CLOCK_H_
