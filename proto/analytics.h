// Federated analytics (v1::AnalyticsSpec in proto/task.proto): per query column, the
// count, sum, mean and population variance over the rows the filter keeps, and a
// histogram when edges are given. A site encodes its table into a vector of doubles
// (EncodeAnalytics); the coordinator sees only the vector summed over the cohort and
// decodes it (DecodeAnalytics). Every entry is a plain sum over sites.
//
// Layout, per query in spec order:
//   [count, S_hi, S_mid, S_lo, S_res, Q_hi, Q_mid, Q_lo, Q_res]          9 values
//   then, with E >= 2 edges: [bin_0 .. bin_{E-2}, below, above]          E + 1 values
// S = sum of x and Q = sum of x^2 over the kept rows. Bins are [e_i, e_i+1), the last one
// closed; `below` counts x < e_0 and `above` x > e_{E-1}. Every query carries its own count
// (today all equal: one filter serves every query).
//
// Precision. The analytics stage is encoded as fixed point with 40 fractional bits: every
// value a site sends is rounded to a multiple of 2^-40, those add exactly, and the exact
// sum is rounded once to a double. Sent plainly, S and Q would lose their low bits twice
// (the 2^-40 step, then 53 bits for a large total), and the variance's Q/n - mean^2 cancels
// catastrophically when the mean is large against the spread; no shift common to all
// sites is known in advance (no statistics round precedes an analytics task). So:
//   1. each site accumulates S and Q in double-double arithmetic (x^2 exact by fma,
//      error-free sums), ~2^-104 relative;
//   2. writes each as (q + res) 2^-40, q an integer and res in [-1/2, 1/2], splits
//      q = a 2^64 + b 2^32 + c with b, c in [0, 2^32), and sends the four doubles
//      hi = a 2^24, mid = b 2^-8, lo = c 2^-40 and res (in units of 2^-40, so that the
//      encoding's 2^-40 step resolves it to 2^-80);
//   3. each part lies on a grid with few significant bits, so its sum over up to 2^14 sites
//      is an exact double and is exact in the fixed point; the coordinator rebuilds the
//      sum of the q exactly (128-bit integer) and of the residuals to 2^-80, i.e. S and Q
//      with at most ~2^-81 absolute error per site;
//   4. mean = S / n and variance = (Q - S mean) / n in double-double, rounded once.
// So the mean is correctly rounded up to ~2^-100 relative, and the variance has relative
// error ~2^-100 (1 + mean^2 / variance) + K 2^-81 (1 + 2 |mean|) / (n variance): within
// 1e-9 of the exact pooled value unless the mean exceeds the spread by ~10^10. Counts and
// histograms are integers and exact; sums of integer columns are exact. The plain path,
// which adds the doubles, gives the same results (its sums of the parts are exact too).
// (An encoding with fewer fractional bits f rounds `lo` and `res`: precision 2^-f per site.)
//
// Values must be finite; a site's |S| and |Q| must be below 2^76, and the cohort's sums must
// fit the encoding's range (a 4-limb WIDE segment:
// about +-2^(4 b - 41) with b = 31 - ceil(log2 sites) bits per limb, e.g. 2^43 for 1000
// sites, 2^59 for 100).
//
// Pure functions; thread-safe.
#ifndef TESSERA_PROTO_ANALYTICS_H_
#define TESSERA_PROTO_ANALYTICS_H_

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto_text.h"

namespace tessera::v1 {
class AnalyticsSpec;
}  // namespace tessera::v1

namespace tessera::proto {

inline constexpr int kMaxAnalyticsQueries = 1000;
inline constexpr int kMaxHistogramEdges = 1001;

// Every error in `spec`, each path prefixed by `path_prefix` ("analytics" gives
// "analytics.queries[2].histogram_edges[3]"; an empty prefix gives "queries[2]..."):
// 1..1000 queries; each column a CSV header name (non-empty, at most 256 bytes, no comma,
// quote or control character); edges, when given, 2..1001 finite and strictly increasing
// values; a filter, when set, with a column, a known op (not OP_UNSPECIFIED) and a finite
// value; min_cohort at most 10000. Empty means valid.
std::vector<common::FieldError> ValidateAnalyticsSpec(const v1::AnalyticsSpec& spec,
                                                      const std::string& path_prefix);

// Values in the vector of a (valid) spec.
size_t AnalyticsLength(const v1::AnalyticsSpec& spec);

// Client side: from a site's table, `header` naming its columns and `values` holding
// num_rows x header.size() values row-major. Precondition: `spec` is valid. INVALID_ARGUMENT
// naming the column if a query or filter column is missing from the header, on a size
// mismatch, or naming the row and column (never the value) of a non-finite value in a
// column the spec reads.
absl::StatusOr<std::vector<double>> EncodeAnalytics(const v1::AnalyticsSpec& spec,
                                                    const std::vector<std::string>& header,
                                                    std::span<const double> values,
                                                    size_t num_rows);

struct QueryResult {
  std::string column;
  double count = 0, sum = 0, mean = 0, variance = 0;  // population variance
  // Histogram counts (empty without edges).
  std::vector<double> edges, histogram;
  double below = 0, above = 0;
};

// Coordinator side: one result per query, in spec order. A query over no rows has count 0
// and NaN mean and variance. INVALID_ARGUMENT on a wrong length, non-finite values, or a
// count that is not a non-negative integer.
absl::StatusOr<std::vector<QueryResult>> DecodeAnalytics(const v1::AnalyticsSpec& spec,
                                                         std::span<const double> summed);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_ANALYTICS_H_
