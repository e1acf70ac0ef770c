#include "client/privacy.h"

#include <cmath>
#include <numbers>

#include "common/status.h"
#include "crypto/mask_generator.h"
#include "crypto/random.h"
#include "proto/task.pb.h"

namespace tessera::client {

absl::Status AddPrivacyNoise(const v1::PrivacySpec& spec, uint32_t threshold,
                             std::vector<double>* values) {
  if (values->empty()) return absl::InvalidArgumentError("no update to add noise to");
  if (threshold == 0) return absl::InvalidArgumentError("the threshold must be positive");
  const size_t n = values->size() - 1;
  double norm_sq = 0;
  for (size_t i = 1; i <= n; ++i) norm_sq += (*values)[i] * (*values)[i];
  const double norm = std::sqrt(norm_sq);
  const double scale = norm > spec.clip_norm() ? spec.clip_norm() / norm : 1.0;
  const double sigma =
      spec.noise_multiplier() * spec.clip_norm() / std::sqrt(static_cast<double>(threshold));

  // Uniform words from AES-CTR under a fresh key from the system's DRBG, two words per
  // uniform double, Box-Muller for pairs of normals.
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::RandomBytes(crypto::MaskGenerator::kKeyBytes));
  ASSIGN_OR_RETURN(crypto::MaskGenerator generator, crypto::MaskGenerator::Create(key));
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
    for (int j = 0; j < 2; ++j) {
      const size_t i = 1 + 2 * p + static_cast<size_t>(j);
      if (i > n) break;
      // The secure-aggregation encoding then clips each coordinate to its bound; task
      // validation keeps that bound far beyond the noise's reach.
      (*values)[i] = (*values)[i] * scale + sigma * z[j];
    }
  }
  for (uint32_t& w : words) w = 0;
  return absl::OkStatus();
}

}  // namespace tessera::client
