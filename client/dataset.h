// A site's local dataset in model form: the task's feature columns, in the task's order,
// and its label (and, for survival data, its event indicator), picked by header name
// from a CSV table.
#ifndef TESSERA_CLIENT_DATASET_H_
#define TESSERA_CLIENT_DATASET_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/csv.h"

namespace tessera::client {

struct Dataset {
  size_t num_rows = 0;
  size_t num_features = 0;
  // Row-major features: x[r * num_features + j].
  std::vector<double> x;
  // The label of each row: 0/1 (binary), a class 0..K-1 (multiclass), a real value
  // (regression), or the time to event or censoring (survival).
  std::vector<double> y;
  // Survival data only (COX_PH), else empty: 1 = event observed at time y, 0 = censored.
  std::vector<double> event;
  // Training rows of a task with class weights (TrainingSpec.class_weights), else empty:
  // each row's weight in the training loss, the weight of its class. The classification
  // models' LossAndGradient multiply each row's loss (and gradient) by it, keeping the mean
  // over the rows' count; evaluation ignores it.
  std::vector<double> weight;
};

// INVALID_ARGUMENT "<source>: column 'foo' not found (the file has: a, b, ...)" for a
// missing column (the listing is cut after 10 names), and "<source>: column 'foo' has 3
// cells that are not finite numbers (empty, NA or text; the first on line 14)" for a
// selected column with such cells (CellPolicy::kMarkNonNumeric); other columns may have
// them. The message never quotes a cell.
absl::StatusOr<Dataset> SelectColumns(const CsvTable& table,
                                      const std::vector<std::string>& features,
                                      const std::string& label, const std::string& source_name);

// Same, and fills `event` from column `event` (survival data; time is `label`). With an
// empty `event` this is the overload above. Same errors; `event` may not be `label`.
absl::StatusOr<Dataset> SelectColumns(const CsvTable& table,
                                      const std::vector<std::string>& features,
                                      const std::string& label, const std::string& event,
                                      const std::string& source_name);

// The rows `rows` of `data` (indices < data.num_rows, repeats allowed), in that order,
// with their labels and events.
Dataset SelectRows(const Dataset& data, std::span<const size_t> rows);

// Per-feature sums and sums of squares over the rows (for the statistics round).
struct LocalStatistics {
  uint64_t num_rows = 0;
  std::vector<double> sums;
  std::vector<double> sums_of_squares;
};
LocalStatistics ComputeStatistics(const Dataset& data);

// x[:, j] = (x[:, j] - mean[j]) / stddev[j]. INVALID_ARGUMENT if the sizes do not match
// num_features or a stddev is not positive and finite.
absl::Status Standardize(std::span<const double> mean, std::span<const double> stddev,
                         Dataset* data);

// INVALID_ARGUMENT naming the first row whose label is not 0 or 1.
absl::Status CheckBinaryLabels(const Dataset& data, const std::string& source_name);

// INVALID_ARGUMENT naming the first row whose label is not an integer in
// 0..num_classes-1.
absl::Status CheckClassLabels(const Dataset& data, uint32_t num_classes,
                              const std::string& source_name);

// Survival data: INVALID_ARGUMENT if `event` does not have one value per row, or naming
// the first row whose event is not 0 or 1 or whose time (label) is negative.
absl::Status CheckSurvivalData(const Dataset& data, const std::string& source_name);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_DATASET_H_
