#include "client/model_download.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "proto/model_layout.h"
#include "proto/transfer.h"

namespace tessera::client {

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
  std::string bytes;
  bytes.reserve(size);
  while (bytes.size() < size) {
    ASSIGN_OR_RETURN(const v1::PullModelChunkResponse chunk, fetch(bytes.size()));
    if (chunk.total() != size) {
      return absl::DataLossError(absl::StrCat("model apart: a chunk gives a total of ",
                                              chunk.total(), " bytes, the item ", size));
    }
    if (chunk.data().empty() || chunk.data().size() > size - bytes.size()) {
      return absl::DataLossError(absl::StrCat("model apart: a chunk of ", chunk.data().size(),
                                              " bytes at offset ", bytes.size(), " of ", size));
    }
    bytes += chunk.data();
  }
  v1::ModelParameters model;
  if (!model.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("model apart: its ", size, " bytes do not parse"));
  }
  *item->mutable_model() = std::move(model);
  item->clear_model_size();
  return absl::OkStatus();
}

}  // namespace tessera::client
