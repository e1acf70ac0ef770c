// Local training: mini-batch SGD on any Model, deterministic for a given seed.
#ifndef TESSERA_CLIENT_TRAINER_H_
#define TESSERA_CLIENT_TRAINER_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "client/dataset.h"
#include "client/model.h"

namespace tessera::client {

struct TrainingOptions {
  uint32_t epochs = 1;
  uint32_t batch_size = 32;
  double learning_rate = 0.1;
  double l2 = 0;
  // Seeds the row shuffling of each epoch; same seed, same data, same result.
  uint64_t seed = 0;
};

struct TrainingReport {
  uint64_t num_examples = 0;  // rows of the dataset
  uint64_t steps = 0;         // SGD steps taken
  double final_epoch_loss = 0;  // mean of the batch losses over the last epoch
};

// Runs `options.epochs` passes of shuffled mini-batch SGD over `data`, updating `params`
// in place. INVALID_ARGUMENT for empty data, a params size that does not match the model,
// zero batch size or a non-positive learning rate; FAILED_PRECONDITION if the loss becomes
// non-finite (params are then left as they were before the call).
absl::StatusOr<TrainingReport> TrainSgd(const Model& model, const Dataset& data,
                                        const TrainingOptions& options, std::span<float> params);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_TRAINER_H_
