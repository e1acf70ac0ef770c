#include "proto/model_layout.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/splitmix64.h"
#include "proto/task.pb.h"

namespace tessera::proto {
namespace {

constexpr int kMaxHiddenLayers = 3;
constexpr uint32_t kMaxHiddenWidth = 4096;
constexpr uint32_t kMaxClasses = 10000;

std::string KindName(const v1::ModelSpec& spec) {
  const int kind = static_cast<int>(spec.kind());
  return v1::ModelSpec::Kind_IsValid(kind) ? v1::ModelSpec::Kind_Name(spec.kind())
                                           : absl::StrCat("unknown (", kind, ")");
}

absl::Status BadNumClasses(const v1::ModelSpec& spec, const char* allowed) {
  return absl::InvalidArgumentError(absl::StrCat("model.num_classes: ", KindName(spec), " needs ",
                                                 allowed, ", got ", spec.num_classes()));
}

// Checks everything but the parameter count. The rules match ValidateTaskSpec
// (proto/validation.h), so a validated task always has a layout.
absl::Status CheckSpec(const v1::ModelSpec& spec, size_t num_features) {
  if (num_features == 0) return absl::InvalidArgumentError("a model needs at least one feature");
  const uint32_t k = spec.num_classes();
  if (spec.kind() != v1::ModelSpec::MLP && spec.hidden_layers_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.hidden_layers: only MLP has hidden layers, not ", KindName(spec)));
  }
  if (k > kMaxClasses) return BadNumClasses(spec, "at most 10000 classes");
  switch (spec.kind()) {
    case v1::ModelSpec::LOGISTIC_REGRESSION:
    case v1::ModelSpec::LINEAR_REGRESSION:
    case v1::ModelSpec::COX_PH:
    case v1::ModelSpec::GLM:
      if (k != 0) return BadNumClasses(spec, "no num_classes (0)");
      return absl::OkStatus();
    case v1::ModelSpec::SOFTMAX_REGRESSION:
      if (k < 2) return BadNumClasses(spec, "at least 2 classes");
      return absl::OkStatus();
    case v1::ModelSpec::MLP: {
      const int layers = spec.hidden_layers_size();
      if (layers < 1 || layers > kMaxHiddenLayers) {
        return absl::InvalidArgumentError(absl::StrCat("model.hidden_layers: an MLP needs 1..",
                                                       kMaxHiddenLayers, " hidden layers, got ",
                                                       layers));
      }
      for (int l = 0; l < layers; ++l) {
        const uint32_t width = spec.hidden_layers(l);
        if (width < 1 || width > kMaxHiddenWidth) {
          return absl::InvalidArgumentError(absl::StrCat(
              "model.hidden_layers[", l, "]: width must be 1..", kMaxHiddenWidth, ", got ", width));
        }
      }
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("model.kind ", KindName(spec), " is not supported by this build"));
  }
}

// Widths {d, h_1.., out}; the spec must have passed CheckSpec.
std::vector<size_t> Widths(const v1::ModelSpec& spec, size_t num_features) {
  std::vector<size_t> widths = {num_features};
  for (uint32_t h : spec.hidden_layers()) widths.push_back(h);
  widths.push_back(spec.num_classes() >= 2 ? spec.num_classes() : 1);
  return widths;
}

// a * b + c without wrapping; false if the result exceeds kMaxParameters.
bool AddProduct(size_t a, size_t b, size_t* total) {
  if (a != 0 && b > kMaxParameters / a) return false;
  *total += a * b;
  return *total <= kMaxParameters;
}

absl::StatusOr<size_t> Count(const v1::ModelSpec& spec, size_t num_features) {
  size_t total = 0;
  bool ok = true;
  switch (spec.kind()) {
    case v1::ModelSpec::LOGISTIC_REGRESSION:
    case v1::ModelSpec::LINEAR_REGRESSION:
      ok = AddProduct(num_features + 1, 1, &total);
      break;
    case v1::ModelSpec::SOFTMAX_REGRESSION:
      ok = AddProduct(num_features + 1, spec.num_classes(), &total);
      break;
    case v1::ModelSpec::COX_PH:
      ok = AddProduct(num_features, 1, &total);
      break;
    case v1::ModelSpec::GLM:
      // One intercept (none for COX); with site fixed effects the coefficients are
      // proto::GlmCoefficientCount's, known once the cohort is.
      ok = AddProduct(num_features + (spec.glm().family() == v1::GlmSpec::COX ? 0 : 1), 1, &total);
      break;
    case v1::ModelSpec::MLP: {
      const std::vector<size_t> widths = Widths(spec, num_features);
      for (size_t l = 1; ok && l < widths.size(); ++l) {
        ok = AddProduct(widths[l - 1] + 1, widths[l], &total);
      }
      break;
    }
    default:
      ok = false;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("model: ", KindName(spec), " with ",
                                                   num_features, " features has more than ",
                                                   kMaxParameters, " parameters"));
  }
  return total;
}

}  // namespace

absl::StatusOr<size_t> NumParameters(const v1::ModelSpec& spec, size_t num_features) {
  if (absl::Status status = CheckSpec(spec, num_features); !status.ok()) return status;
  return Count(spec, num_features);
}

absl::StatusOr<std::vector<size_t>> MlpLayerWidths(const v1::ModelSpec& spec, size_t num_features) {
  if (spec.kind() != v1::ModelSpec::MLP) {
    return absl::InvalidArgumentError(absl::StrCat("model.kind is ", KindName(spec), ", not MLP"));
  }
  absl::StatusOr<size_t> n = NumParameters(spec, num_features);
  if (!n.ok()) return n.status();
  return Widths(spec, num_features);
}

absl::StatusOr<std::vector<float>> InitialParameters(const v1::ModelSpec& spec, size_t num_features,
                                                     uint64_t seed) {
  absl::StatusOr<size_t> n = NumParameters(spec, num_features);
  if (!n.ok()) return n.status();
  // The convex models start at zero whatever the seed: zero is the usual, reproducible
  // start, and there is no symmetry to break.
  std::vector<float> params(*n, 0.0f);
  if (spec.kind() != v1::ModelSpec::MLP) return params;

  const std::vector<size_t> widths = Widths(spec, num_features);
  common::SplitMix64 rng(seed);
  size_t offset = 0;
  for (size_t l = 1; l < widths.size(); ++l) {
    const size_t in = widths[l - 1];
    const size_t out = widths[l];
    const bool head = l + 1 == widths.size();
    const double bound = head ? std::sqrt(6.0 / static_cast<double>(in + out))
                              : std::sqrt(6.0 / static_cast<double>(in));
    for (size_t i = 0; i < out * in; ++i) {
      params[offset + i] = static_cast<float>((2.0 * rng.NextUnit() - 1.0) * bound);
    }
    offset += out * in + out;  // the biases stay zero
  }
  return params;
}

bool StatisticsIncludeLabel(const v1::ModelSpec& spec) {
  switch (spec.kind()) {
    case v1::ModelSpec::LINEAR_REGRESSION:
    case v1::ModelSpec::COX_PH:
      return true;
    case v1::ModelSpec::MLP:
      return spec.num_classes() < 2;
    default:
      return false;
  }
}

double ResolvedL2(const v1::ModelSpec& spec, uint64_t pooled_rows) {
  if (spec.inverse_regularization() > 0) {
    if (pooled_rows == 0) return 0;
    return 1.0 / (spec.inverse_regularization() * static_cast<double>(pooled_rows));
  }
  return spec.l2();
}

}  // namespace tessera::proto
