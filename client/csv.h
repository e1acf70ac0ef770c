// CSV loading for local datasets: one header row, comma separated, no quoting, '\n' or
// "\r\n" line ends. Strict (the default): numbers only, no missing values. With
// CellPolicy::kMarkNonNumeric a cell that is not a finite number (empty, NA, text, inf) is
// kept as NaN and counted per column instead, so that a file may carry columns a task
// never uses (notes, codes, missing values); whoever selects columns refuses those with
// such cells (client/dataset.h SelectColumns). Every error names the file and, where it
// applies, the line and column:
//   "site1/train.csv: file is empty (no header row)"
//   "site1/train.csv:14: row has 29 cells, the header has 31"
//   "site1/train.csv:14:3: 'abc' is not a number"
// Error messages never quote more than the offending cell.
//
// Thread-safe (no shared state).
#ifndef TESSERA_CLIENT_CSV_H_
#define TESSERA_CLIENT_CSV_H_

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::client {

struct CsvTable {
  std::vector<std::string> header;
  size_t num_rows = 0;
  // Row-major: value (r, c) is values[r * header.size() + c].
  std::vector<double> values;
  // Per column (header order), with CellPolicy::kMarkNonNumeric: the cells that are not
  // finite numbers (NaN in `values`) and the file line of the first (0 if none). Empty
  // for a strict load.
  std::vector<size_t> non_numeric_cells;
  std::vector<size_t> first_non_numeric_line;
  // With CellPolicy::kMarkNonNumeric: the text of each such cell (empty for an empty one),
  // by its index in `values` — what a categorical column's levels are matched against
  // (client/prepare.h).
  std::unordered_map<size_t, std::string> cell_text;
};

enum class CellPolicy {
  kStrict,          // a cell that is not a finite number is an error
  kMarkNonNumeric,  // kept as NaN, counted per column
};

// NOT_FOUND / PERMISSION_DENIED if the file cannot be read; INVALID_ARGUMENT for an
// empty file, a header with an empty or duplicate name, a file with no data rows, a
// ragged row, or (kStrict) a cell that is not a finite number.
absl::StatusOr<CsvTable> LoadCsv(const std::string& path, CellPolicy cells = CellPolicy::kStrict);

// Same rules on text already in memory; `source_name` prefixes errors.
// The rows r of `table` with rows[r] == keep, in file order (a validation split,
// proto/validation_split.h). Non-numeric cells are recounted over them;
// first_non_numeric_line stays a line of the file (data row r is line r + 2: a file has no
// empty lines). `rows` has one entry per row of `table`.
CsvTable SelectTableRows(const CsvTable& table, const std::vector<bool>& rows, bool keep);

absl::StatusOr<CsvTable> ParseCsv(const std::string& text, const std::string& source_name,
                                  CellPolicy cells = CellPolicy::kStrict);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CSV_H_
