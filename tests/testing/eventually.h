// Polling with a deadline, for tests that wait on a condition another thread or process
// makes true (never a fixed sleep): `done` is checked every 10 ms until it holds or
// `timeout` passes, then once more. Returns whether it held.
#ifndef TESSERA_TESTS_TESTING_EVENTUALLY_H_
#define TESSERA_TESTS_TESTING_EVENTUALLY_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tessera::testing {

inline bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_EVENTUALLY_H_
