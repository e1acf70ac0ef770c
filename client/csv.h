// Strict CSV loading for local datasets: one header row, comma separated, numbers only,
// no quoting, '\n' or "\r\n" line ends, no missing values. Every error names the file
// and, where it applies, the line and column:
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
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::client {

struct CsvTable {
  std::vector<std::string> header;
  size_t num_rows = 0;
  // Row-major: value (r, c) is values[r * header.size() + c].
  std::vector<double> values;
};

// NOT_FOUND / PERMISSION_DENIED if the file cannot be read; INVALID_ARGUMENT for an
// empty file, a header with an empty or duplicate name, a file with no data rows, a
// ragged row, or a cell that is not a finite number.
absl::StatusOr<CsvTable> LoadCsv(const std::string& path);

// Same rules on text already in memory; `source_name` prefixes errors.
absl::StatusOr<CsvTable> ParseCsv(const std::string& text, const std::string& source_name);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CSV_H_
