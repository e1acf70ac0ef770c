#include "common/clock.h"

#include "absl/time/clock.h"

namespace tessera::common {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();  // never destroyed: usable during exit
  return clock;
}

int64_t ToUnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace tessera::common
