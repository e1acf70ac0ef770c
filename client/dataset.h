// A site's local dataset in model form: the task's feature columns, in the task's order,
// and its label, picked by header name from a CSV table.
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
  std::vector<double> y;
};

// INVALID_ARGUMENT "<source>: column 'foo' not found (the file has: a, b, ...)" for a
// missing column (the listing is cut after 10 names).
absl::StatusOr<Dataset> SelectColumns(const CsvTable& table, const std::vector<std::string>& features,
                                      const std::string& label, const std::string& source_name);

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

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_DATASET_H_
