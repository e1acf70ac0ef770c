#include "client/internal/item_downloads.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"

namespace tessera::client::internal {
namespace {

// A model chunk's deadline is the step's closing time, but at least this.
constexpr absl::Duration kModelChunkMinTimeout = absl::Seconds(30);
constexpr char kPullModelChunkMethod[] = "/tessera.v1.Federation/PullModelChunk";
constexpr char kFetchCertificatesMethod[] = "/tessera.v1.Federation/FetchCertificates";
// A FetchCertificates call's deadline (1,024 certificates are about 0.8 MB).
constexpr absl::Duration kFetchCertificatesTimeout = absl::Seconds(30);

}  // namespace

bool IsTransient(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable ||
         st.code() == absl::StatusCode::kDeadlineExceeded ||
         st.code() == absl::StatusCode::kCancelled || st.code() == absl::StatusCode::kAborted;
}

ItemDownloads::ItemDownloads(RecordedCaller* caller, ClientMetrics* meters)
    : caller_(caller), meters_(meters) {}

absl::Status ItemDownloads::Complete(v1::WorkItem* item) {
  // The model as a delta from the one this site holds, or apart from the item.
  const bool delta = item->has_model_delta();
  if (delta) {
    RETURN_IF_ERROR(ApplyModelDelta(item));
  } else if (item->model_size() > 0 && !item->has_model()) {
    RETURN_IF_ERROR(FetchModelApart(item));
  }
  if (item->model().values_size() > 0) {
    meters_->ModelReceived(delta ? ClientMetrics::ModelForm::kDelta
                                 : ClientMetrics::ModelForm::kWhole);
    held_models_.Remember(*item);
  }
  return CompleteCertificates(item);
}

// A delta that does not add up is logged, the task's held model forgotten and UNAVAILABLE
// returned: the session reconnects and the coordinator, told of no model held, hands the
// item again with the model whole.
absl::Status ItemDownloads::ApplyModelDelta(v1::WorkItem* item) {
  const uint64_t data_bytes = item->model_delta().data_size() > 0
                                  ? item->model_delta().data_size()
                                  : item->model_delta().data().size();
  absl::Status transport;
  absl::Status applied = held_models_.Apply(item, Chunks(*item, /*delta=*/true, &transport));
  RETURN_IF_ERROR(transport);
  if (applied.ok()) {
    common::LogInfo("model_delta_applied")
        .With("work", item->work_id())
        .With("delta_bytes", static_cast<int64_t>(data_bytes))
        .With("model_bytes", 4 * static_cast<int64_t>(item->model().values_size()));
    return applied;
  }
  common::LogWarning("model_delta_refused")
      .With("task", item->task_id())
      .With("work", item->work_id())
      .With("error", std::string(applied.message()));
  held_models_.Forget(item->task_id());
  meters_->ModelReceived(ClientMetrics::ModelForm::kDeltaRefused);
  return absl::UnavailableError(absl::StrCat("the model delta of ", item->work_id(),
                                             " did not add up (", applied.message(),
                                             "); asking for the whole model"));
}

// A model that does not add up is logged and left out: the work processor then declines
// the item.
absl::Status ItemDownloads::FetchModelApart(v1::WorkItem* item) {
  absl::Status transport;
  absl::Status fetched = FetchModel(item, Chunks(*item, /*delta=*/false, &transport));
  RETURN_IF_ERROR(transport);
  if (!fetched.ok()) {
    common::LogWarning("model_download_refused")
        .With("task", item->task_id())
        .With("work", item->work_id())
        .With("error", std::string(fetched.message()));
  }
  return absl::OkStatus();
}

FetchModelChunk ItemDownloads::Chunks(const v1::WorkItem& item, bool delta,
                                      absl::Status* transport) {
  return [this, &item, delta, transport](uint64_t offset) {
    absl::StatusOr<v1::PullModelChunkResponse> chunk = PullChunk(item, offset, delta);
    *transport = chunk.status();
    return chunk;
  };
}

absl::StatusOr<v1::PullModelChunkResponse> ItemDownloads::PullChunk(const v1::WorkItem& item,
                                                                    uint64_t offset, bool delta) {
  v1::PullModelChunkRequest request;
  request.set_work_id(item.work_id());
  request.set_offset(offset);
  request.set_delta(delta);
  grpc::ClientContext ctx;
  // Chunks wait their turn at the coordinator; none is of use after the step closes.
  const absl::Time step_closes = absl::FromUnixMillis(item.deadline_unix_ms());
  SetDeadline(&ctx, std::max(step_closes - absl::Now(), kModelChunkMinTimeout));
  EgressMessage what;
  what.kind = v1::LEDGER_PULL_MODEL;
  v1::PullModelChunkResponse response;
  RETURN_IF_ERROR(caller_->Call(&ctx, kPullModelChunkMethod, request, what, &response));
  return response;
}

// A transport error that may pass is returned (the session reconnects and is handed the
// item again). Any other refusal is logged and leaves the entries without their
// certificates: the site's state machine then declines the session, naming the peer.
absl::Status ItemDownloads::CompleteCertificates(v1::WorkItem* item) {
  absl::StatusOr<CompletedList> done = certificates_.Complete(
      item,
      [&](const std::vector<std::string>& sha256s) -> absl::StatusOr<std::vector<std::string>> {
        const v1::FetchCertificatesRequest request = FetchRequestFor(*item, sha256s);
        grpc::ClientContext ctx;
        SetDeadline(&ctx, kFetchCertificatesTimeout);
        EgressMessage what;
        what.kind = v1::LEDGER_FETCH_CERTIFICATES;
        v1::FetchCertificatesResponse response;
        RETURN_IF_ERROR(caller_->Call(&ctx, kFetchCertificatesMethod, request, what, &response));
        return FetchedCertificates(response);
      });
  if (!done.ok()) {
    if (IsTransient(done.status())) return done.status();
    common::LogWarning("certificates_not_fetched")
        .With("session", item->secagg_session())
        .With("error", std::string(done.status().message()));
    return absl::OkStatus();
  }
  if (done->fetched > 0 || !done->refused.empty()) {
    common::LogInfo("certificates_fetched")
        .With("session", item->secagg_session())
        .With("fetched", static_cast<int64_t>(done->fetched))
        .With("held", static_cast<int64_t>(done->from_cache))
        .With("refused", static_cast<int64_t>(done->refused.size()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::client::internal
