// A task's data preparation (DatasetSpec.prepare, proto/preparation.h) applied to a site's
// table, the same way at every site and in `tessera simulate`'s central check: missing
// cells refused, dropped, imputed or marked; categorical columns' declared levels one-hot
// encoded against the reference (the first level); LOG / LOG1P / SQRT transforms and
// clipping. The result is a table with the file's columns (prepared ones replaced by their
// prepared values) and the derived columns ("<column>=<level>", "<column>:missing")
// appended, without the dropped rows, from which SelectColumns takes the task's columns as
// from any file.
//
// Order per cell: missing? (NaN: empty, NA, text in a numeric column; a categorical cell
// that is empty or NA) → the entry's rule; present → transform (its domain checked) → clip.
// A row is dropped when any DROP_ROW column of it is missing; every other rule then runs on
// the rows kept.
//
// Errors (INVALID_ARGUMENT, "<source>: column 'c' ..."): a prepared column not in the file,
// a missing cell under MISSING_REFUSE, a cell outside the transform's domain, a categorical
// cell that is no declared level (the message names the column and the first line, never
// the cell), no row left. The site declines DATA_ERROR naming the task's column.
//
// Thread-compatible: pure functions.
#ifndef TESSERA_CLIENT_PREPARE_H_
#define TESSERA_CLIENT_PREPARE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/csv.h"

namespace tessera::v1 {
class DatasetSpec;
class Standardization;
}  // namespace tessera::v1

namespace tessera::client {

struct PreparedTable {
  CsvTable table;
  // What round 0 appends to the statistics (proto::ImputationCountLength values): per
  // IMPUTE_MEAN entry its present cells on the rows kept, then per IMPUTE_MODE entry its
  // present cells of each level.
  std::vector<double> imputation_counts;
};

// `pooled`: the task's pooled statistics with their imputed means and modes, or null in
// round 0, before they are known: missing IMPUTE_MEAN cells are then 0 and missing
// IMPUTE_MODE cells in no level, so that the columns' sums are those of their present
// cells. FAILED_PRECONDITION if `pooled` does not carry one mean (mode) per IMPUTE_MEAN
// (IMPUTE_MODE) entry, or a mode outside the entry's levels.
absl::StatusOr<PreparedTable> PrepareTable(const CsvTable& raw, const v1::DatasetSpec& dataset,
                                           const v1::Standardization* pooled,
                                           const std::string& source);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_PREPARE_H_
