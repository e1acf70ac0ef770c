#include "tests/testing/fake_clock.h"

#include <cstdio>
#include <cstdlib>

namespace tessera::testing {
namespace {

// A waiter whose mutex Advance found busy looks again this often.
constexpr absl::Duration kRecheck = absl::Milliseconds(1);

void RequireForward(bool forward) {
  if (forward) return;
  std::fprintf(stderr, "FakeClock: a clock does not go back\n");
  std::abort();
}

}  // namespace

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&time_mu_);
  return now_;
}

void FakeClock::Register(absl::Mutex* mu) const {
  absl::MutexLock lock(&mu_);
  ++waiting_[mu];
  ++count_;
}

void FakeClock::Unregister(absl::Mutex* mu) const {
  absl::MutexLock lock(&mu_);
  if (--waiting_[mu] == 0) waiting_.erase(mu);
  --count_;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                                  absl::Time deadline) const {
  Register(mu);
  auto done = [&] { return condition.Eval() || Reached(deadline); };
  while (!mu->AwaitWithTimeout(absl::Condition(&done), kRecheck)) {
  }
  Unregister(mu);
  return condition.Eval();
}

bool FakeClock::WaitForNotification(absl::Notification* notification, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  ++count_;
  while (!notification->HasBeenNotified() && !Reached(deadline)) {
    // Advance bumps the generation; a notification is seen within kRecheck.
    const uint64_t seen = generation_;
    auto moved = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return generation_ != seen; };
    mu_.AwaitWithTimeout(absl::Condition(&moved), kRecheck);
  }
  --count_;
  return notification->HasBeenNotified();
}

void FakeClock::Advance(absl::Duration d) {
  RequireForward(d >= absl::ZeroDuration());
  absl::MutexLock lock(&mu_);
  {
    absl::MutexLock time_lock(&time_mu_);
    now_ += d;
  }
  ++generation_;
  // Unlocking a waiter's mutex makes absl evaluate its condition again. TryLock: a waiter
  // holds its mutex while it registers with us, so blocking here could deadlock; a busy
  // mutex is unlocked by its holder soon, and the waiter re-checks within kRecheck anyway.
  for (const auto& [waiter_mu, n] : waiting_) {
    if (waiter_mu->TryLock()) waiter_mu->Unlock();
  }
}

void FakeClock::SetTime(absl::Time t) {
  RequireForward(t >= Now());
  Advance(t - Now());
}

int FakeClock::waiters() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

bool FakeClock::AwaitWaiters(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace tessera::testing
