#include "client/model.h"

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "proto/task.pb.h"

namespace tessera::client {

absl::StatusOr<std::unique_ptr<Model>> MakeModel(const v1::ModelSpec& spec, size_t num_features) {
  switch (spec.kind()) {
    case v1::ModelSpec::LOGISTIC_REGRESSION:
      return MakeLogisticRegression(num_features);
    default:
      break;
  }
  const int kind = static_cast<int>(spec.kind());
  const std::string name = v1::ModelSpec::Kind_IsValid(kind) ? v1::ModelSpec::Kind_Name(spec.kind())
                                                             : std::string("unknown");
  return absl::InvalidArgumentError(absl::StrCat("model.kind ", name, " (", kind,
                                                 ") is not supported by this build "
                                                 "(supported: LOGISTIC_REGRESSION)"));
}

}  // namespace tessera::client
