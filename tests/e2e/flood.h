// A site flooding the coordinator with calls (tests/e2e/limits_e2e_test.cc): `pulls` PullWork
// long-polls and `hellos` Hello calls in flight at once over one authenticated channel, each
// issued again `reissue_after` after it was last issued once it has returned, until Stop.
// Counts how each call ended. Test code only.
//
// Start and Stop from one thread; the counters may be read from any.
#ifndef TESSERA_TESTS_E2E_FLOOD_H_
#define TESSERA_TESTS_E2E_FLOOD_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace tessera::e2e {

class Flood {
 public:
  Flood(std::shared_ptr<grpc::Channel> channel, int pulls, int hellos,
        absl::Duration reissue_after);
  ~Flood();  // Stop()

  void Start();
  // Cancels every call in flight and waits for them all to end.
  void Stop();

  // Calls issued so far, and how the finished ones ended: gRPC status code -> count.
  int issued() const { return issued_.load(); }
  std::map<int, int> codes() const;
  // One message of a call refused with RESOURCE_EXHAUSTED per method ("Hello",
  // "PullWork"); empty if none was.
  std::map<std::string, std::string> refusals() const;

 private:
  struct Call;
  void Drive();

  std::shared_ptr<grpc::Channel> channel_;
  const int pulls_;
  const int hellos_;
  const absl::Duration reissue_after_;
  std::atomic<bool> stop_{false};
  std::atomic<int> issued_{0};
  std::thread driver_;
  mutable absl::Mutex mu_;
  std::map<int, int> codes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> refusals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_FLOOD_H_
