// How the simulator splits a researcher's file among simulated sites (simulation.h): the
// test rows of a seeded 80/20 split, and the training rows partitioned over the sites (IID,
// round robin, Dirichlet label skew, one site per value of a column, or per quantile bin of
// one). Pure functions of their arguments and the seed; thread-compatible.
#ifndef TESSERA_SIMULATION_PARTITION_H_
#define TESSERA_SIMULATION_PARTITION_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::simulation {

struct Partition {
  // kRoundRobin: the i-th training row (in file order, from 0) to site i mod K, unshuffled —
  // a partition another tool can reproduce (tests/research/reference/glm_reference.R).
  enum class Kind { kIid, kRoundRobin, kDirichlet, kByColumn, kByQuantile };
  Kind kind = Kind::kIid;
  // kDirichlet: the concentration alpha > 0 (smaller is more skewed).
  double alpha = 1.0;
  // kByColumn: one site per distinct value of this column; kByQuantile: one site per
  // quantile bin of it.
  std::string column;
  // kByColumn: a column with more distinct values than this is refused (a continuous
  // column would make as many one-row sites); kByQuantile bins it instead.
  uint32_t max_sites = 50;
  // kByQuantile: the number of bins, 2..1000.
  uint32_t bins = 0;
};

// "iid", "round-robin", "dirichlet:ALPHA", "by-column:NAME" or "by-quantile:NAME:K".
// INVALID_ARGUMENT naming the accepted forms.
absl::StatusOr<Partition> ParsePartition(const std::string& text);

// Training rows (indices into `labels`) per site. `labels`: the label of every row (used by
// kDirichlet, which needs class labels 0..K-1); `column`: the values of the partition column
// (kByColumn, kByQuantile). Seeded; every site gets at least one row or INVALID_ARGUMENT
// says why. kByColumn refuses a column with more than max_sites distinct values (naming the
// column and the count). kByQuantile: the training rows' values of the column, sorted, cut
// at the j/K quantiles (j = 1..K-1); a row goes to the bin of its value, so equal values
// share a site; INVALID_ARGUMENT if a bin is empty (too many equal values for K bins).
absl::StatusOr<std::vector<std::vector<size_t>>> PartitionRows(std::span<const size_t> train_rows,
                                                               std::span<const double> labels,
                                                               std::span<const double> column,
                                                               const Partition& partition,
                                                               uint32_t num_sites, uint64_t seed);

// The test rows of a seeded 80/20 split of `num_rows` rows: a fifth of them (rounded
// down), drawn without replacement from the seed, sorted.
std::vector<size_t> SeededTestRows(size_t num_rows, uint64_t seed);

}  // namespace tessera::simulation

#endif  // TESSERA_SIMULATION_PARTITION_H_
