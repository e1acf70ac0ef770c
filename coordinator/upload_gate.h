// Admits a bounded number of large uploads at once (Federation.PushResultChunked, see
// grpc_services.cc), and bounds how long each may keep its place. An upload not admitted
// is not read: its bytes wait at the sending site, held back by its stream's HTTP/2 flow
// control, so that the coordinator holds at most `capacity` masked inputs in assembly
// whatever the number of sites sending at once (the running sum itself is O(d),
// secagg/server.h).
//
// Beyond those `capacity` places, uploads whose size the site declared (PushResultChunked's
// "tessera-upload-bytes" metadata, checked against what it then sends) are read together as
// long as their declared sizes add up to at most `declared_budget_bytes`: a cohort's masked
// inputs of a few hundred kilobytes go ten at a time, not two, while megabyte ones still go
// two at a time.
//
// Fair to the other sites:
//   - one place per site: a site's second upload waits while its first is read, even if a
//     place is free, so that one site cannot take every place;
//   - waiting uploads are admitted oldest first among the sites that hold no place;
//   - an admitted upload overstays once it has been read for longer than `timeout` plus the
//     time its bytes received so far take at `min_bytes_per_second` (as Apache's
//     mod_reqtimeout reads a request body): a stalled or trickling site is told so (the
//     `overstayed` callback, which is to end the call and Release its place) instead of
//     keeping the other sites' answers waiting.
//
// Thread-safe. Callbacks run outside the gate's lock: `admitted` on the thread of the
// Acquire or Release that admits it, `overstayed` on the gate's own watcher thread.
#ifndef TESSERA_COORDINATOR_UPLOAD_GATE_H_
#define TESSERA_COORDINATOR_UPLOAD_GATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tessera::coordinator {

class UploadGate {
 public:
  // How long an admitted upload has been read, and the bytes it had sent by then.
  using Overstayed = std::function<void(absl::Duration read_for, uint64_t received)>;

  // `capacity` >= 1 (a smaller value means 1), `min_bytes_per_second` >= 1. `clock` must
  // outlive the gate. `declared_budget_bytes`: see above (0: `capacity` places only).
  // Starts the watcher thread.
  UploadGate(int capacity, absl::Duration timeout, uint64_t min_bytes_per_second,
             const common::Clock* clock, uint64_t declared_budget_bytes = 0);
  // Stops the watcher; an overstay not yet reported is not.
  ~UploadGate();
  UploadGate(const UploadGate&) = delete;
  UploadGate& operator=(const UploadGate&) = delete;

  // Runs `admitted` exactly once when a place is free and `site` holds none: at once on
  // this thread if so, otherwise on the thread of the Release that frees one. Unless
  // withdrawn, the caller then holds the place until it calls Release(ticket); `overstayed`
  // runs at most once, if it holds it too long. Returns the upload's ticket.
  // `admitted` is given the ticket (it may run before Acquire returns it).
  uint64_t Acquire(const std::string& site, std::function<void(uint64_t ticket)> admitted,
                   Overstayed overstayed);
  // The same for an upload of `declared_bytes` (0: not declared), which may then also be
  // admitted within the declared budget; admissions keep the order of arrival: an upload
  // that fits nowhere yet holds back younger ones of other sites.
  uint64_t Acquire(const std::string& site, uint64_t declared_bytes,
                   std::function<void(uint64_t ticket)> admitted, Overstayed overstayed);

  // `bytes` more of the admitted upload `ticket` were received (its allowance grows).
  void Received(uint64_t ticket, uint64_t bytes);

  // True if `ticket` was still waiting: it is removed and its callbacks never run. False
  // if it was admitted (its place is released by Release).
  bool Withdraw(uint64_t ticket);

  // Frees the place of the admitted upload `ticket`; the oldest waiting upload of a site
  // without a place, if any, is admitted. Unknown tickets are ignored.
  void Release(uint64_t ticket);

  int admitted() const;
  int waiting() const;
  // The reading limits, as constructed (for a refusal's message).
  absl::Duration timeout() const { return timeout_; }
  uint64_t min_bytes_per_second() const { return min_bytes_per_second_; }

 private:
  struct Waiting {
    std::string site;
    uint64_t declared_bytes = 0;
    std::function<void(uint64_t)> admitted;
    Overstayed overstayed;
  };
  struct Reading {
    std::string site;
    uint64_t declared_bytes = 0;
    Overstayed overstayed;  // emptied once run
    absl::Time since;
    uint64_t received = 0;
  };

  // When `r` overstays.
  absl::Time DeadlineOf(const Reading& r) const;
  // Whether an upload of `declared_bytes` may be read now.
  bool Fits(uint64_t declared_bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Admits waiting uploads, oldest first among sites that hold no place, until the oldest
  // such one does not fit; returns their callbacks bound to their tickets.
  std::vector<std::function<void()>> AdmitWaiting(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Watch();

  const int capacity_;
  const uint64_t declared_budget_bytes_;
  const absl::Duration timeout_;
  const uint64_t min_bytes_per_second_;
  const common::Clock* const clock_;
  mutable absl::Mutex mu_;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Reading> reading_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> sites_reading_ ABSL_GUARDED_BY(mu_);
  uint64_t declared_reading_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;  // wakes the watcher
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;  // last: started once the rest exists
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_UPLOAD_GATE_H_
