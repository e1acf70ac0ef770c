#include "client/privacy.h"

#include <cmath>
#include <numbers>
#include <span>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/mask_generator.h"
#include "crypto/random.h"
#include "proto/analytics.h"
#include "proto/evaluation.h"
#include "proto/task.pb.h"

namespace tessera::client {
namespace {

// Adds N(0, stddev^2) to every entry of `values`, from a fresh CSPRNG stream. `values` is
// unchanged if the random source fails.
absl::Status AddGaussianNoise(double stddev, std::span<double> values) {
  if (values.empty()) return absl::OkStatus();
  // Uniform words from AES-CTR under a fresh key from the system's DRBG, two words per
  // uniform double, Box-Muller for pairs of normals.
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::RandomBytes(crypto::MaskGenerator::kKeyBytes));
  ASSIGN_OR_RETURN(crypto::MaskGenerator generator, crypto::MaskGenerator::Create(key));
  const size_t n = values.size();
  const size_t pairs = (n + 1) / 2;
  std::vector<uint32_t> words(4 * pairs);
  generator.Generate(0, words);
  auto uniform = [&](size_t k) {
    // 53 random bits, mapped to (0, 1]: never 0, so the logarithm is finite.
    uint64_t bits = (static_cast<uint64_t>(words[2 * k]) << 21) ^ (words[2 * k + 1] >> 11);
    return (static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) + 1.0) * 0x1p-53;
  };
  for (size_t p = 0; p < pairs; ++p) {
    const double r = std::sqrt(-2.0 * std::log(uniform(2 * p)));
    const double theta = 2.0 * std::numbers::pi * uniform(2 * p + 1);
    const double z[2] = {r * std::cos(theta), r * std::sin(theta)};
    for (size_t j = 0; j < 2; ++j) {
      const size_t i = 2 * p + j;
      if (i >= n) break;
      values[i] += stddev * z[j];
    }
  }
  for (uint32_t& w : words) w = 0;
  return absl::OkStatus();
}

}  // namespace

absl::Status AddPrivacyNoise(const v1::PrivacySpec& spec, uint32_t threshold,
                             std::vector<double>* values) {
  if (values->empty()) return absl::InvalidArgumentError("no update to add noise to");
  if (threshold == 0) return absl::InvalidArgumentError("the threshold must be positive");
  std::span<double> update(values->data() + 1, values->size() - 1);
  double norm_sq = 0;
  for (double v : update) norm_sq += v * v;
  const double norm = std::sqrt(norm_sq);
  const double scale = norm > spec.clip_norm() ? spec.clip_norm() / norm : 1.0;
  const double stddev =
      spec.noise_multiplier() * spec.clip_norm() / std::sqrt(static_cast<double>(threshold));
  // Noise is drawn before the update is scaled, so that a failure leaves it unchanged.
  std::vector<double> noise(update.size(), 0.0);
  RETURN_IF_ERROR(AddGaussianNoise(stddev, noise));
  // The secure-aggregation encoding then clips each coordinate to its bound; task
  // validation keeps that bound far beyond the noise's reach.
  for (size_t i = 0; i < update.size(); ++i) update[i] = update[i] * scale + noise[i];
  return absl::OkStatus();
}

absl::Status AddEvaluationNoise(const v1::PrivacySpec& spec, const proto::EvaluationLayout& layout,
                                uint32_t threshold, std::vector<double>* values) {
  if (values->size() != layout.length) {
    return absl::InvalidArgumentError(absl::StrCat("evaluation noise: ", values->size(),
                                                   " values for a layout of ", layout.length));
  }
  if (threshold == 0) return absl::InvalidArgumentError("the threshold must be positive");
  const double sigma = spec.evaluation_noise_multiplier();
  if (!std::isfinite(sigma) || sigma < 0) {
    return absl::InvalidArgumentError(
        "privacy.evaluation_noise_multiplier must be a finite number >= 0");
  }
  if (sigma == 0) return absl::OkStatus();  // evaluation sums released exactly
  const double stddev = sigma * proto::EvaluationRecordSensitivity(layout) /
                        std::sqrt(static_cast<double>(threshold));
  return AddGaussianNoise(stddev, *values);
}

absl::Status AddAnalyticsNoise(const v1::TaskSpec& spec, uint32_t threshold,
                               std::vector<double>* statistics) {
  if (!spec.has_analytics() || !spec.has_privacy()) {
    return absl::InvalidArgumentError("analytics noise needs an analytics task with privacy");
  }
  if (threshold == 0) return absl::InvalidArgumentError("the threshold must be positive");
  const proto::AnalyticsSensitivity sensitivity =
      proto::AnalyticsRecordSensitivity(spec.analytics());
  if (statistics->size() != sensitivity.per_statistic.size()) {
    return absl::InvalidArgumentError(absl::StrCat("analytics noise: ", statistics->size(),
                                                   " values for ", sensitivity.per_statistic.size(),
                                                   " statistics"));
  }
  // Unit normals first, so that a failure leaves `statistics` unchanged; then each scaled
  // by its own standard deviation.
  std::vector<double> noise(statistics->size(), 0.0);
  RETURN_IF_ERROR(AddGaussianNoise(1.0, noise));
  const double scale =
      spec.privacy().noise_multiplier() *
      std::sqrt(static_cast<double>(sensitivity.row_statistics) / static_cast<double>(threshold));
  for (size_t i = 0; i < noise.size(); ++i) {
    (*statistics)[i] += scale * sensitivity.per_statistic[i] * noise[i];
  }
  return absl::OkStatus();
}

}  // namespace tessera::client
