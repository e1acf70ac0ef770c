#include "coordinator/limits.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/tls.h"
#include "proto/config.pb.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"
#include "proto/transfer.h"
#include "secagg/stage_encoding.h"
#include "secagg/vector_codec.h"

namespace tessera::coordinator {
namespace {

// `value`, or `fallback` when 0; INVALID_ARGUMENT naming `field` outside [low, high].
absl::StatusOr<uint64_t> InRange(uint64_t value, uint64_t fallback, uint64_t low, uint64_t high,
                                 const char* field) {
  if (value == 0) return fallback;
  if (value < low || value > high) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must be ", low, "..", high, " (0 for the default ", fallback, "), got ", value));
  }
  return value;
}

std::string Mib(size_t bytes) {
  return absl::StrCat(static_cast<double>(bytes) / (1 << 20), " MiB");
}

}  // namespace

absl::StatusOr<ServerLimits> ResolveServerLimits(const v1::CoordinatorConfig& config) {
  ServerLimits limits;
  ASSIGN_OR_RETURN(limits.max_message_bytes,
                   InRange(config.max_message_bytes(), limits.max_message_bytes, 1 << 20,
                           crypto::kMaxMessageBytes, "max_message_bytes"));
  ASSIGN_OR_RETURN(limits.max_threads,
                   InRange(config.max_threads(), limits.max_threads, 16, 65536, "max_threads"));
  ASSIGN_OR_RETURN(const uint64_t mib,
                   InRange(config.memory_quota_mib(), limits.memory_quota_bytes >> 20, 64, 1048576,
                           "memory_quota_mib"));
  limits.memory_quota_bytes = static_cast<size_t>(mib) << 20;
  ASSIGN_OR_RETURN(
      limits.max_pulls_per_site,
      InRange(config.max_pulls_per_site(), limits.max_pulls_per_site, 1, 64, "max_pulls_per_site"));
  ASSIGN_OR_RETURN(limits.max_hellos_per_minute,
                   InRange(config.max_hellos_per_minute(), limits.max_hellos_per_minute, 1, 6000,
                           "max_hellos_per_minute"));
  ASSIGN_OR_RETURN(limits.max_pushes_per_site,
                   InRange(config.max_pushes_per_site(), limits.max_pushes_per_site, 1, 64,
                           "max_pushes_per_site"));
  ASSIGN_OR_RETURN(
      const uint64_t upload_seconds,
      InRange(config.upload_timeout_seconds(), absl::ToInt64Seconds(limits.upload_timeout), 1, 3600,
              "upload_timeout_seconds"));
  limits.upload_timeout = absl::Seconds(upload_seconds);
  ASSIGN_OR_RETURN(const uint64_t kib, InRange(config.min_upload_kib_per_second(),
                                               limits.min_upload_bytes_per_second >> 10, 1, 1048576,
                                               "min_upload_kib_per_second"));
  limits.min_upload_bytes_per_second = kib << 10;
  ASSIGN_OR_RETURN(limits.max_model_downloads,
                   InRange(config.max_model_downloads(), limits.max_model_downloads, 1, 1024,
                           "max_model_downloads"));
  return limits;
}

absl::StatusOr<size_t> LargestTaskMessageBytes(const v1::TaskSpec& spec) {
  const size_t features = static_cast<size_t>(spec.dataset().features_size());
  // The first work item of a stage: the spec, the global model (float32; a model above
  // proto::kModelChunkBytes travels apart, in chunks of that size) and the pooled mean and
  // standard deviation of every column (double).
  size_t work_item = 16 * (features + 1);
  if (spec.has_model()) {
    ASSIGN_OR_RETURN(const size_t parameters, proto::NumParameters(spec.model(), features));
    work_item += std::min(proto::MaxSerializedModelBytes(parameters), proto::kModelChunkBytes);
  }
  // A masked input: one 32-bit word per encoded value; above proto::kUploadChunkBytes it
  // arrives in chunks of that size (and is assembled under the bound the site's open work
  // sets, not the cap). A stage the task does not run has no encoding.
  size_t masked_input = 0;
  const uint32_t invited = std::max<uint32_t>(spec.min_clients(), 2);
  for (v1::Stage stage :
       {v1::STAGE_STATISTICS, v1::STAGE_FIT, v1::STAGE_EVALUATE, v1::STAGE_FIT_EVALUATE,
        v1::STAGE_ANALYTICS, v1::STAGE_GLM, v1::STAGE_TEST}) {
    absl::StatusOr<v1::SecAggEncoding> encoding = secagg::StageEncoding(spec, stage, invited);
    if (encoding.ok()) masked_input = std::max(masked_input, 4 * secagg::EncodedWords(*encoding));
  }
  masked_input = std::min(masked_input, proto::kUploadChunkBytes);
  return std::max(work_item, masked_input) + spec.ByteSizeLong() + kMessageOverheadBytes;
}

absl::Status CheckTaskFitsMessages(const v1::TaskSpec& spec, size_t max_message_bytes) {
  ASSIGN_OR_RETURN(const size_t largest, LargestTaskMessageBytes(spec));
  if (largest <= max_message_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the task's largest message (a stage's first work item, or one chunk of its model or of a "
      "masked input) needs up to ",
      largest, " bytes (", Mib(largest), "), more than the coordinator's message cap of ",
      max_message_bytes, " bytes (", Mib(max_message_bytes),
      "); raise max_message_bytes in the coordinator's and the sites' configs, or make the "
      "spec smaller (models and masked inputs travel in chunks)"));
}

CallLimiter::CallLimiter(int max_pulls_per_site, int max_hellos_per_minute,
                         const common::Clock* clock, int max_pushes_per_site)
    : max_pulls_(max_pulls_per_site),
      max_hellos_(max_hellos_per_minute),
      max_pushes_(max_pushes_per_site),
      clock_(clock) {}

CallLimiter::PullSlot::PullSlot(CallLimiter* owner, std::map<std::string, int>* counts,
                                std::string site, absl::Status status)
    : owner_(owner), counts_(counts), site_(std::move(site)), status_(std::move(status)) {}

CallLimiter::PullSlot::PullSlot(PullSlot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      counts_(other.counts_),
      site_(std::move(other.site_)),
      status_(std::move(other.status_)) {}

CallLimiter::PullSlot::~PullSlot() {
  if (owner_ != nullptr) owner_->End(counts_, site_);
}

CallLimiter::PullSlot CallLimiter::BeginPull(const std::string& site) {
  return Begin(&pulls_, max_pulls_, site, "PullWork calls waiting", "max_pulls_per_site");
}

CallLimiter::PullSlot CallLimiter::BeginPush(const std::string& site) {
  return Begin(&pushes_, max_pushes_, site, "PushResult calls in progress", "max_pushes_per_site");
}

CallLimiter::PullSlot CallLimiter::Begin(std::map<std::string, int>* counts, int most,
                                         const std::string& site, const char* what,
                                         const char* field) {
  absl::MutexLock lock(&mu_);
  int& now = (*counts)[site];
  if (now >= most) {
    return PullSlot(nullptr, counts, site,
                    absl::ResourceExhaustedError(absl::StrCat(site, " already has ", now, " ", what,
                                                              ", the most a site may have (", field,
                                                              "); this one is refused")));
  }
  ++now;
  return PullSlot(this, counts, site, absl::OkStatus());
}

void CallLimiter::End(std::map<std::string, int>* counts, const std::string& site) {
  absl::MutexLock lock(&mu_);
  auto it = counts->find(site);
  if (it == counts->end()) return;
  if (--it->second <= 0) counts->erase(it);
}

int CallLimiter::WaitingPulls(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = pulls_.find(site);
  return it == pulls_.end() ? 0 : it->second;
}

int CallLimiter::TakeLogTurn(const std::string& site, const std::string& method) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  LogTurn& turn = log_turns_[absl::StrCat(site, "/", method)];
  if (now - turn.last < absl::Seconds(10)) {
    ++turn.suppressed;
    return -1;
  }
  turn.last = now;
  return std::exchange(turn.suppressed, 0);
}

absl::Status CallLimiter::AdmitHello(const std::string& site) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto [it, fresh] = hellos_.try_emplace(site);
  HelloBucket& bucket = it->second;
  if (fresh) {
    bucket.tokens = max_hellos_;
  } else {
    const double minutes =
        absl::ToDoubleMinutes(std::max(now - bucket.refilled, absl::ZeroDuration()));
    bucket.tokens = std::min<double>(max_hellos_, bucket.tokens + minutes * max_hellos_);
  }
  bucket.refilled = now;
  if (bucket.tokens < 1) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many Hello calls from ", site, ": at most ", max_hellos_,
                     " a minute (max_hellos_per_minute); try again later"));
  }
  bucket.tokens -= 1;
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
