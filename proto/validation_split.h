// A training task's validation split and best-round selection (TrainingSpec.
// validation_fraction, TrainingSpec.early_stopping): which rows of a site's training file
// are validation rows, which validation metrics may select a round and in which direction,
// and the selection rule the coordinator applies after each evaluated round. Both sides and
// the simulator decide with these functions; docs/research.md, "Validation and early
// stopping", is the user's description.
//
// Pure functions; thread-safe.
#ifndef TESSERA_PROTO_VALIDATION_SPLIT_H_
#define TESSERA_PROTO_VALIDATION_SPLIT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/proto_text.h"
#include "proto/task.pb.h"

namespace tessera::proto {

// The largest validation_fraction a task may ask for.
inline constexpr double kMaxValidationFraction = 0.5;
// EarlyStopping.patience when the message is given without one, and its upper bound.
inline constexpr uint32_t kDefaultPatience = 5;
inline constexpr uint32_t kMaxPatience = 1000;

// True for a training task whose validation_fraction is > 0.
bool HasValidationSplit(const v1::TaskSpec& spec);

// The number of validation rows of a file of `num_rows` data rows: round(fraction *
// num_rows), halves rounded up.
size_t ValidationRowCount(size_t num_rows, double fraction);

// For each of the file's `num_rows` data rows (0-based, before any preparation), true when
// it is a validation row: the ValidationRowCount rows with the smallest keys
// SplitMix64(seed ^ SplitMix64(row).Next()).Next() (common/splitmix64.h), ties by row
// index. Depends on nothing but its arguments, so every stage and the simulator's
// central check see the same rows.
std::vector<bool> ValidationMask(size_t num_rows, double fraction, uint64_t seed);

// The validation metrics a model reports that may select a round (proto/evaluation.h's
// names, without the counts): binary loss, log_loss, accuracy, auc; multiclass loss,
// log_loss, accuracy, macro_f1 (and auc with two classes); regression loss, rmse, r2;
// survival c_index. Empty for a model kind evaluation does not know.
std::vector<std::string> SelectableMetrics(const v1::ModelSpec& model);

// True for loss, log_loss and rmse; false for the others (higher is better).
bool LowerIsBetter(const std::string& metric);

// The metric that selects the round: early_stopping.metric when set, else loss (c_index
// for COX_PH).
std::string SelectionMetric(const v1::TaskSpec& spec);

// Validates training.validation_fraction and training.early_stopping of a training task
// (ValidateTaskSpec calls it); errors name the field path.
void ValidateValidationSplit(const v1::TaskSpec& spec, std::vector<common::FieldError>* errors);

// Fills in early_stopping.metric and .patience when the message is given.
void ApplyValidationSplitDefaults(v1::TaskSpec* spec);

// One evaluated round's value of the selection metric (a NaN value never improves).
struct RoundValue {
  uint32_t round = 0;
  double value = 0;
};

struct Selection {
  // The selected round: the last round whose value improved on the best value before it
  // by more than min_delta (lower or higher as LowerIsBetter says; the first evaluated
  // round with a number always does), and that value; 0 when no round has a number.
  uint32_t round = 0;
  double value = 0;
  // With early stopping: true when `patience` evaluated rounds came after the selected
  // one (none of them improved): training stops.
  bool stop = false;
};

// The selection over `rounds` (in round order) for `spec`'s metric, min_delta and patience
// (no early stopping: `stop` is never set).
Selection SelectRound(const v1::TaskSpec& spec, std::span<const RoundValue> rounds);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_VALIDATION_SPLIT_H_
