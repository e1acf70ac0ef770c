#include "coordinator/strategy.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"

namespace tessera::coordinator {
namespace {

absl::Status CheckUpdate(std::span<const float> global, const proto::AveragedUpdate& update,
                         size_t fixed_size, size_t state_size) {
  if (update.mean_delta.size() != global.size()) {
    return absl::InvalidArgumentError(absl::StrCat("update has ", update.mean_delta.size(),
                                                   " parameters, the model ", global.size()));
  }
  if (fixed_size != 0 && global.size() != fixed_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model has ", global.size(), " parameters, the strategy was made for ", fixed_size));
  }
  if (state_size != 0 && global.size() != state_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model has ", global.size(), " parameters, the strategy's state ", state_size));
  }
  return absl::OkStatus();
}

absl::Status LeavesRange(size_t i) {
  return absl::InvalidArgumentError(
      absl::StrCat("parameter ", i, " leaves the float range after the update"));
}

// ---- State encoding (layout in the header) ----

constexpr char kMagic[4] = {'T', 'S', 'S', 'T'};
constexpr uint8_t kStateVersion = 1;
constexpr size_t kHeaderSize = sizeof(kMagic) + 1 + 1 + 8;

void PutU64(uint64_t v, std::string* out) {
  for (int b = 0; b < 8; ++b) out->push_back(static_cast<char>((v >> (8 * b)) & 0xff));
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int b = 0; b < 8; ++b) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[b])) << (8 * b);
  }
  return v;
}

std::string EncodeState(v1::StrategySpec::Kind kind, size_t num_parameters,
                        std::initializer_list<const std::vector<double>*> vectors) {
  std::string out;
  out.reserve(kHeaderSize + 8 * vectors.size() * num_parameters);
  out.append(kMagic, sizeof(kMagic));
  out.push_back(static_cast<char>(kStateVersion));
  out.push_back(static_cast<char>(kind));
  PutU64(num_parameters, &out);
  for (const std::vector<double>* v : vectors) {
    for (double x : *v) PutU64(std::bit_cast<uint64_t>(x), &out);
  }
  return out;
}

// Decodes a state of `kind` holding `count` vectors; each must be finite, and the last
// (a second moment) also >= 0 when `last_nonnegative`.
absl::StatusOr<std::vector<std::vector<double>>> DecodeState(const std::string& state,
                                                             v1::StrategySpec::Kind kind,
                                                             size_t count, size_t fixed_size,
                                                             bool last_nonnegative) {
  if (state.size() < kHeaderSize || std::memcmp(state.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not a strategy state");
  }
  const auto version = static_cast<uint8_t>(state[4]);
  if (version != kStateVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("strategy state version ", static_cast<int>(version), " is not supported"));
  }
  const auto state_kind = static_cast<uint8_t>(state[5]);
  if (state_kind != static_cast<uint8_t>(kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("state of strategy kind ", static_cast<int>(state_kind),
                     " given to strategy kind ", static_cast<int>(kind)));
  }
  const uint64_t n = GetU64(state.data() + 6);
  const size_t payload = state.size() - kHeaderSize;
  if (n > payload / (8 * count) || payload != 8 * count * n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strategy state of ", state.size(), " bytes does not hold ", count, " x ", n, " values"));
  }
  if (fixed_size != 0 && n != 0 && n != fixed_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("strategy state holds ", n, " parameters, the model has ", fixed_size));
  }
  std::vector<std::vector<double>> vectors(count, std::vector<double>(n));
  const char* p = state.data() + kHeaderSize;
  for (size_t k = 0; k < count; ++k) {
    for (uint64_t i = 0; i < n; ++i, p += 8) {
      double x = std::bit_cast<double>(GetU64(p));
      if (!std::isfinite(x) || (last_nonnegative && k + 1 == count && x < 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("strategy state value ", k, "/", i, " is out of range"));
      }
      vectors[k][i] = x;
    }
  }
  return vectors;
}

// ---- Strategies ----

class FedAvg final : public Strategy {
 public:
  explicit FedAvg(double server_learning_rate) : lr_(server_learning_rate) {}

  absl::StatusOr<std::vector<float>> AggregateFit(uint32_t round, std::span<const float> global,
                                                  const proto::AveragedUpdate& update) override {
    if (update.mean_delta.size() != global.size()) {
      return absl::InvalidArgumentError(absl::StrCat("update has ", update.mean_delta.size(),
                                                     " parameters, the model ", global.size()));
    }
    std::vector<float> next(global.size());
    for (size_t i = 0; i < global.size(); ++i) {
      float v = static_cast<float>(static_cast<double>(global[i]) + lr_ * update.mean_delta[i]);
      if (!std::isfinite(v)) return LeavesRange(i);
      next[i] = v;
    }
    return next;
  }

 private:
  const double lr_;
};

class FedAvgM final : public Strategy {
 public:
  FedAvgM(double server_learning_rate, double server_momentum, size_t num_parameters)
      : lr_(server_learning_rate), mu_(server_momentum), fixed_size_(num_parameters) {}

  absl::StatusOr<std::vector<float>> AggregateFit(uint32_t round, std::span<const float> global,
                                                  const proto::AveragedUpdate& update) override {
    if (absl::Status s = CheckUpdate(global, update, fixed_size_, velocity_.size()); !s.ok()) {
      return s;
    }
    const bool first = velocity_.empty();
    std::vector<double> velocity(global.size());
    std::vector<float> next(global.size());
    for (size_t i = 0; i < global.size(); ++i) {
      // v_{-1} = 0, so the first velocity is the update itself.
      const double v = first ? update.mean_delta[i] : mu_ * velocity_[i] + update.mean_delta[i];
      const float x = static_cast<float>(static_cast<double>(global[i]) + lr_ * v);
      if (!std::isfinite(v) || !std::isfinite(x)) return LeavesRange(i);
      velocity[i] = v;
      next[i] = x;
    }
    velocity_ = std::move(velocity);
    return next;
  }

  std::string SaveState() const override {
    return EncodeState(v1::StrategySpec::FEDAVGM, velocity_.size(), {&velocity_});
  }

  absl::Status RestoreState(const std::string& state) override {
    if (state.empty()) {
      velocity_.clear();
      return absl::OkStatus();
    }
    auto vectors = DecodeState(state, v1::StrategySpec::FEDAVGM, 1, fixed_size_, false);
    if (!vectors.ok()) return vectors.status();
    velocity_ = std::move((*vectors)[0]);
    return absl::OkStatus();
  }

 private:
  const double lr_;
  const double mu_;
  const size_t fixed_size_;
  // Empty until the first round.
  std::vector<double> velocity_;
};

enum class SecondMoment { kAdagrad, kAdam, kYogi };

class FedAdaptive final : public Strategy {
 public:
  FedAdaptive(SecondMoment rule, const AdaptiveOptions& options, size_t num_parameters)
      : rule_(rule), options_(options), fixed_size_(num_parameters) {}

  absl::StatusOr<std::vector<float>> AggregateFit(uint32_t round, std::span<const float> global,
                                                  const proto::AveragedUpdate& update) override {
    if (absl::Status s = CheckUpdate(global, update, fixed_size_, m_.size()); !s.ok()) return s;
    const bool first = m_.empty();
    const double eta = options_.server_learning_rate;
    const double b1 = options_.beta1;
    const double b2 = options_.beta2;
    const double tau = options_.tau;
    std::vector<double> m(global.size());
    std::vector<double> v(global.size());
    std::vector<float> next(global.size());
    for (size_t i = 0; i < global.size(); ++i) {
      const double d = update.mean_delta[i];
      const double d2 = d * d;
      // Algorithm 2 of Reddi et al.: m_{-1} = 0 and v_{-1} >= tau^2; we take tau^2.
      const double m_prev = first ? 0.0 : m_[i];
      const double v_prev = first ? tau * tau : v_[i];
      const double mi = b1 * m_prev + (1.0 - b1) * d;
      double vi = 0;
      switch (rule_) {
        case SecondMoment::kAdagrad:
          vi = v_prev + d2;
          break;
        case SecondMoment::kAdam:
          vi = b2 * v_prev + (1.0 - b2) * d2;
          break;
        case SecondMoment::kYogi: {
          const double gap = v_prev - d2;
          const double sign = gap > 0 ? 1.0 : (gap < 0 ? -1.0 : 0.0);
          vi = v_prev - (1.0 - b2) * d2 * sign;
          break;
        }
      }
      const double step = eta * mi / (std::sqrt(vi) + tau);
      const float x = static_cast<float>(static_cast<double>(global[i]) + step);
      if (!std::isfinite(mi) || !std::isfinite(vi) || vi < 0 || !std::isfinite(x)) {
        return LeavesRange(i);
      }
      m[i] = mi;
      v[i] = vi;
      next[i] = x;
    }
    m_ = std::move(m);
    v_ = std::move(v);
    return next;
  }

  std::string SaveState() const override { return EncodeState(Kind(), m_.size(), {&m_, &v_}); }

  absl::Status RestoreState(const std::string& state) override {
    if (state.empty()) {
      m_.clear();
      v_.clear();
      return absl::OkStatus();
    }
    auto vectors = DecodeState(state, Kind(), 2, fixed_size_, true);
    if (!vectors.ok()) return vectors.status();
    m_ = std::move((*vectors)[0]);
    v_ = std::move((*vectors)[1]);
    return absl::OkStatus();
  }

 private:
  v1::StrategySpec::Kind Kind() const {
    switch (rule_) {
      case SecondMoment::kAdagrad:
        return v1::StrategySpec::FEDADAGRAD;
      case SecondMoment::kAdam:
        return v1::StrategySpec::FEDADAM;
      case SecondMoment::kYogi:
        return v1::StrategySpec::FEDYOGI;
    }
    return v1::StrategySpec::KIND_UNSPECIFIED;
  }

  const SecondMoment rule_;
  const AdaptiveOptions options_;
  const size_t fixed_size_;
  // First and second moments; both empty until the first round.
  std::vector<double> m_;
  std::vector<double> v_;
};

// ---- Argument checks ----

absl::Status CheckPositive(const char* name, double value) {
  if (!std::isfinite(value) || value <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a finite number > 0, got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckUnitInterval(const char* name, double value) {
  if (!(value >= 0 && value < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be in [0, 1), got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckAdaptive(const AdaptiveOptions& o) {
  if (absl::Status s = CheckPositive("server_learning_rate", o.server_learning_rate); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckUnitInterval("beta1", o.beta1); !s.ok()) return s;
  if (absl::Status s = CheckUnitInterval("beta2", o.beta2); !s.ok()) return s;
  return CheckPositive("tau", o.tau);
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeAdaptive(SecondMoment rule,
                                                       const AdaptiveOptions& options,
                                                       size_t num_parameters) {
  if (absl::Status s = CheckAdaptive(options); !s.ok()) return s;
  return std::unique_ptr<Strategy>(std::make_unique<FedAdaptive>(rule, options, num_parameters));
}

// A spec field: 0 (unset in proto3) takes the default.
double OrDefault(double value, double default_value) { return value == 0 ? default_value : value; }

}  // namespace

std::vector<v1::Metric> Strategy::AggregateEvaluate(uint32_t round,
                                                    std::vector<v1::Metric> metrics) const {
  return metrics;
}

std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate) {
  return std::make_unique<FedAvg>(server_learning_rate);
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeFedAvgM(double server_learning_rate,
                                                      double server_momentum,
                                                      size_t num_parameters) {
  if (absl::Status s = CheckPositive("server_learning_rate", server_learning_rate); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckUnitInterval("server_momentum", server_momentum); !s.ok()) return s;
  return std::unique_ptr<Strategy>(
      std::make_unique<FedAvgM>(server_learning_rate, server_momentum, num_parameters));
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeFedAdagrad(const AdaptiveOptions& options,
                                                         size_t num_parameters) {
  return MakeAdaptive(SecondMoment::kAdagrad, options, num_parameters);
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeFedAdam(const AdaptiveOptions& options,
                                                      size_t num_parameters) {
  return MakeAdaptive(SecondMoment::kAdam, options, num_parameters);
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeFedYogi(const AdaptiveOptions& options,
                                                      size_t num_parameters) {
  return MakeAdaptive(SecondMoment::kYogi, options, num_parameters);
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const v1::StrategySpec& spec,
                                                       size_t num_parameters) {
  switch (spec.kind()) {
    case v1::StrategySpec::KIND_UNSPECIFIED:
    case v1::StrategySpec::FEDAVG:
    case v1::StrategySpec::FEDPROX: {
      // FedProx differs from FedAvg only in the sites' loss (training.proximal_mu).
      const double lr = OrDefault(spec.server_learning_rate(), 1.0);
      if (absl::Status s = CheckPositive("server_learning_rate", lr); !s.ok()) return s;
      return MakeFedAvg(lr);
    }
    case v1::StrategySpec::FEDAVGM:
      return MakeFedAvgM(OrDefault(spec.server_learning_rate(), 1.0),
                         spec.has_server_momentum() ? spec.server_momentum() : 0.9, num_parameters);
    case v1::StrategySpec::FEDADAGRAD:
    case v1::StrategySpec::FEDADAM:
    case v1::StrategySpec::FEDYOGI: {
      AdaptiveOptions options;
      options.server_learning_rate = OrDefault(spec.server_learning_rate(), 0.01);
      options.beta1 = spec.has_beta1() ? spec.beta1() : 0.9;
      options.beta2 = spec.has_beta2() ? spec.beta2() : 0.99;
      options.tau = spec.has_tau() ? spec.tau() : 1e-3;
      const SecondMoment rule = spec.kind() == v1::StrategySpec::FEDADAGRAD ? SecondMoment::kAdagrad
                                : spec.kind() == v1::StrategySpec::FEDADAM  ? SecondMoment::kAdam
                                                                            : SecondMoment::kYogi;
      return MakeAdaptive(rule, options, num_parameters);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("strategy kind ", static_cast<int>(spec.kind()), " is not supported"));
  }
}

}  // namespace tessera::coordinator
