// Rényi-differential-privacy accountant for the (subsampled) Gaussian mechanism: how much
// privacy a run of noisy rounds has spent, as (ε, δ).
//
// Mechanism. Each step releases f(D) + N(0, σ²·C²·I) where f has L2 sensitivity C (the
// clipping norm) and σ = noise_multiplier; with sampling rate q each record takes part in a
// step independently with probability q (Poisson sampling). Cross-silo rounds in which
// every site's clipped contribution is summed are the case q = 1, one step per round.
// Neighbouring datasets differ by adding or removing one record (or one site, when the
// sensitivity is per site).
//
// RDP of one step at order α > 1 (Mironov 2017, "Rényi Differential Privacy", Prop. 7 and
// Mironov, Talwar & Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
// Mechanism", Sections 3.2-3.3):
//   q = 0            RDP(α) = 0
//   q = 1            RDP(α) = α / (2σ²)                                   (exact)
//   0 < q < 1        RDP(α) = log(A_α) / (α − 1), with
//     integer α      A_α = Σ_{k=0..α} C(α,k) (1−q)^{α−k} q^k exp((k² − k) / (2σ²))
//     fractional α   A_α = Σ_{k≥0} C(α,k) q^k (1−q)^{α−k} e^{(k²−k)/(2σ²)} ½erfc((k − z₀)/(√2σ))
//                        + Σ_{k≥0} C(α,k) q^{α−k} (1−q)^k e^{((α−k)²−(α−k))/(2σ²)}
//                                                            ½erfc((z₀ − (α−k))/(√2σ)),
//                    z₀ = σ² log(1/q − 1) + ½   (MTZ §3.3; the series is summed until its
//                    terms fall below 1e-14 of the total; if it does not converge, or
//                    anything is not finite, the order's RDP is +∞, which is safe).
// Everything is computed in log space. Composition over steps and over calls adds RDP
// order by order (Mironov 2017, Prop. 1).
//
// Conversion to (ε, δ)-DP, minimised over the orders:
//   kMironov (default)  ε = RDP(α) + log(1/δ) / (α − 1)               (Mironov 2017, Prop. 3)
//   kBalle              ε = RDP(α) + log((α − 1)/α) − (log δ + log α) / (α − 1)
//                       (Balle et al. 2020, "Hypothesis Testing Interpretations and Rényi
//                       DP", Thm. 21; Canonne, Kamath & Steinke 2020); never larger than
//                       kMironov; clamped at 0.
// kMironov is what tensorflow_privacy's compute_dp_sgd_privacy reported (e.g. MNIST,
// q = 256/60000, σ = 1.12, 60 epochs = 14063 steps, δ = 1e-5: ε = 2.92 on the orders
// below); kBalle is what Google's dp_accounting and Opacus use today.
//
// Orders. DefaultRdpOrders() is tensorflow_privacy's grid plus 64:
//   1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, ..., 64, 128, 256, 512.
// Small orders matter for large ε, large ones for tiny ε; a finer grid can only lower ε.
//
// ---- Releases (EpsilonOfReleases, EpsilonAfterNextRelease) ----
// A release is one noised sum that can be unmasked: a Gaussian mechanism with sampling
// rate 1 (every record of every summed site is in it), described by its noise multiplier σ
// alone (RDP α / (2σ²)). Tessera's releases:
//   - a model-update sum, σ = PrivacySpec.noise_multiplier. Site-level DP: one site's whole
//     clipped update moves the sum by at most clip_norm, and the noise is σ·clip_norm. It
//     implies record-level DP with the same RDP: a record moves only its own site's
//     clipped update, by at most clip_norm.
//   - an evaluation sum with evaluation noise, σ = PrivacySpec.evaluation_noise_multiplier
//     > 0. Record-level DP only: one row moves its site's vector by at most Δ, the
//     layout's per-record sensitivity (proto/evaluation.h), and the noise is σ·Δ; a whole
//     site's vector moves with its number of rows, so there is no site-level guarantee.
//   - an analytics answer of a task with privacy, σ = PrivacySpec.noise_multiplier.
//     Record-level DP only: one row moves the statistics, each scaled by 1/(√m Δ_i), by at
//     most 1 in L2 (proto/analytics.h), and the noise is σ in those units.
// Exact releases (evaluation sums with evaluation_noise_multiplier = 0, pooled statistics,
// the FIT weight and train_examples, analytics answers without privacy) are not
// differentially private and are never charged; docs/research.md lists every release.
// Releases compose at the record level, training and evaluation alike: RDP adds order by
// order (Mironov 2017, Prop. 1), RDP(α) = Σ_i α / (2σ_i²), converted with kMironov on
// DefaultRdpOrders(). k releases at one σ give exactly GaussianEpsilon(σ, 1, k, δ). It is
// a record-level ε; the site-level guarantee covers the model-update releases alone.
// Who charges what, and when, is the caller's contract: the coordinator's per-task ledger
// (coordinator/privacy_accountant.h) and each site's own budget per dataset
// (client/site_budget.h) both charge these releases with these functions.
//
// Pure (no I/O, clock or logging). An RdpAccountant is a value: copyable, not thread-safe
// for concurrent mutation; const methods may be called concurrently.
#ifndef TESSERA_DP_RDP_H_
#define TESSERA_DP_RDP_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::dp {

// The default orders listed above, ascending.
std::vector<double> DefaultRdpOrders();

// RDP at `order` of one step of the sampled Gaussian mechanism (formulas above); may be
// +∞. INVALID_ARGUMENT unless noise_multiplier is finite and > 0, sampling_rate is in
// [0, 1] and order is in (1, 10000].
absl::StatusOr<double> SampledGaussianRdp(double noise_multiplier, double sampling_rate,
                                          double order);

enum class RdpConversion { kMironov, kBalle };

class RdpAccountant {
 public:
  // With DefaultRdpOrders().
  RdpAccountant();
  // With the given orders, sorted and deduplicated. INVALID_ARGUMENT if there are none or
  // one is not in (1, 10000].
  static absl::StatusOr<RdpAccountant> WithOrders(std::vector<double> orders);

  // Composes `steps` steps of the sampled Gaussian mechanism. INVALID_ARGUMENT (and no
  // change) for arguments SampledGaussianRdp refuses or steps < 0.
  absl::Status AddGaussianSteps(double noise_multiplier, double sampling_rate, int64_t steps);

  // The smallest ε such that everything added so far is (ε, δ)-DP, by `conversion`;
  // +∞ if every order's RDP is. INVALID_ARGUMENT unless 0 < δ < 1.
  absl::StatusOr<double> Epsilon(double delta,
                                 RdpConversion conversion = RdpConversion::kMironov) const;
  // The order at which Epsilon(delta, conversion) is attained. Same errors.
  absl::StatusOr<double> OptimalOrder(double delta,
                                      RdpConversion conversion = RdpConversion::kMironov) const;

  const std::vector<double>& orders() const { return orders_; }
  // Accumulated RDP, one per order; 0 when nothing was added.
  const std::vector<double>& rdp() const { return rdp_; }

  // The accumulated RDP as bytes, for committing with a round. Version 1, little-endian:
  //   "TRDP" | u8 version = 1 | u32 n | n × (f64 order, f64 rdp)
  // Doubles are IEEE-754 binary64 bit patterns, so a restore is exact.
  std::string SaveState() const;
  // Replaces the accumulated RDP with one SaveState() made; "" means nothing spent.
  // INVALID_ARGUMENT (and no change) if `state` is malformed, holds other orders than
  // this accountant's, or holds a negative or NaN RDP.
  absl::Status RestoreState(const std::string& state);

 private:
  explicit RdpAccountant(std::vector<double> orders);

  std::vector<double> orders_;
  std::vector<double> rdp_;
};

// ε of `steps` steps at (noise_multiplier, sampling_rate) for `delta`, on the default
// orders with the kMironov conversion. Errors as AddGaussianSteps and Epsilon.
absl::StatusOr<double> GaussianEpsilon(double noise_multiplier, double sampling_rate, int64_t steps,
                                       double delta);

// ε of the composition of `noise_multipliers`, one Gaussian-mechanism release each
// (sampling rate 1), for `delta`, on the default orders with the kMironov conversion (the
// releases section above). No release: 0 (nothing was spent). INVALID_ARGUMENT unless every
// multiplier is finite and > 0 and 0 < δ < 1.
absl::StatusOr<double> EpsilonOfReleases(std::span<const double> noise_multipliers, double delta);

// The ε reached from `charged` (the releases charged so far) with one more release of
// each kind.
struct NextReleaseEpsilon {
  double now = 0;           // EpsilonOfReleases(charged)
  double model_update = 0;  // plus one model-update sum
  double evaluation = 0;    // plus one evaluation sum; = now when evaluation sums are exact
  double round = 0;         // plus both: a round's model update and its evaluation
};
// update_noise_multiplier = PrivacySpec.noise_multiplier (finite, > 0);
// evaluation_noise_multiplier = PrivacySpec.evaluation_noise_multiplier (finite, >= 0;
// 0 = exact evaluation sums, not charged). INVALID_ARGUMENT as EpsilonOfReleases, or for
// multipliers outside those ranges.
absl::StatusOr<NextReleaseEpsilon> EpsilonAfterNextRelease(std::span<const double> charged,
                                                           double update_noise_multiplier,
                                                           double evaluation_noise_multiplier,
                                                           double delta);

}  // namespace tessera::dp

#endif  // TESSERA_DP_RDP_H_
