// The coordinator's resource limits (docs/operations.md, "Resource limits"): the largest gRPC
// message, gRPC's resource quota (threads, memory), and per-site limits on waiting PullWork
// calls and on the Hello rate, so that one site flooding the coordinator with calls cannot
// slow the others down (a Hello may write the registry; waiting PullWork calls are held
// by the work board, each with its response and a place in the board's timer).
//
// ResolveServerLimits and the task-size functions are pure; CallLimiter is thread-safe.
#ifndef TESSERA_COORDINATOR_LIMITS_H_
#define TESSERA_COORDINATOR_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "crypto/tls.h"

namespace tessera::v1 {
class CoordinatorConfig;
class TaskSpec;
}  // namespace tessera::v1

namespace tessera::coordinator {

// The limits in force: CoordinatorConfig fields 240..248; the defaults here are the config's.
struct ServerLimits {
  size_t max_message_bytes = crypto::kDefaultMaxMessageBytes;
  int max_threads = 512;
  size_t memory_quota_bytes = size_t{1024} << 20;
  int max_pulls_per_site = 4;
  int max_hellos_per_minute = 30;
  int max_pushes_per_site = 4;
  // A chunked upload is read for at most upload_timeout plus the time its bytes received so
  // far take at min_upload_bytes_per_second (upload_gate.h).
  absl::Duration upload_timeout = absl::Seconds(30);
  uint64_t min_upload_bytes_per_second = uint64_t{64} << 10;
  // Model chunks sent at once, over all sites (internal/model_download_call.h); the same
  // timeout and minimum rate bound how long one may take.
  int max_model_downloads = 4;
};

// Applies the defaults (0 = default) and checks the ranges of config.proto; INVALID_ARGUMENT
// naming the field otherwise.
absl::StatusOr<ServerLimits> ResolveServerLimits(const v1::CoordinatorConfig& config);

// Room left in every message for what does not grow with the model: the spec is counted
// apart; hashes, ids, the CRL, a share relay (about 200 bytes per invited site).
inline constexpr size_t kMessageOverheadBytes = size_t{256} << 10;

// An upper bound on the largest message a task's sessions exchange, in bytes, for `spec`
// with defaults applied: the first work item of a stage (the spec, the global model as
// float32 up to proto::kModelChunkBytes — a larger one travels apart in chunks of that
// size — and the pooled statistics) or a site's masked input (one 32-bit word per encoded
// value, secagg/stage_encoding.h, up to proto::kUploadChunkBytes — a larger one goes in
// chunks of that size), plus kMessageOverheadBytes. Whatever the model's size, then,
// about 1.3 MiB plus the spec. INVALID_ARGUMENT for a spec
// the model layouts refuse.
absl::StatusOr<size_t> LargestTaskMessageBytes(const v1::TaskSpec& spec);

// OK if every message of `spec`'s sessions fits `max_message_bytes`; otherwise
// INVALID_ARGUMENT naming the size and the cap, and the config field that raises it. A
// site's masked input goes in chunks (Federation.PushResultChunked), but the first work
// item, which carries the model, is still one message: a task too large for the cap is
// refused at submission rather than failing in its first round.
absl::Status CheckTaskFitsMessages(const v1::TaskSpec& spec, size_t max_message_bytes);

// Per-site limits on calls: how many PullWork calls a site may have waiting and how many
// PushResult calls in progress at once, and a token bucket of Hello calls (a burst of
// max_hellos_per_minute, refilled at that rate).
// Thread-safe; `clock` must outlive it.
class CallLimiter {
 public:
  CallLimiter(int max_pulls_per_site, int max_hellos_per_minute, const common::Clock* clock,
              int max_pushes_per_site = 4);

  // Counts a call of `site` as in progress until the returned slot is destroyed; a slot
  // that holds a RESOURCE_EXHAUSTED status (naming the site and the limit) when the site
  // already has the most its limit allows.
  class PullSlot {
   public:
    PullSlot(PullSlot&& other) noexcept;
    PullSlot& operator=(PullSlot&&) = delete;
    ~PullSlot();
    const absl::Status& status() const { return status_; }

   private:
    friend class CallLimiter;
    PullSlot(CallLimiter* owner, std::map<std::string, int>* counts, std::string site,
             absl::Status status);
    CallLimiter* owner_;                  // null once moved from or when refused
    std::map<std::string, int>* counts_;  // the owner's count it holds a place in
    std::string site_;
    absl::Status status_;
  };
  // A waiting PullWork (max_pulls_per_site).
  PullSlot BeginPull(const std::string& site);
  // A PushResult in progress (max_pushes_per_site).
  PullSlot BeginPush(const std::string& site);

  // OK if `site` may say Hello now (takes a token); RESOURCE_EXHAUSTED naming the site and
  // the limit otherwise.
  absl::Status AdmitHello(const std::string& site);

  // Waiting PullWork calls of `site` (for tests and metrics).
  int WaitingPulls(const std::string& site) const;

  // Whether a refusal of `site`'s `method` should be logged now: the first one, then at
  // most one every 10 s per (site, method), so that a flood does not flood the log too.
  // Returns the number of refusals not logged since the last logged one, or -1 for "do not
  // log this one".
  int TakeLogTurn(const std::string& site, const std::string& method);

 private:
  struct HelloBucket {
    double tokens = 0;
    absl::Time refilled;
  };
  PullSlot Begin(std::map<std::string, int>* counts, int most, const std::string& site,
                 const char* what, const char* field);
  void End(std::map<std::string, int>* counts, const std::string& site);

  const int max_pulls_;
  const int max_hellos_;
  const int max_pushes_;
  const common::Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> pulls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> pushes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, HelloBucket> hellos_ ABSL_GUARDED_BY(mu_);
  struct LogTurn {
    absl::Time last = absl::InfinitePast();
    int suppressed = 0;
  };
  std::map<std::string, LogTurn> log_turns_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_LIMITS_H_
