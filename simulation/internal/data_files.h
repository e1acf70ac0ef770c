// The simulator's data files (simulation.cc): the researcher's CSV (or IDX directory) read
// as one table, the columns a task needs checked against it, the test-row list, and the
// sites' files written back from rows of the table. Internal to tessera_simulation.
#ifndef TESSERA_SIMULATION_INTERNAL_DATA_FILES_H_
#define TESSERA_SIMULATION_INTERNAL_DATA_FILES_H_

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/csv.h"
#include "common/proto_text.h"
#include "proto/task.pb.h"

namespace tessera::simulation::internal {

// Rows of `table` (indices) as a CSV with the table's header; a cell that was not a number
// goes back as its text (NA when it had none), which a site's loader marks again.
std::string ToCsv(const client::CsvTable& table, std::span<const size_t> rows);

// The index of column `name`, or -1.
int ColumnIndex(const client::CsvTable& table, const std::string& name);

// Every column the spec names must be in the file, and a column it trains on without
// preparing it must hold numbers only: errors name the field path, the column, the count and
// the first line.
std::vector<common::FieldError> CheckColumns(const v1::TaskSpec& spec,
                                             const client::CsvTable& table,
                                             const std::string& file);

// A file of 0-based data-row indices: some, but not all, of the file's `num_rows` rows;
// sorted. INVALID_ARGUMENT naming the line of a bad index, a repeat, none or all.
absl::StatusOr<std::vector<size_t>> ReadTestRows(const std::string& path, size_t num_rows);

struct IdxData {
  client::CsvTable table;
  size_t train_rows = 0;
};

// The training then the test images of an MNIST-style directory as one table.
absl::StatusOr<IdxData> LoadIdxTable(const std::string& dir);

}  // namespace tessera::simulation::internal

#endif  // TESSERA_SIMULATION_INTERNAL_DATA_FILES_H_
