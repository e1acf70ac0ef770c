#include "client/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace tessera::client {
namespace {

// A missing-column error lists at most this many of the file's column names.
constexpr size_t kMaxListedColumns = 10;

std::string ListColumns(const std::vector<std::string>& header) {
  const size_t shown = std::min(header.size(), kMaxListedColumns);
  std::string out = absl::StrJoin(header.begin(), header.begin() + shown, ", ");
  if (header.size() > shown) {
    absl::StrAppend(&out, ", ... (", header.size(), " columns in all)");
  }
  return out;
}

}  // namespace

absl::StatusOr<Dataset> SelectColumns(const CsvTable& table,
                                      const std::vector<std::string>& features,
                                      const std::string& label, const std::string& source_name) {
  return SelectColumns(table, features, label, /*event=*/"", source_name);
}

absl::StatusOr<Dataset> SelectColumns(const CsvTable& table,
                                      const std::vector<std::string>& features,
                                      const std::string& label, const std::string& event,
                                      const std::string& source_name) {
  const size_t width = table.header.size();
  if (table.values.size() != table.num_rows * width) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": table has ", table.values.size(),
                                                   " values, expected ", table.num_rows, " rows x ",
                                                   width, " columns"));
  }
  absl::flat_hash_map<std::string, size_t> index;
  index.reserve(width);
  for (size_t c = 0; c < width; ++c) index.emplace(table.header[c], c);

  auto find = [&](const std::string& name) -> absl::StatusOr<size_t> {
    auto it = index.find(name);
    if (it == index.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": column '", name,
                       "' not found (the file has: ", ListColumns(table.header), ")"));
    }
    return it->second;
  };

  std::vector<size_t> feature_columns;
  feature_columns.reserve(features.size());
  for (const std::string& name : features) {
    absl::StatusOr<size_t> column = find(name);
    if (!column.ok()) return column.status();
    feature_columns.push_back(*column);
  }
  absl::StatusOr<size_t> label_column = find(label);
  if (!label_column.ok()) return label_column.status();
  size_t event_column = 0;
  if (!event.empty()) {
    if (event == label) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": column '", event, "' cannot be both time and event"));
    }
    absl::StatusOr<size_t> column = find(event);
    if (!column.ok()) return column.status();
    event_column = *column;
  }

  auto clean = [&](size_t column) -> absl::Status {
    if (column < table.non_numeric_cells.size() && table.non_numeric_cells[column] > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": column '", table.header[column], "' has ",
                       table.non_numeric_cells[column],
                       " cells that are not finite numbers (empty, NA or text; the first on line ",
                       table.first_non_numeric_line[column], ")"));
    }
    return absl::OkStatus();
  };
  for (size_t column : feature_columns) RETURN_IF_ERROR(clean(column));
  RETURN_IF_ERROR(clean(*label_column));
  if (!event.empty()) RETURN_IF_ERROR(clean(event_column));

  Dataset data;
  data.num_rows = table.num_rows;
  data.num_features = features.size();
  data.x.resize(data.num_rows * data.num_features);
  data.y.resize(data.num_rows);
  if (!event.empty()) data.event.resize(data.num_rows);
  for (size_t r = 0; r < data.num_rows; ++r) {
    const double* in = &table.values[r * width];
    double* out = data.x.data() + r * data.num_features;
    for (size_t j = 0; j < data.num_features; ++j) out[j] = in[feature_columns[j]];
    data.y[r] = in[*label_column];
    if (!event.empty()) data.event[r] = in[event_column];
  }
  return data;
}

Dataset SelectRows(const Dataset& data, std::span<const size_t> rows) {
  const size_t d = data.num_features;
  Dataset out;
  out.num_rows = rows.size();
  out.num_features = d;
  out.x.resize(rows.size() * d);
  out.y.resize(rows.size());
  if (!data.event.empty()) out.event.resize(rows.size());
  if (!data.weight.empty()) out.weight.resize(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t r = rows[i];
    std::copy_n(data.x.begin() + static_cast<std::ptrdiff_t>(r * d), d,
                out.x.begin() + static_cast<std::ptrdiff_t>(i * d));
    out.y[i] = data.y[r];
    if (!data.event.empty()) out.event[i] = data.event[r];
    if (!data.weight.empty()) out.weight[i] = data.weight[r];
  }
  return out;
}

LocalStatistics ComputeStatistics(const Dataset& data) {
  const size_t d = data.num_features;
  LocalStatistics stats;
  stats.num_rows = data.num_rows;
  stats.sums.assign(d, 0.0);
  stats.sums_of_squares.assign(d, 0.0);
  for (size_t r = 0; r < data.num_rows; ++r) {
    const double* row = data.x.data() + r * d;
    for (size_t j = 0; j < d; ++j) {
      stats.sums[j] += row[j];
      stats.sums_of_squares[j] += row[j] * row[j];
    }
  }
  return stats;
}

absl::Status Standardize(std::span<const double> mean, std::span<const double> stddev,
                         Dataset* data) {
  const size_t d = data->num_features;
  if (mean.size() != d || stddev.size() != d) {
    return absl::InvalidArgumentError(absl::StrCat("standardization has ", mean.size(),
                                                   " means and ", stddev.size(),
                                                   " standard deviations for ", d, " features"));
  }
  for (size_t j = 0; j < d; ++j) {
    if (!std::isfinite(mean[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat("mean of feature ", j, " is ", mean[j], "; it must be finite"));
    }
    if (!(std::isfinite(stddev[j]) && stddev[j] > 0)) {
      return absl::InvalidArgumentError(absl::StrCat("standard deviation of feature ", j, " is ",
                                                     stddev[j],
                                                     "; it must be positive and finite"));
    }
  }
  // Multiplying by the reciprocal would be faster but would not round like the division
  // the recipe (and the other sites) use.
  for (size_t r = 0; r < data->num_rows; ++r) {
    double* row = data->x.data() + r * d;
    for (size_t j = 0; j < d; ++j) row[j] = (row[j] - mean[j]) / stddev[j];
  }
  return absl::OkStatus();
}

absl::Status CheckBinaryLabels(const Dataset& data, const std::string& source_name) {
  for (size_t r = 0; r < data.num_rows; ++r) {
    const double y = data.y[r];
    if (y != 0.0 && y != 1.0) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": data row ", r,
                                                     " (0-based, header not counted) has label ", y,
                                                     "; expected 0 or 1"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckClassLabels(const Dataset& data, uint32_t num_classes,
                              const std::string& source_name) {
  const double limit = static_cast<double>(num_classes);
  for (size_t r = 0; r < data.num_rows; ++r) {
    const double y = data.y[r];
    if (!(y >= 0 && y < limit && y == std::floor(y))) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": data row ", r,
                                                     " (0-based, header not counted) has label ", y,
                                                     "; expected a class 0..", num_classes - 1));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSurvivalData(const Dataset& data, const std::string& source_name) {
  if (data.event.size() != data.num_rows) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": survival data needs an event ",
                                                   "indicator per row; got ", data.event.size(),
                                                   " for ", data.num_rows, " rows"));
  }
  for (size_t r = 0; r < data.num_rows; ++r) {
    if (data.event[r] != 0.0 && data.event[r] != 1.0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": data row ", r, " (0-based, header not counted) has event ",
                       data.event[r], "; expected 0 (censored) or 1 (event)"));
    }
    if (!(data.y[r] >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": data row ", r,
                                                     " (0-based, header not counted) has time ",
                                                     data.y[r], "; expected a time >= 0"));
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::client
