// A fixed set of threads that run scheduled closures in the order they were scheduled: for
// work that must not run on the thread that has it (gRPC's callback threads, which must
// never block, hand the coordinator's site calls to one).
//
// Ownership: the pool owns its threads. The destructor runs every closure already
// scheduled, then joins the threads; scheduling from a closure while the pool is being
// destroyed is allowed (it runs before the threads end), scheduling from elsewhere after
// destruction has begun is a programming error.
//
// Thread-safe.
#ifndef TESSERA_COMMON_WORKER_POOL_H_
#define TESSERA_COMMON_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera::common {

class WorkerPool {
 public:
  // `threads` >= 1; `name` (at most 15 characters are kept) names the threads in `ps`,
  // `top -H` and debuggers.
  WorkerPool(int threads, const std::string& name);
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool();

  // Runs `work` on one of the pool's threads, after everything scheduled before it has
  // started.
  void Schedule(std::function<void()> work);

  // Closures scheduled and not yet started (for metrics and tests).
  size_t Queued() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Run();

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tessera::common

#endif  // TESSERA_COMMON_WORKER_POOL_H_
