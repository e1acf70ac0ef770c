// Private to proto/analytics*.cc: the vector layout of the analytics stage, double-double
// arithmetic, and the exact fixed-point transport of a sum (the "Precision" section of
// proto/analytics.h says why and how precise). Pure functions; thread-safe.
#ifndef TESSERA_PROTO_INTERNAL_ANALYTICS_SUMS_H_
#define TESSERA_PROTO_INTERNAL_ANALYTICS_SUMS_H_

#include <cstddef>

#include "absl/status/statusor.h"

namespace tessera::v1 {
class AnalyticsSpec_Query;
}  // namespace tessera::v1

namespace tessera::proto::internal {

// ---- Layout (proto/analytics.h) ----
// The main cell: [count, withheld, S_hi, S_mid, S_lo, S_res, Q_hi, Q_mid, Q_lo, Q_res].
inline constexpr size_t kMainValues = 10;
inline constexpr size_t kCount = 0;
inline constexpr size_t kWithheld = 1;
inline constexpr size_t kSum = 2;           // 4 parts
inline constexpr size_t kSumOfSquares = 6;  // 4 parts
inline constexpr size_t kCellValues = 2;    // a histogram cell: [count, withheld]
inline constexpr int kFractionBits = 40;    // the analytics stage's fixed point

// Histogram cells of a query: bins, below, above (0 without a histogram).
size_t HistogramCells(const v1::AnalyticsSpec_Query& query);
// Values of one query in the vector.
size_t QueryLength(const v1::AnalyticsSpec_Query& query);
// Statistics of one query (proto/analytics.h): count, S, Q, then its histogram cells.
inline constexpr size_t kStatCount = 0;
inline constexpr size_t kStatSum = 1;
inline constexpr size_t kStatSumOfSquares = 2;
inline constexpr size_t kStatCells = 3;
size_t QueryStatistics(const v1::AnalyticsSpec_Query& query);

// Delta_S = max(|lo|, |hi|) and Delta_Q = Delta_S^2 of the query's value_range: what one
// row can change S and Q by, and the scales of the noised transport. 0 without a
// value_range.
double SumSensitivity(const v1::AnalyticsSpec_Query& query);
double SquareSensitivity(const v1::AnalyticsSpec_Query& query);

// ---- Double-double arithmetic (Dekker, Knuth; as in Hida, Li & Bailey's QD) ----
struct DoubleDouble {
  double hi = 0, lo = 0;
};

DoubleDouble TwoProduct(double a, double b);
DoubleDouble Add(DoubleDouble x, DoubleDouble y);
DoubleDouble Negate(DoubleDouble x);
DoubleDouble Multiply(DoubleDouble x, DoubleDouble y);
DoubleDouble Divide(DoubleDouble x, double d);

// ---- Exact transport of a sum through the vector ----

// Largest |value| a site sends for S or Q: 2^76 - 2^-40 (the top part of the fixed point
// must stay an exact double).
inline constexpr double kMaxSiteSum = 0x1p76 - 0x1p-40;

// Writes a site's value v into out[0..3] (hi, mid, lo, res). A value beyond +-kMaxSiteSum
// (or not finite) is saturated to +-kMaxSiteSum, its sign taken from v.hi or, when v.hi is
// NaN (an overflowed accumulation), from `sign_hint`. Never fails.
void SplitSum(DoubleDouble v, double sign_hint, double* out);

// The summed parts back to a double-double. INVALID_ARGUMENT if a part is beyond the range
// any cohort's honest sum can reach.
absl::StatusOr<DoubleDouble> JoinSum(const double* parts);

}  // namespace tessera::proto::internal

#endif  // TESSERA_PROTO_INTERNAL_ANALYTICS_SUMS_H_
