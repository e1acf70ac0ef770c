#include "client/model_download.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "proto/model_delta.h"
#include "proto/model_layout.h"
#include "proto/transfer.h"

namespace tessera::client {

namespace {

// `size` bytes fetched chunk by chunk from offset 0, every reply checked against `size`;
// `what` names them in errors.
absl::StatusOr<std::string> FetchBytes(uint64_t size, const FetchModelChunk& fetch,
                                       const char* what) {
  std::string bytes;
  bytes.reserve(size);
  while (bytes.size() < size) {
    ASSIGN_OR_RETURN(const v1::PullModelChunkResponse chunk, fetch(bytes.size()));
    if (chunk.total() != size) {
      return absl::DataLossError(absl::StrCat(what, ": a chunk gives a total of ", chunk.total(),
                                              " bytes, the item ", size));
    }
    if (chunk.data().empty() || chunk.data().size() > size - bytes.size()) {
      return absl::DataLossError(absl::StrCat(what, ": a chunk of ", chunk.data().size(),
                                              " bytes at offset ", bytes.size(), " of ", size));
    }
    bytes += chunk.data();
  }
  return bytes;
}

}  // namespace

absl::Status FetchModel(v1::WorkItem* item, const FetchModelChunk& fetch) {
  const uint64_t size = item->model_size();
  if (size == 0 || item->has_model()) {
    return absl::FailedPreconditionError("the work item announces no model apart");
  }
  const v1::TaskSpec& spec = item->spec();
  absl::StatusOr<size_t> parameters =
      proto::NumParameters(spec.model(), static_cast<size_t>(spec.dataset().features_size()));
  if (!parameters.ok()) {
    return absl::DataLossError(absl::StrCat("model apart: the task's model has no size (",
                                            parameters.status().message(), ")"));
  }
  const uint64_t most = proto::MaxSerializedModelBytes(*parameters);
  if (size > most) {
    return absl::DataLossError(absl::StrCat("model apart: ", size,
                                            " bytes announced, more than the ", most,
                                            " a model of ", *parameters, " parameters takes"));
  }
  ASSIGN_OR_RETURN(const std::string bytes, FetchBytes(size, fetch, "model apart"));
  v1::ModelParameters model;
  if (!model.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("model apart: its ", size, " bytes do not parse"));
  }
  *item->mutable_model() = std::move(model);
  item->clear_model_size();
  return absl::OkStatus();
}

void HeldModels::ListIn(v1::PullWorkRequest* request) const {
  request->set_accepts_model_delta(true);
  for (const auto& [task, held] : by_task_) request->add_held_model_hashes(held.hash);
}

void HeldModels::Remember(const v1::WorkItem& item) {
  if (item.model().values().empty() || item.model_hash().empty()) return;
  // Only a model of the size its task's spec gives: a coordinator cannot make the site keep
  // more than its tasks' models.
  const v1::TaskSpec& spec = item.spec();
  absl::StatusOr<size_t> parameters =
      proto::NumParameters(spec.model(), static_cast<size_t>(spec.dataset().features_size()));
  if (!parameters.ok() || *parameters != static_cast<size_t>(item.model().values_size())) return;
  Held& held = by_task_[item.task_id()];
  held.hash = item.model_hash();
  held.values.assign(item.model().values().begin(), item.model().values().end());
  held.sent = ++remembered_;
  while (by_task_.size() > proto::kMaxHeldModels) {
    auto oldest = std::min_element(
        by_task_.begin(), by_task_.end(),
        [](const auto& a, const auto& b) { return a.second.sent < b.second.sent; });
    by_task_.erase(oldest);
  }
}

void HeldModels::Forget(const std::string& task_id) { by_task_.erase(task_id); }

absl::Status HeldModels::Apply(v1::WorkItem* item, const FetchModelChunk& fetch) const {
  const v1::ModelDelta& delta = item->model_delta();
  auto held = by_task_.find(item->task_id());
  if (held == by_task_.end() || held->second.hash != delta.base_hash()) {
    return absl::DataLossError(
        "model delta: its base is not the model this site holds for the task");
  }
  const std::vector<float>& base = held->second.values;
  std::string fetched;
  if (delta.data_size() > 0) {
    if (!delta.data().empty() || delta.data_size() > 4 * uint64_t{base.size()}) {
      return absl::DataLossError(absl::StrCat("model delta: ", delta.data_size(),
                                              " bytes announced apart for a model of ", base.size(),
                                              " parameters"));
    }
    ASSIGN_OR_RETURN(fetched, FetchBytes(delta.data_size(), fetch, "model delta apart"));
  }
  ASSIGN_OR_RETURN(std::vector<float> model,
                   proto::DecodeModelDelta(base, delta.data_size() > 0 ? fetched : delta.data()));
  if (crypto::HashModel(model) != item->model_hash()) {
    return absl::DataLossError("model delta: the model it gives does not hash to model_hash");
  }
  item->mutable_model()->mutable_values()->Assign(model.begin(), model.end());
  item->clear_model_delta();
  return absl::OkStatus();
}

}  // namespace tessera::client
