// The site's share of central differential privacy under secure aggregation (distributed
// Gaussian noise, as in DP-FedAvg, McMahan et al. 2018, with the noise split over sites).
//
// Model updates (site-level DP). A FIT vector [w, w*delta] has its weighted update
// w*delta clipped to L2 norm C, so one site's whole contribution to the summed update moves
// it by at most C (the sensitivity); then every coordinate gets Gaussian noise of variance
// (sigma*C)^2 / t, t being the session's threshold. A sum over at least t sites that added
// their share therefore carries noise of standard deviation at least sigma*C — the Gaussian
// mechanism the coordinator's RDP accountant charges for. A record lives at one site, so
// the same guarantee holds for one record (record-level). The weight w itself is not
// noised (the cohort's total share of rows is released as is).
//
// Evaluation sums (record-level DP, when PrivacySpec.evaluation_noise_multiplier
// sigma_e > 0). The site encodes its evaluation vector for noise (proto/evaluation.h,
// EvaluationInput::for_noise), so that adding or removing one of its rows moves the vector
// by at most Delta = EvaluationRecordSensitivity(layout) in L2, and adds Gaussian noise of
// standard deviation sigma_e * Delta / sqrt(t) to every entry. A sum over at least t sites
// carries noise of standard deviation at least sigma_e * Delta. There is no site-level
// guarantee for evaluation: a site's whole vector moves with its number of rows.
//
// Analytics answers (record-level DP, when an analytics task sets `privacy`, noise
// multiplier sigma). Every query bounds its column (value_range [lo, hi]); one row changes
// at most m of the site's statistics (counts, sums S, sums of squares Q, histogram cells),
// statistic i by at most Delta_i (proto::AnalyticsRecordSensitivity: 1 for counts,
// max(|lo|, |hi|) for S, max(lo^2, hi^2) for Q). The site withholds nothing and adds
// Gaussian noise of standard deviation sigma sqrt(m) Delta_i / sqrt(t) to statistic i
// before encoding (proto::EncodeNoisedAnalytics). Scaled by 1/(sqrt(m) Delta_i) the
// statistics move by at most 1 in L2 per row, so a sum over at least t sites is the
// Gaussian mechanism with noise multiplier sigma (the derivation is in proto/analytics.h).
//
// The noise comes from the system's CSPRNG (a fresh AES-CTR key from the DRBG for every
// call), never from the task seed: the coordinator must not be able to subtract it, and two
// calls never add the same noise.
//
// Assumption (documented for the data protection officer): the guarantee holds if at least
// t of the summed sites are honest and add their noise; with fewer honest sites the noise
// is proportionally smaller.
//
// Thread-safe (no shared state).
#ifndef TESSERA_CLIENT_PRIVACY_H_
#define TESSERA_CLIENT_PRIVACY_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace tessera::v1 {
class PrivacySpec;
class TaskSpec;
}  // namespace tessera::v1

namespace tessera::proto {
struct EvaluationLayout;
}  // namespace tessera::proto

namespace tessera::client {

// Clips values[1..] (the weighted update) to L2 norm spec.clip_norm and adds the site's
// share of noise to each of them; values[0] (the weight) is left as is. INTERNAL if the
// random source fails; INVALID_ARGUMENT for an empty vector or a non-positive threshold.
absl::Status AddPrivacyNoise(const v1::PrivacySpec& spec, uint32_t threshold,
                             std::vector<double>* values);

// Adds the site's share of evaluation noise, N(0, (sigma_e * Delta)^2 / threshold), to
// every entry of `values`, sigma_e = spec.evaluation_noise_multiplier and
// Delta = proto::EvaluationRecordSensitivity(layout). Precondition: `values` is this
// site's EncodeEvaluation(layout, input) with input.for_noise = true (zero rows: a vector
// of zeros, which gets its noise too); the sensitivity holds only for that encoding.
// With sigma_e = 0 (evaluation sums exact) it changes nothing. INVALID_ARGUMENT if
// values->size() != layout.length, threshold is 0, or sigma_e is not finite and >= 0;
// INTERNAL if the random source fails. `values` is unchanged on error.
absl::Status AddEvaluationNoise(const v1::PrivacySpec& spec, const proto::EvaluationLayout& layout,
                                uint32_t threshold, std::vector<double>* values);

// Adds the site's share of analytics noise, N(0, (sigma sqrt(m) Delta_i)^2 / threshold),
// to every statistic i of `statistics`, sigma = spec.privacy().noise_multiplier() and
// (m, Delta) = proto::AnalyticsRecordSensitivity(spec.analytics()). `statistics` is in the
// statistics order of proto/analytics.h (proto::AnalyticsStatisticsLength values); zeros
// give the noise itself, which proto::EncodeNoisedAnalytics takes. Preconditions: `spec`
// is a valid analytics task with privacy (every query has its value_range).
// INVALID_ARGUMENT if spec has no analytics or no privacy, statistics->size() is not the
// spec's statistics length, or threshold is 0; INTERNAL if the random source fails.
// `statistics` is unchanged on error.
absl::Status AddAnalyticsNoise(const v1::TaskSpec& spec, uint32_t threshold,
                               std::vector<double>* statistics);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_PRIVACY_H_
