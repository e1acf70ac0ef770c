#include "proto/analytics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "proto/task.pb.h"

namespace tessera::proto {
namespace {

using common::FieldError;
using Int128 = __int128;

constexpr size_t kMomentValues = 9;  // count, S (4 parts), Q (4 parts)
constexpr int kFractionBits = 40;    // the analytics stage's fixed point

// ---- Double-double arithmetic (Dekker, Knuth; as in Hida, Li & Bailey's QD) ----
struct DoubleDouble {
  double hi = 0, lo = 0;
};

DoubleDouble TwoSum(double a, double b) {
  const double s = a + b;
  const double bb = s - a;
  return {s, (a - (s - bb)) + (b - bb)};
}

// Requires |a| >= |b| (or a = 0).
DoubleDouble QuickTwoSum(double a, double b) {
  const double s = a + b;
  return {s, b - (s - a)};
}

DoubleDouble TwoProduct(double a, double b) {
  const double p = a * b;
  return {p, std::fma(a, b, -p)};
}

DoubleDouble Add(DoubleDouble x, DoubleDouble y) {
  DoubleDouble s = TwoSum(x.hi, y.hi);
  const DoubleDouble t = TwoSum(x.lo, y.lo);
  s.lo += t.hi;
  s = QuickTwoSum(s.hi, s.lo);
  s.lo += t.lo;
  return QuickTwoSum(s.hi, s.lo);
}

DoubleDouble Negate(DoubleDouble x) { return {-x.hi, -x.lo}; }

DoubleDouble Multiply(DoubleDouble x, DoubleDouble y) {
  DoubleDouble p = TwoProduct(x.hi, y.hi);
  p.lo += x.hi * y.lo + x.lo * y.hi;
  return QuickTwoSum(p.hi, p.lo);
}

DoubleDouble Divide(DoubleDouble x, double d) {
  const double q1 = x.hi / d;
  const DoubleDouble r = Add(x, Negate(TwoProduct(q1, d)));
  return QuickTwoSum(q1, r.hi / d);
}

// ---- Exact transport of a sum through the vector ----

// A site's double-double value v as (q + residual) 2^-40: q an integer, residual in about
// [-1/2, 1/2]. False if |v| >= 2^76 (then q's top part would not be an exact double;
// no WIDE encoding holds such sums anyway).
bool ToFixedPoint(DoubleDouble v, Int128* q, double* residual) {
  const double h = std::ldexp(v.hi, kFractionBits);
  const double l = std::ldexp(v.lo, kFractionBits);
  if (!(std::fabs(h) < 0x1p116)) return false;
  const double whole = std::trunc(h);
  // h - whole is exact (the fractional part of a double); r is (h - whole) + l exactly.
  const DoubleDouble r = TwoSum(h - whole, l);
  const double k = std::nearbyint(r.hi);
  *q = static_cast<Int128>(whole) + static_cast<Int128>(k);
  *residual = (r.hi - k) + r.lo;  // r.hi - k is exact
  return true;
}

// (q + residual) 2^-40 as four doubles: q = a 2^64 + b 2^32 + c with b, c in [0, 2^32)
// gives hi = a 2^24, mid = b 2^-8, lo = c 2^-40, each on its own grid; the residual goes in
// units of 2^-40, so that the encoding's 2^-40 step resolves it to 2^-80. Each
// part's sum over up to 2^14 sites is an exact double and exact in the fixed point.
void SplitFixedPoint(Int128 q, double residual, double* out) {
  const Int128 a = q >> 64;  // floor division (arithmetic shift)
  const Int128 rest = q - a * (static_cast<Int128>(1) << 64);
  const Int128 b = rest >> 32;
  const Int128 c = rest - (b << 32);
  out[0] = std::ldexp(static_cast<double>(a), 64 - kFractionBits);
  out[1] = std::ldexp(static_cast<double>(b), 32 - kFractionBits);
  out[2] = std::ldexp(static_cast<double>(c), -kFractionBits);
  out[3] = residual;
}

// The summed parts back to a double-double.
absl::StatusOr<DoubleDouble> JoinFixedPoint(const double* parts) {
  const double a = std::ldexp(parts[0], kFractionBits - 64);
  const double b = std::ldexp(parts[1], kFractionBits - 32);
  const double c = std::ldexp(parts[2], kFractionBits);
  if (!(std::fabs(a) < 0x1p60 && std::fabs(b) < 0x1p60 && std::fabs(c) < 0x1p60)) {
    return absl::InvalidArgumentError("analytics: a summed value is out of range");
  }
  const Int128 q = static_cast<Int128>(std::llround(a)) * (static_cast<Int128>(1) << 64) +
                   static_cast<Int128>(std::llround(b)) * (static_cast<Int128>(1) << 32) +
                   static_cast<Int128>(std::llround(c));
  const double hi = static_cast<double>(q);
  const double lo = static_cast<double>(q - static_cast<Int128>(hi));
  const DoubleDouble whole =
      QuickTwoSum(std::ldexp(hi, -kFractionBits), std::ldexp(lo, -kFractionBits));
  return Add(whole, {std::ldexp(parts[3], -kFractionBits), 0.0});
}

// ---- Spec helpers ----

bool IsValidColumnName(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s) {
    if (c == ',' || c == '"' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

size_t QueryLength(const v1::AnalyticsSpec::Query& query) {
  const size_t edges = static_cast<size_t>(query.histogram_edges_size());
  return kMomentValues + (edges >= 2 ? edges + 1 : 0);
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
    const v1::AnalyticsSpec::Query& query = spec.queries(i);
    const std::string path = absl::StrCat(prefix, "queries[", i, "]");
    if (query.column().empty()) {
      errors.push_back({path + ".column", "required"});
    } else if (!IsValidColumnName(query.column())) {
      errors.push_back(
          {path + ".column", "must be a CSV header name (at most 256 bytes, no commas or quotes)"});
    }
    const int edges = query.histogram_edges_size();
    if (edges == 1 || edges > kMaxHistogramEdges) {
      errors.push_back(
          {path + ".histogram_edges", absl::StrCat("must hold 2..", kMaxHistogramEdges, " edges")});
    }
    for (int j = 0; j < edges; ++j) {
      const double e = query.histogram_edges(j);
      const std::string edge_path = absl::StrCat(path, ".histogram_edges[", j, "]");
      if (!std::isfinite(e)) {
        errors.push_back({edge_path, "must be finite"});
      } else if (j > 0 && std::isfinite(query.histogram_edges(j - 1)) &&
                 e <= query.histogram_edges(j - 1)) {
        errors.push_back({edge_path, "edges must be strictly increasing"});
      }
    }
  }
  if (spec.has_filter()) {
    const v1::AnalyticsSpec::Filter& filter = spec.filter();
    if (filter.column().empty()) {
      errors.push_back({prefix + "filter.column", "required"});
    } else if (!IsValidColumnName(filter.column())) {
      errors.push_back({prefix + "filter.column",
                        "must be a CSV header name (at most 256 bytes, no commas or quotes)"});
    }
    if (filter.op() == v1::AnalyticsSpec::Filter::OP_UNSPECIFIED ||
        !v1::AnalyticsSpec::Filter::Op_IsValid(filter.op())) {
      errors.push_back({prefix + "filter.op", "required (EQ, NE, LT, LE, GT or GE)"});
    }
    if (!std::isfinite(filter.value())) {
      errors.push_back({prefix + "filter.value", "must be finite"});
    }
  }
  if (spec.min_cohort() > 10000) {
    errors.push_back({prefix + "min_cohort", "must be at most 10000"});
  }
  return errors;
}

size_t AnalyticsLength(const v1::AnalyticsSpec& spec) {
  size_t length = 0;
  for (const auto& query : spec.queries()) length += QueryLength(query);
  return length;
}

absl::StatusOr<std::vector<double>> EncodeAnalytics(const v1::AnalyticsSpec& spec,
                                                    const std::vector<std::string>& header,
                                                    std::span<const double> values,
                                                    size_t num_rows) {
  const size_t width = header.size();
  if (values.size() != num_rows * width) {
    return absl::InvalidArgumentError(absl::StrCat("analytics: ", values.size(), " values for ",
                                                   num_rows, " rows of ", width, " columns"));
  }
  std::unordered_map<std::string, size_t> column_index;
  for (size_t c = 0; c < width; ++c) column_index.emplace(header[c], c);  // first wins
  auto find_column = [&](const std::string& name) -> absl::StatusOr<size_t> {
    auto it = column_index.find(name);
    if (it == column_index.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("analytics: column '", name, "' is not in the table's header"));
    }
    return it->second;
  };

  // Rows the filter keeps.
  std::vector<size_t> kept;
  if (spec.has_filter()) {
    auto column = find_column(spec.filter().column());
    if (!column.ok()) return column.status();
    for (size_t r = 0; r < num_rows; ++r) {
      const double x = values[r * width + *column];
      if (!std::isfinite(x)) {
        return absl::InvalidArgumentError(absl::StrCat("analytics: row ", r, " of column '",
                                                       spec.filter().column(), "' is not finite"));
      }
      if (Keep(x, spec.filter().op(), spec.filter().value())) kept.push_back(r);
    }
  } else {
    kept.resize(num_rows);
    for (size_t r = 0; r < num_rows; ++r) kept[r] = r;
  }

  std::vector<double> out(AnalyticsLength(spec), 0.0);
  double* block = out.data();
  for (const auto& query : spec.queries()) {
    auto column = find_column(query.column());
    if (!column.ok()) return column.status();
    const auto& edges = query.histogram_edges();
    const bool histogram = edges.size() >= 2;
    double* bins = block + kMomentValues;
    const size_t num_bins = histogram ? static_cast<size_t>(edges.size()) - 1 : 0;
    DoubleDouble sum, sum_of_squares;
    for (size_t r : kept) {
      const double x = values[r * width + *column];
      if (!std::isfinite(x)) {
        return absl::InvalidArgumentError(
            absl::StrCat("analytics: row ", r, " of column '", query.column(), "' is not finite"));
      }
      sum = Add(sum, {x, 0.0});
      sum_of_squares = Add(sum_of_squares, TwoProduct(x, x));
      if (histogram) {
        if (x < edges[0]) {
          bins[num_bins] += 1;  // below
        } else if (x > edges[edges.size() - 1]) {
          bins[num_bins + 1] += 1;  // above
        } else {
          const size_t upper =
              static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin());
          bins[std::min(upper - 1, num_bins - 1)] += 1;  // the last bin is closed
        }
      }
    }
    block[0] = static_cast<double>(kept.size());
    Int128 q_sum = 0, q_squares = 0;
    double r_sum = 0, r_squares = 0;
    if (!ToFixedPoint(sum, &q_sum, &r_sum) ||
        !ToFixedPoint(sum_of_squares, &q_squares, &r_squares)) {
      return absl::InvalidArgumentError(
          absl::StrCat("analytics: the sums of column '", query.column(), "' are too large"));
    }
    SplitFixedPoint(q_sum, r_sum, block + 1);
    SplitFixedPoint(q_squares, r_squares, block + 5);
    block += QueryLength(query);
  }
  return out;
}

absl::StatusOr<std::vector<QueryResult>> DecodeAnalytics(const v1::AnalyticsSpec& spec,
                                                         std::span<const double> summed) {
  const size_t length = AnalyticsLength(spec);
  if (summed.size() != length) {
    return absl::InvalidArgumentError(
        absl::StrCat("analytics: expected ", length, " values, got ", summed.size()));
  }
  for (size_t i = 0; i < summed.size(); ++i) {
    if (!std::isfinite(summed[i])) {
      return absl::InvalidArgumentError(absl::StrCat("analytics: value ", i, " is not finite"));
    }
  }
  std::vector<QueryResult> results;
  results.reserve(static_cast<size_t>(spec.queries_size()));
  const double* block = summed.data();
  for (const auto& query : spec.queries()) {
    QueryResult result;
    result.column = query.column();
    const double n = block[0];
    if (n < 0 || n != std::floor(n)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "analytics: the count of column '", query.column(), "' is not a non-negative integer"));
    }
    auto sum = JoinFixedPoint(block + 1);
    if (!sum.ok()) return sum.status();
    auto sum_of_squares = JoinFixedPoint(block + 5);
    if (!sum_of_squares.ok()) return sum_of_squares.status();
    result.count = n;
    result.sum = sum->hi;
    if (n == 0) {
      result.mean = std::numeric_limits<double>::quiet_NaN();
      result.variance = std::numeric_limits<double>::quiet_NaN();
    } else {
      const DoubleDouble mean = Divide(*sum, n);
      // n * variance = Q - S * mean, in double-double: the cancellation happens at ~2^-106.
      const DoubleDouble m2 = Add(*sum_of_squares, Negate(Multiply(*sum, mean)));
      result.mean = mean.hi;
      result.variance = std::max(0.0, Divide(m2, n).hi);
    }
    if (query.histogram_edges_size() >= 2) {
      const size_t num_bins = static_cast<size_t>(query.histogram_edges_size()) - 1;
      result.edges.assign(query.histogram_edges().begin(), query.histogram_edges().end());
      result.histogram.assign(block + kMomentValues, block + kMomentValues + num_bins);
      result.below = block[kMomentValues + num_bins];
      result.above = block[kMomentValues + num_bins + 1];
    }
    results.push_back(std::move(result));
    block += QueryLength(query);
  }
  return results;
}

}  // namespace tessera::proto
