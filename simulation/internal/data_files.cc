#include "simulation/internal/data_files.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/idx.h"
#include "common/files.h"
#include "common/status.h"
#include "proto/preparation.h"

namespace tessera::simulation::internal {

std::string ToCsv(const client::CsvTable& table, std::span<const size_t> rows) {
  std::string out;
  for (size_t j = 0; j < table.header.size(); ++j) {
    if (j > 0) out.push_back(',');
    out += table.header[j];
  }
  out.push_back('\n');
  const size_t width = table.header.size();
  for (size_t r : rows) {
    for (size_t j = 0; j < width; ++j) {
      if (j > 0) out.push_back(',');
      // A cell that was not a number goes back as it was (a categorical level, text, or
      // empty), which the site's loader marks again.
      const size_t index = r * width + j;
      const double v = table.values[index];
      if (std::isnan(v)) {
        auto text = table.cell_text.find(index);
        out += text == table.cell_text.end() ? std::string("NA") : text->second;
      } else {
        out += absl::StrFormat("%.17g", v);
      }
    }
    out.push_back('\n');
  }
  return out;
}

int ColumnIndex(const client::CsvTable& table, const std::string& name) {
  auto it = std::find(table.header.begin(), table.header.end(), name);
  return it == table.header.end() ? -1 : static_cast<int>(it - table.header.begin());
}

std::vector<common::FieldError> CheckColumns(const v1::TaskSpec& spec,
                                             const client::CsvTable& table,
                                             const std::string& file) {
  std::vector<common::FieldError> errors;
  // `numeric`: the column is trained on, so every cell must be a number (analytics skips
  // the rows whose cell is not).
  auto need = [&](const std::string& column, const std::string& path, bool numeric) {
    if (column.empty()) return;
    const int index = ColumnIndex(table, column);
    if (index < 0) {
      errors.push_back({path, absl::StrCat("column '", column, "' is not in ", file)});
      return;
    }
    const auto c = static_cast<size_t>(index);
    if (numeric && c < table.non_numeric_cells.size() && table.non_numeric_cells[c] > 0) {
      errors.push_back({path, absl::StrCat("column '", column, "' of ", file, " has ",
                                           table.non_numeric_cells[c],
                                           " cells that are not numbers (the first on line ",
                                           table.first_non_numeric_line[c], ")")});
    }
  };
  const v1::DatasetSpec& ds = spec.dataset();
  const bool trains = !spec.has_analytics();
  // A prepared column's cells are the sites' to handle (missing ones refused, dropped,
  // imputed or marked; a categorical column's levels): it must only be in the file.
  auto need_file_column = [&](const std::string& name, const std::string& path) {
    const std::optional<proto::PreparedName> resolved = proto::ResolveName(ds, name);
    const std::string column = resolved.has_value() ? resolved->column : name;
    need(column, path, trains && proto::PreparationOf(ds, column) == nullptr);
  };
  for (int i = 0; i < ds.features_size(); ++i) {
    need_file_column(ds.features(i), absl::StrCat("dataset.features[", i, "]"));
  }
  need_file_column(ds.label(), "dataset.label");
  need_file_column(ds.event(), "dataset.event");
  need_file_column(spec.model().glm().offset(), "model.glm.offset");
  need_file_column(spec.model().glm().weights(), "model.glm.weights");
  if (spec.has_analytics()) {
    for (int i = 0; i < spec.analytics().queries_size(); ++i) {
      need(spec.analytics().queries(i).column(), absl::StrCat("analytics.queries[", i, "].column"),
           false);
    }
    if (spec.analytics().has_filter()) {
      need(spec.analytics().filter().column(), "analytics.filter.column", false);
    }
  }
  return errors;
}

absl::StatusOr<std::vector<size_t>> ReadTestRows(const std::string& path, size_t num_rows) {
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
  std::vector<size_t> rows;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    uint64_t row = 0;
    if (!absl::SimpleAtoi(line, &row) || row >= num_rows) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": not a data-row index below ", num_rows));
    }
    rows.push_back(static_cast<size_t>(row));
  }
  std::sort(rows.begin(), rows.end());
  if (std::adjacent_find(rows.begin(), rows.end()) != rows.end()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a row index is listed twice"));
  }
  if (rows.empty() || rows.size() >= num_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the test rows must be some, but not all, of the file's rows"));
  }
  return rows;
}

absl::StatusOr<IdxData> LoadIdxTable(const std::string& dir) {
  IdxData out;
  for (const char* part : {"train", "t10k"}) {
    ASSIGN_OR_RETURN(client::Dataset data,
                     client::LoadIdxDataset(absl::StrCat(dir, "/", part, "-images-idx3-ubyte.gz"),
                                            absl::StrCat(dir, "/", part, "-labels-idx1-ubyte.gz")));
    if (out.table.header.empty()) {
      for (size_t j = 0; j < data.num_features; ++j)
        out.table.header.push_back(absl::StrCat("px", j));
      out.table.header.push_back("label");
    } else if (out.table.header.size() != data.num_features + 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, ": training and test images differ in size"));
    }
    for (size_t r = 0; r < data.num_rows; ++r) {
      out.table.values.insert(out.table.values.end(),
                              data.x.begin() + static_cast<long>(r * data.num_features),
                              data.x.begin() + static_cast<long>((r + 1) * data.num_features));
      out.table.values.push_back(data.y[r]);
    }
    out.table.num_rows += data.num_rows;
    if (out.train_rows == 0) out.train_rows = out.table.num_rows;
  }
  return out;
}

}  // namespace tessera::simulation::internal
