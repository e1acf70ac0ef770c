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
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/csv.h"

namespace tessera::v1 {
class DatasetSpec;
}  // namespace tessera::v1

namespace tessera::client {

struct PreparedTable {
  CsvTable table;
  // Per IMPUTE_MEAN entry (proto::ImputedMeanEntries order): the cells that were missing
  // on the rows kept, and filled.
  std::vector<uint64_t> imputed_cells;
};

// `imputed_means`: Standardization.imputed_means (one per IMPUTE_MEAN entry), or empty in
// round 0, before they are known: IMPUTE_MEAN cells are then filled with 0 and counted, so
// that the column's sums are those of its present cells.
absl::StatusOr<PreparedTable> PrepareTable(const CsvTable& raw, const v1::DatasetSpec& dataset,
                                           std::span<const double> imputed_means,
                                           const std::string& source);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_PREPARE_H_
