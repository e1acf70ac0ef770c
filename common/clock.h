// Time, behind an interface so that protocol and round logic can be tested with a fake.
#ifndef TESSERA_COMMON_CLOCK_H_
#define TESSERA_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/time/time.h"

namespace tessera::common {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // The process-wide real clock. Never null, never destroyed.
  static Clock* Real();
};

int64_t ToUnixMillis(absl::Time t);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_CLOCK_H_
