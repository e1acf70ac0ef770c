#include "proto/internal/analytics_sums.h"

#include <algorithm>
#include <cmath>

#include "proto/task.pb.h"

namespace tessera::proto::internal {
namespace {

using Int128 = __int128;

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

// (q + residual) 2^-40 as four doubles: q = a 2^64 + b 2^32 + c with b, c in [0, 2^32)
// gives hi = a 2^24, mid = b 2^-8, lo = c 2^-40, each on its own grid; the residual goes in
// units of 2^-40, so that the encoding's 2^-40 step resolves it to 2^-80. Each part's sum
// over up to 2^14 sites is an exact double and exact in the fixed point.
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

}  // namespace

size_t HistogramCells(const v1::AnalyticsSpec::Query& query) {
  const size_t edges = static_cast<size_t>(query.histogram_edges_size());
  return edges >= 2 ? edges + 1 : 0;  // edges - 1 bins, below, above
}

size_t QueryLength(const v1::AnalyticsSpec::Query& query) {
  return kMainValues + kCellValues * HistogramCells(query);
}

size_t QueryStatistics(const v1::AnalyticsSpec::Query& query) {
  return kStatCells + HistogramCells(query);
}

double SumSensitivity(const v1::AnalyticsSpec::Query& query) {
  if (query.value_range_size() != 2) return 0;
  return std::max(std::fabs(query.value_range(0)), std::fabs(query.value_range(1)));
}

double SquareSensitivity(const v1::AnalyticsSpec::Query& query) {
  const double m = SumSensitivity(query);
  return m * m;
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

void SplitSum(DoubleDouble v, double sign_hint, double* out) {
  // v as (q + residual) 2^-40: q an integer, residual in about [-1/2, 1/2].
  const double h = std::ldexp(v.hi, kFractionBits);
  const double l = std::ldexp(v.lo, kFractionBits);
  if (!(std::fabs(h) < 0x1p116) || !std::isfinite(l)) {
    // Saturate: the largest q whose top part is still an exact double.
    const bool negative = std::isnan(h) ? std::signbit(sign_hint) : std::signbit(h);
    const Int128 largest = (static_cast<Int128>(1) << 116) - 1;
    SplitFixedPoint(negative ? -largest : largest, 0.0, out);
    return;
  }
  const double whole = std::trunc(h);
  // h - whole is exact (the fractional part of a double); r is (h - whole) + l exactly.
  const DoubleDouble r = TwoSum(h - whole, l);
  const double k = std::nearbyint(r.hi);
  const Int128 q = static_cast<Int128>(whole) + static_cast<Int128>(k);
  SplitFixedPoint(q, (r.hi - k) + r.lo, out);  // r.hi - k is exact
}

absl::StatusOr<DoubleDouble> JoinSum(const double* parts) {
  const double a = std::ldexp(parts[0], kFractionBits - 64);
  const double b = std::ldexp(parts[1], kFractionBits - 32);
  const double c = std::ldexp(parts[2], kFractionBits);
  if (!(std::fabs(a) < 0x1p60 && std::fabs(b) < 0x1p60 && std::fabs(c) < 0x1p60 &&
        std::fabs(parts[3]) < 0x1p60)) {
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

}  // namespace tessera::proto::internal
