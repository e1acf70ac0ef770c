// Local training: shuffled mini-batch SGD, heavy-ball momentum or Adam on any Model, with
// an optional FedProx proximal term; deterministic for a given seed on a given machine.
#ifndef TESSERA_CLIENT_TRAINER_H_
#define TESSERA_CLIENT_TRAINER_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/dataset.h"
#include "client/model.h"

namespace tessera::v1 {
class TrainingSpec;
}  // namespace tessera::v1

namespace tessera::client {

// With g the mini-batch gradient (plus l2 and proximal terms) at step t = 1, 2, ...:
//   kSgd       w -= learning_rate * g
//   kMomentum  v = momentum * v + g;  w -= learning_rate * v          (v_0 = 0)
//   kAdam      m = beta1 * m + (1 - beta1) * g;  s = beta2 * s + (1 - beta2) * g^2;
//              w -= learning_rate * (m / (1 - beta1^t)) / (sqrt(s / (1 - beta2^t)) + epsilon)
//              (Kingma & Ba 2015 with bias correction; the first step is
//              learning_rate * g / (|g| + epsilon), about learning_rate * sign(g))
// Optimiser state starts at zero on every call.
enum class Optimizer { kSgd, kMomentum, kAdam };

struct TrainingOptions {
  uint32_t epochs = 1;
  uint32_t batch_size = 32;
  double learning_rate = 0.1;
  double l2 = 0;
  // Seeds the row shuffling of each epoch; same seed, same data, same result.
  uint64_t seed = 0;
  Optimizer optimizer = Optimizer::kSgd;
  double momentum = 0.9;       // kMomentum: [0, 1)
  double adam_beta1 = 0.9;     // kAdam: [0, 1)
  double adam_beta2 = 0.999;   // kAdam: [0, 1)
  double adam_epsilon = 1e-8;  // kAdam: > 0
  // FedProx (Li et al. 2020): adds 0.5 * proximal_mu * ||w - w_global||^2 to every batch
  // loss, w_global being the parameters at the start of the call (all of them, biases
  // included). >= 0; 0 is plain local training.
  double proximal_mu = 0;
};

// The options a TrainingSpec asks for: local_epochs, batch_size, learning_rate, optimizer
// (OPTIMIZER_UNSPECIFIED is SGD), momentum, adam_*, proximal_mu, with the defaults that
// task.proto documents for fields left at 0 (momentum 0.9, beta1 0.9, beta2 0.999,
// epsilon 1e-8, 1 epoch, batch 32). l2 and seed are the caller's (they come from the
// work item); Train validates the ranges. INVALID_ARGUMENT for an optimizer value this
// build does not know.
absl::StatusOr<TrainingOptions> TrainingOptionsFromSpec(const v1::TrainingSpec& spec);

struct TrainingReport {
  uint64_t num_examples = 0;  // rows of the dataset
  uint64_t steps = 0;         // optimiser steps taken
  // Mean over the last epoch's batches of the objective each step minimised: mean loss
  // plus the l2 and proximal terms.
  double final_epoch_loss = 0;
};

// Runs `options.epochs` passes of shuffled mini-batch training over `data`, updating
// `params` in place (the steps are taken on a double copy, rounded to float for each
// gradient, so that many small steps are not lost to float rounding).
// INVALID_ARGUMENT for empty data, data that fails model.CheckData (shape, labels), a
// params size that does not match the model, zero batch size, a non-positive learning
// rate, a negative l2 or proximal_mu, or an optimiser coefficient out of range;
// FAILED_PRECONDITION if the loss or the parameters become non-finite (params are then
// left as they were before the call).
absl::StatusOr<TrainingReport> Train(const Model& model, const Dataset& data,
                                     const TrainingOptions& options, std::span<float> params);

// The same as Train (it honours options.optimizer too); the name predates the other
// optimisers.
absl::StatusOr<TrainingReport> TrainSgd(const Model& model, const Dataset& data,
                                        const TrainingOptions& options, std::span<float> params);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_TRAINER_H_
