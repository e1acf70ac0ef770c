// The spec's validation and the site's side of analytics (EncodeAnalytics); the
// coordinator's release rule is in analytics_release.cc.
#include "proto/analytics.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "proto/internal/analytics_sums.h"
#include "proto/task.pb.h"

namespace tessera::proto {
namespace {

using common::FieldError;
using internal::DoubleDouble;

bool IsValidColumnName(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s) {
    if (c == ',' || c == '"' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

void ValidateValueRange(const v1::AnalyticsSpec::Query& query, const std::string& path,
                        std::vector<FieldError>* errors) {
  if (query.value_range_size() == 0) return;
  const std::string range_path = path + ".value_range";
  if (query.value_range_size() != 2) {
    errors->push_back({range_path, "must hold exactly two values, [lo, hi]"});
    return;
  }
  const double lo = query.value_range(0), hi = query.value_range(1);
  if (!(std::fabs(lo) <= kMaxValueRangeMagnitude && std::fabs(hi) <= kMaxValueRangeMagnitude)) {
    errors->push_back({range_path, absl::StrCat("values must be finite, at most ",
                                                kMaxValueRangeMagnitude, " in magnitude")});
  } else if (!(lo < hi)) {
    errors->push_back({range_path, "lo must be below hi"});
  } else if (std::max(std::fabs(lo), std::fabs(hi)) < kMinValueRangeMagnitude) {
    errors->push_back({range_path, absl::StrCat("lo or hi must be at least ",
                                                kMinValueRangeMagnitude, " in magnitude")});
  }
}

void ValidateQuery(const v1::AnalyticsSpec::Query& query, const std::string& path,
                   std::vector<FieldError>* errors) {
  if (query.column().empty()) {
    errors->push_back({path + ".column", "required"});
  } else if (!IsValidColumnName(query.column())) {
    errors->push_back(
        {path + ".column", "must be a CSV header name (at most 256 bytes, no commas or quotes)"});
  }
  const int edges = query.histogram_edges_size();
  if (edges == 1 || edges > kMaxHistogramEdges) {
    errors->push_back({path + ".histogram_edges",
                       absl::StrCat("must hold 2..", kMaxHistogramEdges, " edges (at most ",
                                    kMaxHistogramEdges - 1, " bins)")});
  }
  for (int j = 0; j < edges; ++j) {
    const double e = query.histogram_edges(j);
    const std::string edge_path = absl::StrCat(path, ".histogram_edges[", j, "]");
    if (!std::isfinite(e)) {
      errors->push_back({edge_path, "must be finite"});
    } else if (j > 0 && std::isfinite(query.histogram_edges(j - 1)) &&
               e <= query.histogram_edges(j - 1)) {
      errors->push_back({edge_path, "edges must be strictly increasing"});
    }
  }
  ValidateValueRange(query, path, errors);
}

void ValidateFilter(const v1::AnalyticsSpec::Filter& filter, const std::string& prefix,
                    std::vector<FieldError>* errors) {
  if (filter.column().empty()) {
    errors->push_back({prefix + "filter.column", "required"});
  } else if (!IsValidColumnName(filter.column())) {
    errors->push_back({prefix + "filter.column",
                       "must be a CSV header name (at most 256 bytes, no commas or quotes)"});
  }
  if (filter.op() == v1::AnalyticsSpec::Filter::OP_UNSPECIFIED ||
      !v1::AnalyticsSpec::Filter::Op_IsValid(filter.op())) {
    errors->push_back({prefix + "filter.op", "required (EQ, NE, LT, LE, GT or GE)"});
  }
  if (!std::isfinite(filter.value())) {
    errors->push_back({prefix + "filter.value", "must be finite"});
  }
}

bool Keep(double x, v1::AnalyticsSpec::Filter::Op op, double value) {
  switch (op) {
    case v1::AnalyticsSpec::Filter::EQ:
      return x == value;
    case v1::AnalyticsSpec::Filter::NE:
      return x != value;
    case v1::AnalyticsSpec::Filter::LT:
      return x < value;
    case v1::AnalyticsSpec::Filter::LE:
      return x <= value;
    case v1::AnalyticsSpec::Filter::GT:
      return x > value;
    case v1::AnalyticsSpec::Filter::GE:
      return x >= value;
    default:
      return false;  // not reached for a valid spec
  }
}

// A site's table as EncodeAnalytics receives it.
struct TableView {
  const std::vector<std::string>& header;
  std::span<const double> values;
  size_t num_rows;
  double at(size_t row, size_t column) const { return values[row * header.size() + column]; }
};

// Header positions of the columns the spec reads: the filter's (when a filter is set) and
// one per query.
struct Columns {
  std::optional<size_t> filter;
  std::vector<size_t> queries;
};

absl::StatusOr<Columns> FindColumns(const v1::AnalyticsSpec& spec,
                                    const std::vector<std::string>& header) {
  std::unordered_map<std::string, size_t> index;
  for (size_t c = 0; c < header.size(); ++c) index.emplace(header[c], c);  // first wins
  auto find = [&](const std::string& name) -> absl::StatusOr<size_t> {
    auto it = index.find(name);
    if (it == index.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("analytics: column '", name, "' is not in the table's header"));
    }
    return it->second;
  };
  Columns out;
  if (spec.has_filter()) {
    absl::StatusOr<size_t> c = find(spec.filter().column());
    if (!c.ok()) return c.status();
    out.filter = *c;
  }
  for (const auto& query : spec.queries()) {
    absl::StatusOr<size_t> c = find(query.column());
    if (!c.ok()) return c.status();
    out.queries.push_back(*c);
  }
  return out;
}

// The rows every query uses: finite in every column the spec reads, kept by the filter.
// Rows with a non-finite value are counted in `skips` (per column, in the order the
// spec first reads them).
std::vector<size_t> UsableKeptRows(const v1::AnalyticsSpec& spec, const TableView& table,
                                   const Columns& columns, AnalyticsSkips* skips) {
  std::vector<size_t> read;  // distinct columns, first mention order
  if (columns.filter) read.push_back(*columns.filter);
  for (size_t c : columns.queries) {
    if (std::find(read.begin(), read.end(), c) == read.end()) read.push_back(c);
  }
  std::vector<size_t> non_finite(read.size(), 0);
  std::vector<size_t> kept;
  for (size_t r = 0; r < table.num_rows; ++r) {
    bool usable = true;
    for (size_t i = 0; i < read.size(); ++i) {
      if (!std::isfinite(table.at(r, read[i]))) {
        ++non_finite[i];
        usable = false;
      }
    }
    if (!usable) {
      ++skips->rows;
      continue;
    }
    if (columns.filter &&
        !Keep(table.at(r, *columns.filter), spec.filter().op(), spec.filter().value())) {
      continue;
    }
    kept.push_back(r);
  }
  for (size_t i = 0; i < read.size(); ++i) {
    if (non_finite[i] > 0) skips->columns.emplace_back(table.header[read[i]], non_finite[i]);
  }
  return kept;
}

// One query's sums over a site's kept rows, each value clipped into the query's
// value_range when it has one (the histogram bins the value itself).
struct QuerySums {
  DoubleDouble sum, sum_of_squares;
  double plain_sum = 0;       // only the direction of an overflowing sum
  std::vector<double> cells;  // bins, below, above
};

QuerySums SumQuery(const v1::AnalyticsSpec::Query& query, const TableView& table, size_t column,
                   const std::vector<size_t>& kept) {
  const auto& edges = query.histogram_edges();
  const size_t cells = internal::HistogramCells(query);
  const size_t num_bins = cells == 0 ? 0 : cells - 2;
  const bool clip = query.value_range_size() == 2;
  QuerySums out;
  out.cells.assign(cells, 0.0);
  for (size_t r : kept) {
    const double x = table.at(r, column);
    const double v = clip ? std::clamp(x, query.value_range(0), query.value_range(1)) : x;
    out.sum = internal::Add(out.sum, {v, 0.0});
    out.sum_of_squares = internal::Add(out.sum_of_squares, internal::TwoProduct(v, v));
    out.plain_sum += v;
    if (cells == 0) continue;
    if (x < edges[0]) {
      out.cells[num_bins] += 1;
    } else if (x > edges[edges.size() - 1]) {
      out.cells[num_bins + 1] += 1;
    } else {
      const size_t upper =
          static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin());
      out.cells[std::min(upper - 1, num_bins - 1)] += 1;  // the last bin is closed
    }
  }
  return out;
}

// One query's block of a site that holds min_cell_size or more of the kept rows (or none).
void WriteQuery(const QuerySums& sums, size_t kept, uint32_t min_cell_size, double* block) {
  block[internal::kCount] = static_cast<double>(kept);
  internal::SplitSum(sums.sum, sums.plain_sum, block + internal::kSum);
  internal::SplitSum(sums.sum_of_squares, 1.0, block + internal::kSumOfSquares);
  double* cell = block + internal::kMainValues;
  for (size_t i = 0; i < sums.cells.size(); ++i, cell += internal::kCellValues) {
    if (sums.cells[i] >= 1 && sums.cells[i] < min_cell_size) {
      cell[1] = 1;  // withheld: count stays 0
    } else {
      cell[0] = sums.cells[i];
    }
  }
}

// One query's noised block: `noise` holds the query's statistics' noise (count, S, Q,
// cells). Nothing is withheld; S and Q travel scaled by 1/Delta.
void WriteNoisedQuery(const v1::AnalyticsSpec::Query& query, const QuerySums& sums, size_t kept,
                      const double* noise, double* block) {
  block[internal::kCount] = static_cast<double>(kept) + noise[internal::kStatCount];
  const DoubleDouble sum = internal::Divide(
      internal::Add(sums.sum, {noise[internal::kStatSum], 0.0}), internal::SumSensitivity(query));
  const DoubleDouble sum_of_squares = internal::Divide(
      internal::Add(sums.sum_of_squares, {noise[internal::kStatSumOfSquares], 0.0}),
      internal::SquareSensitivity(query));
  internal::SplitSum(sum, sums.plain_sum + noise[internal::kStatSum], block + internal::kSum);
  internal::SplitSum(sum_of_squares, 1.0, block + internal::kSumOfSquares);
  double* cell = block + internal::kMainValues;
  for (size_t i = 0; i < sums.cells.size(); ++i, cell += internal::kCellValues) {
    cell[0] = sums.cells[i] + noise[internal::kStatCells + i];
  }
}

// The columns and the usable kept rows of a site's table, checked against the spec.
struct Prepared {
  Columns columns;
  std::vector<size_t> kept;
};

absl::StatusOr<Prepared> Prepare(const v1::AnalyticsSpec& spec, const TableView& table,
                                 AnalyticsSkips* skipped) {
  const size_t width = table.header.size();
  if (table.values.size() != table.num_rows * width) {
    return absl::InvalidArgumentError(absl::StrCat("analytics: ", table.values.size(),
                                                   " values for ", table.num_rows, " rows of ",
                                                   width, " columns"));
  }
  absl::StatusOr<Columns> columns = FindColumns(spec, table.header);
  if (!columns.ok()) return columns.status();
  AnalyticsSkips skips;
  Prepared out{*std::move(columns), {}};
  out.kept = UsableKeptRows(spec, table, out.columns, &skips);
  if (skipped != nullptr) *skipped = std::move(skips);
  return out;
}

}  // namespace

std::vector<FieldError> ValidateAnalyticsSpec(const v1::AnalyticsSpec& spec,
                                              const std::string& path_prefix) {
  const std::string prefix = path_prefix.empty() ? "" : path_prefix + ".";
  std::vector<FieldError> errors;
  if (spec.queries_size() == 0) {
    errors.push_back({prefix + "queries", "at least one query is required"});
  } else if (spec.queries_size() > kMaxAnalyticsQueries) {
    errors.push_back(
        {prefix + "queries", absl::StrCat("at most ", kMaxAnalyticsQueries, " queries")});
  }
  for (int i = 0; i < spec.queries_size(); ++i) {
    ValidateQuery(spec.queries(i), absl::StrCat(prefix, "queries[", i, "]"), &errors);
  }
  if (spec.has_filter()) ValidateFilter(spec.filter(), prefix, &errors);
  if (spec.min_cohort() > 10000) {
    errors.push_back({prefix + "min_cohort", "must be at most 10000"});
  }
  if (spec.min_cell_size() > kMaxMinCellSize) {
    errors.push_back({prefix + "min_cell_size", absl::StrCat("must be 1..", kMaxMinCellSize)});
  }
  return errors;
}

uint32_t MinCellSize(const v1::AnalyticsSpec& spec) {
  return spec.min_cell_size() == 0 ? kDefaultMinCellSize : spec.min_cell_size();
}

size_t AnalyticsLength(const v1::AnalyticsSpec& spec) {
  size_t length = 0;
  for (const auto& query : spec.queries()) length += internal::QueryLength(query);
  return length;
}

absl::StatusOr<std::vector<double>> EncodeAnalytics(const v1::AnalyticsSpec& spec,
                                                    uint32_t min_cell_size,
                                                    const std::vector<std::string>& header,
                                                    std::span<const double> values, size_t num_rows,
                                                    AnalyticsSkips* skipped) {
  const TableView table{header, values, num_rows};
  absl::StatusOr<Prepared> prepared = Prepare(spec, table, skipped);
  if (!prepared.ok()) return prepared.status();
  const std::vector<size_t>& kept = prepared->kept;

  std::vector<double> out(AnalyticsLength(spec), 0.0);
  double* block = out.data();
  // 1..k-1 kept rows: every query is withheld whole (its main cell is), nothing else sent.
  const bool withhold_all = !kept.empty() && kept.size() < min_cell_size;
  for (int q = 0; q < spec.queries_size(); ++q) {
    const v1::AnalyticsSpec::Query& query = spec.queries(q);
    if (withhold_all) {
      block[internal::kWithheld] = 1;
      const size_t cells = internal::HistogramCells(query);
      for (size_t i = 0; i < cells; ++i) {
        block[internal::kMainValues + i * internal::kCellValues + 1] = 1;
      }
    } else {
      const QuerySums sums =
          SumQuery(query, table, prepared->columns.queries[static_cast<size_t>(q)], kept);
      WriteQuery(sums, kept.size(), min_cell_size, block);
    }
    block += internal::QueryLength(query);
  }
  return out;
}

absl::StatusOr<std::vector<double>> EncodeNoisedAnalytics(const v1::AnalyticsSpec& spec,
                                                          std::span<const double> noise,
                                                          const std::vector<std::string>& header,
                                                          std::span<const double> values,
                                                          size_t num_rows,
                                                          AnalyticsSkips* skipped) {
  if (noise.size() != AnalyticsStatisticsLength(spec)) {
    return absl::InvalidArgumentError(absl::StrCat("analytics: ", noise.size(),
                                                   " noise values for ",
                                                   AnalyticsStatisticsLength(spec), " statistics"));
  }
  for (double z : noise) {
    if (!std::isfinite(z)) return absl::InvalidArgumentError("analytics: noise must be finite");
  }
  for (const auto& query : spec.queries()) {
    if (!(internal::SumSensitivity(query) > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("analytics: noise needs the value_range of column '", query.column(), "'"));
    }
  }
  const TableView table{header, values, num_rows};
  absl::StatusOr<Prepared> prepared = Prepare(spec, table, skipped);
  if (!prepared.ok()) return prepared.status();

  std::vector<double> out(AnalyticsLength(spec), 0.0);
  double* block = out.data();
  const double* query_noise = noise.data();
  for (int q = 0; q < spec.queries_size(); ++q) {
    const v1::AnalyticsSpec::Query& query = spec.queries(q);
    const QuerySums sums =
        SumQuery(query, table, prepared->columns.queries[static_cast<size_t>(q)], prepared->kept);
    WriteNoisedQuery(query, sums, prepared->kept.size(), query_noise, block);
    block += internal::QueryLength(query);
    query_noise += internal::QueryStatistics(query);
  }
  return out;
}

}  // namespace tessera::proto
