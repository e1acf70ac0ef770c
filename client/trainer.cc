#include "client/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/internal/mlp_dispatch.h"
#include "client/internal/random.h"
#include "proto/task.pb.h"

namespace tessera::client {
namespace {

absl::Status CheckUnitInterval(const char* name, double value) {
  if (!(value >= 0 && value < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be in [0, 1), got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckArguments(const Model& model, const Dataset& data, const TrainingOptions& options,
                            std::span<float> params) {
  if (data.num_rows == 0) return absl::InvalidArgumentError("training data has no rows");
  if (data.num_features != model.num_features()) {
    return absl::InvalidArgumentError(absl::StrCat("training data has ", data.num_features,
                                                   " features, the model expects ",
                                                   model.num_features()));
  }
  if (data.x.size() != data.num_rows * data.num_features || data.y.size() != data.num_rows) {
    return absl::InvalidArgumentError("training data arrays do not match its row count");
  }
  if (params.size() != model.num_parameters()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", params.size(), " parameters, the model has ", model.num_parameters()));
  }
  if (options.batch_size == 0) return absl::InvalidArgumentError("batch_size must be positive");
  if (!(std::isfinite(options.learning_rate) && options.learning_rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("learning_rate must be positive and finite, got ", options.learning_rate));
  }
  if (!(std::isfinite(options.l2) && options.l2 >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("l2 must be non-negative and finite, got ", options.l2));
  }
  if (!(std::isfinite(options.proximal_mu) && options.proximal_mu >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("proximal_mu must be non-negative and finite, got ", options.proximal_mu));
  }
  switch (options.optimizer) {
    case Optimizer::kSgd:
      break;
    case Optimizer::kMomentum:
      if (absl::Status s = CheckUnitInterval("momentum", options.momentum); !s.ok()) return s;
      break;
    case Optimizer::kAdam:
      if (absl::Status s = CheckUnitInterval("adam_beta1", options.adam_beta1); !s.ok()) return s;
      if (absl::Status s = CheckUnitInterval("adam_beta2", options.adam_beta2); !s.ok()) return s;
      if (!(std::isfinite(options.adam_epsilon) && options.adam_epsilon > 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("adam_epsilon must be positive and finite, got ", options.adam_epsilon));
      }
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown optimizer ", static_cast<int>(options.optimizer)));
  }
  return model.CheckData(data, "training data");
}

// The update walks the parameters in blocks of this many, doing all of a step's work on
// a block (proximal term, optimiser, rounding to float, finiteness, zeroing the gradient
// for the next step) while it is in L1: a large model's arrays do not fit in L2, so one
// pass instead of five is most of the update's cost.
constexpr Eigen::Index kUpdateBlock = 512;

// The optimiser state and its step on one block [start, start + g.size()) of the
// parameters.
class Stepper {
 public:
  Stepper(const TrainingOptions& options, Eigen::Index n) : options_(options) {
    if (options.optimizer == Optimizer::kMomentum) velocity_.setZero(n);
    if (options.optimizer == Optimizer::kAdam) {
      first_.setZero(n);
      second_.setZero(n);
      step_.setZero(kUpdateBlock);
    }
  }

  // Call once per step t = 1, 2, ... before the blocks.
  void BeginStep(uint64_t t) {
    if (options_.optimizer != Optimizer::kAdam) return;
    // lr * (m / c1) / (sqrt(s / c2) + eps) = lr_t * m / (sqrt(s) + eps_t) with
    // lr_t = lr * sqrt(c2) / c1 and eps_t = eps * sqrt(c2), c_i = 1 - beta_i^t: the same
    // value with one division and one square root per parameter (Kingma & Ba, sec. 2).
    const double c1 = 1 - std::pow(options_.adam_beta1, static_cast<double>(t));
    const double root_c2 = std::sqrt(1 - std::pow(options_.adam_beta2, static_cast<double>(t)));
    adam_rate_ = options_.learning_rate * root_c2 / c1;
    adam_epsilon_ = options_.adam_epsilon * root_c2;
  }

  template <typename G, typename W>
  void Step(Eigen::Index start, const G& g, W& w) {
    const Eigen::Index len = g.size();
    switch (options_.optimizer) {
      case Optimizer::kSgd:
        w -= options_.learning_rate * g;
        break;
      case Optimizer::kMomentum: {
        auto v = velocity_.segment(start, len);
        v = options_.momentum * v + g;
        w -= options_.learning_rate * v;
        break;
      }
      case Optimizer::kAdam: {
        // The moments are kept, and the step computed, in float (as most frameworks do):
        // a square root and a division per parameter cost four times less than in double,
        // and the step's relative rounding error of 1e-7 does not matter; the step is
        // still added to the double parameters.
        // 1 - beta is rounded from double: 1 - 0.999f would be 0.00100005, off by 5e-5.
        const auto b1 = static_cast<float>(options_.adam_beta1);
        const auto b2 = static_cast<float>(options_.adam_beta2);
        const auto one_minus_b1 = static_cast<float>(1 - options_.adam_beta1);
        const auto one_minus_b2 = static_cast<float>(1 - options_.adam_beta2);
        auto m = first_.segment(start, len);
        auto s = second_.segment(start, len);
        m = b1 * m + one_minus_b1 * g.template cast<float>();
        s = b2 * s + one_minus_b2 * g.template cast<float>().square();
        // Two statements: Eigen vectorises neither a float expression cast to double in
        // one go nor the mixed-width whole.
        auto step = step_.head(len);
        step = static_cast<float>(adam_rate_) * m / (s.sqrt() + static_cast<float>(adam_epsilon_));
        w -= step.template cast<double>();
        break;
      }
    }
  }

 private:
  const TrainingOptions& options_;
  Eigen::ArrayXd velocity_;
  Eigen::ArrayXf first_, second_;  // Adam's moments
  Eigen::ArrayXf step_;            // one block's Adam step
  double adam_rate_ = 0, adam_epsilon_ = 0;
};

}  // namespace

absl::StatusOr<TrainingOptions> TrainingOptionsFromSpec(const v1::TrainingSpec& spec) {
  TrainingOptions options;
  if (spec.local_epochs() != 0) options.epochs = spec.local_epochs();
  if (spec.batch_size() != 0) options.batch_size = spec.batch_size();
  options.learning_rate = spec.learning_rate();
  switch (spec.optimizer()) {
    case v1::TrainingSpec::MOMENTUM:
      options.optimizer = Optimizer::kMomentum;
      break;
    case v1::TrainingSpec::ADAM:
      options.optimizer = Optimizer::kAdam;
      break;
    case v1::TrainingSpec::OPTIMIZER_UNSPECIFIED:
    case v1::TrainingSpec::SGD:
      options.optimizer = Optimizer::kSgd;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("training.optimizer ",
                                                     static_cast<int>(spec.optimizer()),
                                                     " is not supported by this build"));
  }
  if (spec.momentum() != 0) options.momentum = spec.momentum();
  if (spec.adam_beta1() != 0) options.adam_beta1 = spec.adam_beta1();
  if (spec.adam_beta2() != 0) options.adam_beta2 = spec.adam_beta2();
  if (spec.adam_epsilon() != 0) options.adam_epsilon = spec.adam_epsilon();
  options.proximal_mu = spec.proximal_mu();
  return options;
}

absl::StatusOr<TrainingReport> Train(const Model& model, const Dataset& data,
                                     const TrainingOptions& options, std::span<float> params) {
  if (absl::Status status = CheckArguments(model, data, options, params); !status.ok()) {
    return status;
  }
  const size_t n = params.size();
  const auto size = static_cast<Eigen::Index>(n);
  const std::vector<float> original(params.begin(), params.end());
  // Steps are applied to a double copy and rounded to float for each gradient: many small
  // steps would otherwise be lost to float rounding of the parameters.
  Eigen::ArrayXd master = Eigen::Map<const Eigen::ArrayXf>(params.data(), size).cast<double>();
  const Eigen::ArrayXd global = options.proximal_mu > 0 ? master : Eigen::ArrayXd();
  const double mu = options.proximal_mu;
  std::vector<double> grad(n, 0.0);  // zeroed again block by block after each update
  Eigen::Map<Eigen::ArrayXd> g(grad.data(), size);
  Eigen::Map<Eigen::ArrayXf> out(params.data(), size);
  Stepper stepper(options, size);
  // Plain SGD (no proximal term) goes through the dispatched step (SgdStep).
  const bool plain_sgd = options.optimizer == Optimizer::kSgd && options.proximal_mu == 0;
  const internal::MlpFloatKernels& kernels = internal::SelectedMlpKernels();
  std::vector<size_t> order(data.num_rows);
  internal::SplitMix64 rng(options.seed);

  auto fail = [&](const std::string& what) {
    std::copy(original.begin(), original.end(), params.begin());
    return absl::FailedPreconditionError(
        absl::StrCat(what, "; the parameters were left unchanged (try a smaller learning rate)"));
  };

  TrainingReport report;
  report.num_examples = data.num_rows;
  for (uint32_t epoch = 0; epoch < options.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), size_t{0});
    internal::Shuffle(rng, order);
    double epoch_loss_sum = 0;
    uint64_t epoch_batches = 0;
    for (size_t start = 0; start < order.size(); start += options.batch_size) {
      const size_t batch = std::min<size_t>(options.batch_size, order.size() - start);
      double loss = model.LossAndGradient(
          params, data, std::span<const size_t>(order).subspan(start, batch), options.l2, grad);
      if (!std::isfinite(loss)) {
        return fail(absl::StrCat("training loss became non-finite in epoch ", epoch + 1, ", step ",
                                 report.steps + 1));
      }
      ++report.steps;
      stepper.BeginStep(report.steps);
      double proximal = 0;  // sum of (w - w_global)^2 before the step
      bool finite = true;
      if (plain_sgd) {
        // The same arithmetic, in one pass the CPU's widest vectors can run (AVX2 here).
        for (Eigen::Index b = 0; b < size; b += kUpdateBlock) {
          const Eigen::Index len = std::min(kUpdateBlock, size - b);
          finite = kernels.sgd_step(options.learning_rate, master.data() + b, grad.data() + b,
                                    params.data() + b, static_cast<size_t>(len)) &&
                   finite;
        }
      }
      for (Eigen::Index b = 0; !plain_sgd && b < size; b += kUpdateBlock) {
        const Eigen::Index len = std::min(kUpdateBlock, size - b);
        auto gb = g.segment(b, len);
        auto wb = master.segment(b, len);
        if (mu > 0) {
          const auto gl = global.segment(b, len);
          proximal += (wb - gl).square().sum();
          gb += mu * (wb - gl);
        }
        stepper.Step(b, gb, wb);
        auto ob = out.segment(b, len);
        ob = wb.cast<float>();
        // x * 0 is 0 for finite x and NaN for an infinity or NaN: a vectorised test, unlike
        // isFinite().all(), which Eigen runs one element at a time.
        finite = finite && (ob * 0.0f).sum() == 0.0f;
        gb.setZero();
      }
      loss += 0.5 * mu * proximal;
      if (!finite || !std::isfinite(loss)) {
        return fail(absl::StrCat("parameters became non-finite in epoch ", epoch + 1, ", step ",
                                 report.steps));
      }
      epoch_loss_sum += loss;
      ++epoch_batches;
    }
    report.final_epoch_loss = epoch_loss_sum / static_cast<double>(epoch_batches);
  }
  return report;
}

absl::StatusOr<TrainingReport> TrainSgd(const Model& model, const Dataset& data,
                                        const TrainingOptions& options, std::span<float> params) {
  return Train(model, data, options, params);
}

}  // namespace tessera::client
