// Admits a bounded number of large uploads at once (Federation.PushResultChunked, see
// grpc_services.cc). An upload not admitted is not read: its bytes wait at the sending site,
// held back by its stream's HTTP/2 flow control, so that the coordinator holds at most
// `capacity` masked inputs in assembly whatever the number of sites sending at once (the
// running sum itself is O(d), secagg/server.h).
//
// Waiting uploads are admitted oldest first. Thread-safe; the callbacks run outside the
// gate's lock.
#ifndef TESSERA_COORDINATOR_UPLOAD_GATE_H_
#define TESSERA_COORDINATOR_UPLOAD_GATE_H_

#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera::coordinator {

class UploadGate {
 public:
  // `capacity` >= 1.
  explicit UploadGate(int capacity);
  UploadGate(const UploadGate&) = delete;
  UploadGate& operator=(const UploadGate&) = delete;

  // Runs `admitted` exactly once when a place is free: at once on this thread if one is,
  // otherwise on the thread of the Release that frees it. Unless withdrawn, the caller
  // then holds a place until it calls Release. Returns a ticket for Withdraw.
  uint64_t Acquire(std::function<void()> admitted);

  // True if `ticket` was still waiting: it is removed and its callback never runs. False
  // if it was admitted (its callback ran or is running; its place is released by Release).
  bool Withdraw(uint64_t ticket);

  // Frees a place; the oldest waiting upload, if any, is admitted.
  void Release();

  int admitted() const;
  int waiting() const;

 private:
  const int capacity_;
  mutable absl::Mutex mu_;
  int admitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_UPLOAD_GATE_H_
