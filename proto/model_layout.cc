#include "proto/model_layout.h"

#include "absl/strings/str_cat.h"
#include "proto/task.pb.h"

namespace tessera::proto {

absl::StatusOr<size_t> NumParameters(const v1::ModelSpec& spec, size_t num_features) {
  if (num_features == 0) return absl::InvalidArgumentError("a model needs at least one feature");
  switch (spec.kind()) {
    case v1::ModelSpec::LOGISTIC_REGRESSION:
      return num_features + 1;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("model kind ", static_cast<int>(spec.kind()), " is not supported"));
  }
}

absl::StatusOr<std::vector<float>> InitialParameters(const v1::ModelSpec& spec,
                                                     size_t num_features, uint64_t seed) {
  auto n = NumParameters(spec, num_features);
  if (!n.ok()) return n.status();
  // Logistic regression starts at zero whatever the seed: its loss is convex, and zero is
  // the usual, reproducible start.
  return std::vector<float>(*n, 0.0f);
}

}  // namespace tessera::proto
