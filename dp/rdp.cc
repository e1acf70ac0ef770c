#include "dp/rdp.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::dp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxOrder = 10000;

// A real number as (sign, log|x|); zero is log_abs = -inf.
struct SignedLog {
  bool negative = false;
  double log_abs = -kInf;
};

SignedLog Add(SignedLog a, SignedLog b) {
  if (a.log_abs == -kInf) return b;
  if (b.log_abs == -kInf) return a;
  if (a.log_abs < b.log_abs) std::swap(a, b);  // |a| >= |b|
  const double r = std::exp(b.log_abs - a.log_abs);
  if (a.negative == b.negative) return {a.negative, a.log_abs + std::log1p(r)};
  if (r == 1.0) return {};
  return {a.negative, a.log_abs + std::log1p(-r)};
}

// log(erfc(x)), accurate where erfc underflows.
double LogErfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  // Asymptotic expansion: erfc(x) = e^{-x²}/(x√π) (1 - 1/(2x²) + 3/(4x⁴) - 15/(8x⁶) + ...).
  const double r = 1 / (2 * x * x);
  const double series = 1 - r + 3 * r * r - 15 * r * r * r + 105 * r * r * r * r;
  return -x * x - std::log(x) - 0.5 * std::log(std::numbers::pi) + std::log(series);
}

// log(e^x − 1) for x > 0, without overflow.
double LogExpm1(double x) {
  return x > 30 ? x + std::log1p(-std::exp(-x)) : std::log(std::expm1(x));
}

// log A_α for integer α >= 2 and 0 < q < 1 (MTZ 2019, §3.2). The binomial weights
// C(α,k)(1−q)^{α−k}q^k sum to 1, so A_α − 1 = Σ_{k>=2} C(α,k)(1−q)^{α−k}q^k (e^{(k²−k)/(2σ²)} − 1):
// positive terms only, summed in log space, which keeps full relative precision when
// A_α is close to 1 (small q).
double LogAInteger(double q, double sigma, int alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  std::vector<double> terms;
  terms.reserve(static_cast<size_t>(alpha));
  double log_binom = 0;  // log C(α, k), built up from k = 0
  for (int k = 1; k <= alpha; ++k) {
    log_binom += std::log(static_cast<double>(alpha - k + 1) / k);
    if (k < 2) continue;
    const double kk = k;
    terms.push_back(log_binom + kk * log_q + (alpha - kk) * log_1mq +
                    LogExpm1((kk * kk - kk) / (2 * sigma * sigma)));
  }
  const double top = *std::max_element(terms.begin(), terms.end());
  double sum = 0;
  for (double t : terms) sum += std::exp(t - top);
  const double log_a_minus_1 = top + std::log(sum);
  // log A = log(1 + (A − 1)).
  return log_a_minus_1 < 0 ? std::log1p(std::exp(log_a_minus_1))
                           : log_a_minus_1 + std::log1p(std::exp(-log_a_minus_1));
}

// log A_α for fractional α and 0 < q < 1 (MTZ 2019, §3.3); +inf if the series does not
// settle.
double LogAFractional(double q, double sigma, double alpha) {
  constexpr int kMaxTerms = 1000000;
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double s2 = sigma * sigma;
  const double z0 = s2 * (log_1mq - log_q) + 0.5;  // σ² log(1/q − 1) + ½
  const double scale = std::sqrt(2.0) * sigma;
  SignedLog a0, a1;
  double log_abs_binom = 0;  // log |C(α, k)|
  bool binom_negative = false;
  for (int k = 0; k < kMaxTerms; ++k) {
    if (k > 0) {
      const double factor = (alpha - (k - 1)) / k;  // C(α,k) = C(α,k−1)·(α−k+1)/k
      if (factor == 0) return kInf;                 // α integral after all: not this path
      log_abs_binom += std::log(std::abs(factor));
      if (factor < 0) binom_negative = !binom_negative;
    }
    const double i = k;
    const double j = alpha - k;
    const double s0 = log_abs_binom + i * log_q + j * log_1mq + (i * i - i) / (2 * s2) +
                      std::log(0.5) + LogErfc((i - z0) / scale);
    const double s1 = log_abs_binom + j * log_q + i * log_1mq + (j * j - j) / (2 * s2) +
                      std::log(0.5) + LogErfc((z0 - j) / scale);
    if (std::isnan(s0) || std::isnan(s1)) return kInf;
    a0 = Add(a0, {binom_negative, s0});
    a1 = Add(a1, {binom_negative, s1});
    // Past k > α the terms alternate in sign, and past k > z₀ their size only falls, so
    // the first omitted term bounds the error.
    if (i > alpha + 1 && i > z0 + 1) {
      const SignedLog total = Add(a0, a1);
      if (total.negative || total.log_abs == -kInf) return kInf;
      if (std::max(s0, s1) < total.log_abs - 32) return total.log_abs;
    }
  }
  return kInf;
}

absl::Status CheckMechanism(double noise_multiplier, double sampling_rate) {
  if (!std::isfinite(noise_multiplier) || noise_multiplier <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise_multiplier must be a finite number > 0, got ", noise_multiplier));
  }
  if (!(sampling_rate >= 0 && sampling_rate <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling_rate must be in [0, 1], got ", sampling_rate));
  }
  return absl::OkStatus();
}

absl::Status CheckOrder(double order) {
  if (!(order > 1 && order <= kMaxOrder)) {
    return absl::InvalidArgumentError(
        absl::StrCat("RDP order must be in (1, ", kMaxOrder, "], got ", order));
  }
  return absl::OkStatus();
}

double RdpUnchecked(double sigma, double q, double alpha) {
  if (q == 0) return 0;
  if (q == 1) return alpha / (2 * sigma * sigma);
  const double log_a = alpha == std::floor(alpha) ? LogAInteger(q, sigma, static_cast<int>(alpha))
                                                  : LogAFractional(q, sigma, alpha);
  if (!(log_a < kInf)) return kInf;
  // A_α >= 1 (Jensen), so a negative value is rounding.
  return std::max(0.0, log_a / (alpha - 1));
}

double ConvertOne(double rdp, double alpha, double delta, RdpConversion conversion) {
  if (rdp == kInf) return kInf;
  switch (conversion) {
    case RdpConversion::kMironov:
      return rdp - std::log(delta) / (alpha - 1);
    case RdpConversion::kBalle:
      return std::max(
          0.0, rdp + std::log1p(-1 / alpha) - (std::log(delta) + std::log(alpha)) / (alpha - 1));
  }
  return kInf;
}

// ---- State encoding ----

constexpr char kMagic[4] = {'T', 'R', 'D', 'P'};
constexpr uint8_t kStateVersion = 1;
constexpr size_t kHeaderSize = sizeof(kMagic) + 1 + 4;

void PutLe(uint64_t v, int bytes, std::string* out) {
  for (int b = 0; b < bytes; ++b) out->push_back(static_cast<char>((v >> (8 * b)) & 0xff));
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int b = 0; b < bytes; ++b) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[b])) << (8 * b);
  }
  return v;
}

}  // namespace

std::vector<double> DefaultRdpOrders() {
  std::vector<double> orders = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a <= 64; ++a) orders.push_back(a);
  orders.insert(orders.end(), {128, 256, 512});
  return orders;
}

absl::StatusOr<double> SampledGaussianRdp(double noise_multiplier, double sampling_rate,
                                          double order) {
  if (absl::Status s = CheckMechanism(noise_multiplier, sampling_rate); !s.ok()) return s;
  if (absl::Status s = CheckOrder(order); !s.ok()) return s;
  return RdpUnchecked(noise_multiplier, sampling_rate, order);
}

RdpAccountant::RdpAccountant() : RdpAccountant(DefaultRdpOrders()) {}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {}

absl::StatusOr<RdpAccountant> RdpAccountant::WithOrders(std::vector<double> orders) {
  if (orders.empty()) return absl::InvalidArgumentError("no RDP orders");
  for (double order : orders) {
    if (absl::Status s = CheckOrder(order); !s.ok()) return s;
  }
  std::sort(orders.begin(), orders.end());
  orders.erase(std::unique(orders.begin(), orders.end()), orders.end());
  return RdpAccountant(std::move(orders));
}

absl::Status RdpAccountant::AddGaussianSteps(double noise_multiplier, double sampling_rate,
                                             int64_t steps) {
  if (absl::Status s = CheckMechanism(noise_multiplier, sampling_rate); !s.ok()) return s;
  if (steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be >= 0, got ", steps));
  }
  if (steps == 0) return absl::OkStatus();
  for (size_t i = 0; i < orders_.size(); ++i) {
    const double one = RdpUnchecked(noise_multiplier, sampling_rate, orders_[i]);
    rdp_[i] += static_cast<double>(steps) * one;  // 0·inf cannot happen: steps > 0
  }
  return absl::OkStatus();
}

absl::StatusOr<double> RdpAccountant::Epsilon(double delta, RdpConversion conversion) const {
  if (!(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  double best = kInf;
  for (size_t i = 0; i < orders_.size(); ++i) {
    best = std::min(best, ConvertOne(rdp_[i], orders_[i], delta, conversion));
  }
  return best;
}

absl::StatusOr<double> RdpAccountant::OptimalOrder(double delta, RdpConversion conversion) const {
  if (!(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  double best = kInf;
  double order = orders_.front();
  for (size_t i = 0; i < orders_.size(); ++i) {
    const double eps = ConvertOne(rdp_[i], orders_[i], delta, conversion);
    if (eps < best) {
      best = eps;
      order = orders_[i];
    }
  }
  return order;
}

std::string RdpAccountant::SaveState() const {
  std::string out;
  out.reserve(kHeaderSize + 16 * orders_.size());
  out.append(kMagic, sizeof(kMagic));
  out.push_back(static_cast<char>(kStateVersion));
  PutLe(orders_.size(), 4, &out);
  for (size_t i = 0; i < orders_.size(); ++i) {
    PutLe(std::bit_cast<uint64_t>(orders_[i]), 8, &out);
    PutLe(std::bit_cast<uint64_t>(rdp_[i]), 8, &out);
  }
  return out;
}

absl::Status RdpAccountant::RestoreState(const std::string& state) {
  if (state.empty()) {
    std::fill(rdp_.begin(), rdp_.end(), 0.0);
    return absl::OkStatus();
  }
  if (state.size() < kHeaderSize || std::memcmp(state.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not a privacy accountant state");
  }
  if (static_cast<uint8_t>(state[4]) != kStateVersion) {
    return absl::InvalidArgumentError(absl::StrCat("privacy accountant state version ",
                                                   static_cast<int>(static_cast<uint8_t>(state[4])),
                                                   " is not supported"));
  }
  const uint64_t n = GetLe(state.data() + 5, 4);
  if (n != orders_.size() || state.size() != kHeaderSize + 16 * n) {
    return absl::InvalidArgumentError(
        absl::StrCat("privacy accountant state of ", state.size(), " bytes for ", n,
                     " orders; this accountant has ", orders_.size()));
  }
  std::vector<double> rdp(n);
  const char* p = state.data() + kHeaderSize;
  for (uint64_t i = 0; i < n; ++i, p += 16) {
    const uint64_t order_bits = GetLe(p, 8);
    if (order_bits != std::bit_cast<uint64_t>(orders_[i])) {
      return absl::InvalidArgumentError(absl::StrCat("privacy accountant state order ", i, " is ",
                                                     std::bit_cast<double>(order_bits),
                                                     ", this accountant's ", orders_[i]));
    }
    const double value = std::bit_cast<double>(GetLe(p + 8, 8));
    if (!(value >= 0)) {  // NaN or negative; +inf is a legitimate RDP
      return absl::InvalidArgumentError(
          absl::StrCat("privacy accountant state RDP ", i, " is ", value));
    }
    rdp[i] = value;
  }
  rdp_ = std::move(rdp);
  return absl::OkStatus();
}

namespace {

// The RDP of `noise_multipliers` (sampling rate 1 each), added to `accountant`.
absl::Status AddReleases(std::span<const double> noise_multipliers, RdpAccountant* accountant) {
  for (size_t i = 0; i < noise_multipliers.size(); ++i) {
    if (absl::Status s = accountant->AddGaussianSteps(noise_multipliers[i], 1.0, 1); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("release ", i, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> EpsilonOf(const RdpAccountant& accountant, bool any, double delta) {
  if (!(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  if (!any) return 0.0;  // nothing released: nothing spent (the conversion would say > 0)
  return accountant.Epsilon(delta);
}

}  // namespace

absl::StatusOr<double> EpsilonOfReleases(std::span<const double> noise_multipliers, double delta) {
  RdpAccountant accountant;
  if (absl::Status s = AddReleases(noise_multipliers, &accountant); !s.ok()) return s;
  return EpsilonOf(accountant, !noise_multipliers.empty(), delta);
}

absl::StatusOr<NextReleaseEpsilon> EpsilonAfterNextRelease(std::span<const double> charged,
                                                           double update_noise_multiplier,
                                                           double evaluation_noise_multiplier,
                                                           double delta) {
  if (!std::isfinite(evaluation_noise_multiplier) || evaluation_noise_multiplier < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation_noise_multiplier must be a finite number >= 0, got ",
                     evaluation_noise_multiplier));
  }
  RdpAccountant base;
  if (absl::Status s = AddReleases(charged, &base); !s.ok()) return s;
  NextReleaseEpsilon out;
  {
    absl::StatusOr<double> now = EpsilonOf(base, !charged.empty(), delta);
    if (!now.ok()) return now.status();
    out.now = *now;
  }
  RdpAccountant with_update = base;
  if (absl::Status s = with_update.AddGaussianSteps(update_noise_multiplier, 1.0, 1); !s.ok()) {
    return s;
  }
  absl::StatusOr<double> update = with_update.Epsilon(delta);
  if (!update.ok()) return update.status();
  out.model_update = *update;
  if (evaluation_noise_multiplier == 0) {
    out.evaluation = out.now;
    out.round = out.model_update;
    return out;
  }
  RdpAccountant with_evaluation = base;
  RdpAccountant with_both = with_update;
  if (absl::Status s = with_evaluation.AddGaussianSteps(evaluation_noise_multiplier, 1.0, 1);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = with_both.AddGaussianSteps(evaluation_noise_multiplier, 1.0, 1); !s.ok()) {
    return s;
  }
  absl::StatusOr<double> evaluation = with_evaluation.Epsilon(delta);
  if (!evaluation.ok()) return evaluation.status();
  absl::StatusOr<double> round = with_both.Epsilon(delta);
  if (!round.ok()) return round.status();
  out.evaluation = *evaluation;
  out.round = *round;
  return out;
}

absl::StatusOr<double> GaussianEpsilon(double noise_multiplier, double sampling_rate, int64_t steps,
                                       double delta) {
  RdpAccountant accountant;
  if (absl::Status s = accountant.AddGaussianSteps(noise_multiplier, sampling_rate, steps);
      !s.ok()) {
    return s;
  }
  return accountant.Epsilon(delta);
}

}  // namespace tessera::dp
