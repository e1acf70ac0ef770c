// Federated analytics (v1::AnalyticsSpec in proto/task.proto): per query column, the
// count, sum, mean and population variance over the rows the filter keeps, and a
// histogram when edges are given, released only for cells of at least k rows. A site
// encodes its table into a vector of doubles (EncodeAnalytics); the coordinator sees only
// the vector summed over the cohort and applies the release rule to it
// (ReleaseAnalytics). Every entry is a plain sum over sites.
//
// Cells. A query's main cell is its count, sum S and sum of squares Q over the kept rows
// (mean and variance derive from it); with edges, each histogram bin, `below` and `above`
// is a cell of its own (a count). k = MinCellSize(spec) (task default 10; a site refuses a
// task whose k is below its own policy.min_cell_size).
//
// Layout, per query in spec order:
//   main cell:  [count, withheld, S_hi, S_mid, S_lo, S_res, Q_hi, Q_mid, Q_lo, Q_res]   10
//   then, with E >= 2 edges, E + 1 histogram cells, each [count, withheld]:
//               bin_0 .. bin_{E-2}, below, above                             2 (E + 1)
// Bins are [e_i, e_i+1), the last one closed; `below` counts x < e_0 and `above`
// x > e_{E-1}, so the histogram cells partition the main cell's rows. Every query carries
// its own main cell (all equal: one filter serves every query, and a row is used by every
// query or by none).
//
// Local withholding (site). A site holding between 1 and k-1 rows of a cell contributes 0
// for every value of that cell and 1 in its `withheld` entry; if that is the main cell,
// it withholds the whole query (every histogram cell zero and marked withheld too). A cell
// of 0 rows is sent as 0, not withheld. So no site ever sends a sum, sum of squares or
// count over 1..k-1 of its rows, whatever the coordinator does with the vector.
//
// Release (coordinator). Per query: the main cell is suppressed if a site withheld it or
// its count is below k; then the whole query is suppressed. Otherwise each histogram cell
// is suppressed if a site withheld it or its count is below k (0 included: an empty cell
// says "nobody here"); then, if any is suppressed, the total of the suppressed cells can be
// derived as count - (sum of the released cells), and while that total is below k (0
// included) and a cell is still released, the released cell with the smallest count
// (ties: the lowest index) is suppressed too. Mean and variance come only from a released
// main cell. A suppressed value is never put in the result.
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
// Values never make the site fail. A row with a non-finite value in any column the spec
// reads (the filter's or a query's) is a row the site cannot use: it is left out of every
// cell of every query, and nothing in the vector says so. A site's |S| or |Q| beyond
// 2^76 - 2^-40 is saturated to it (so is an overflowing sum); the cohort's sums must fit
// the encoding's range (a 4-limb WIDE segment: about +-2^(4 b - 41) with
// b = 31 - ceil(log2 sites) bits per limb, e.g. 2^43 for 1000 sites, 2^59 for 100), which
// saturates beyond it.
//
// Pure functions; thread-safe.
#ifndef TESSERA_PROTO_ANALYTICS_H_
#define TESSERA_PROTO_ANALYTICS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto_text.h"

namespace tessera::v1 {
class AnalyticsSpec;
}  // namespace tessera::v1

namespace tessera::proto {

inline constexpr int kMaxAnalyticsQueries = 1000;
inline constexpr int kMaxHistogramEdges = 101;  // 100 bins
inline constexpr uint32_t kDefaultMinCellSize = 10;
inline constexpr uint32_t kMaxMinCellSize = 1000000;

// Every error in `spec`, each path prefixed by `path_prefix` ("analytics" gives
// "analytics.queries[2].histogram_edges[3]"; an empty prefix gives "queries[2]..."):
// 1..1000 queries; each column a CSV header name (non-empty, at most 256 bytes, no comma,
// quote or control character); edges, when given, 2..101 finite and strictly increasing
// values; a filter, when set, with a column, a known op (not OP_UNSPECIFIED) and a finite
// value; min_cohort at most 10000; min_cell_size at most 1000000 (0 = unset: the default
// applies). Empty means valid.
std::vector<common::FieldError> ValidateAnalyticsSpec(const v1::AnalyticsSpec& spec,
                                                      const std::string& path_prefix);

// k in force: spec.min_cell_size(), or kDefaultMinCellSize when unset (0).
uint32_t MinCellSize(const v1::AnalyticsSpec& spec);

// Values in the vector of a (valid) spec.
size_t AnalyticsLength(const v1::AnalyticsSpec& spec);

// What a site left out, for its own log only (counts and column names, never values).
struct AnalyticsSkips {
  // Rows left out because a column the spec reads is not finite in them.
  size_t rows = 0;
  // Per column the spec reads (first mention order), rows whose value there is not finite;
  // columns without such rows are not listed.
  std::vector<std::pair<std::string, size_t>> columns;
};

// Client side: from a site's table, `header` naming its columns and `values` holding
// num_rows x header.size() values row-major, the site's vector, withholding every cell of
// which it holds 1..min_cell_size-1 rows (min_cell_size <= 1: none). Preconditions: `spec`
// is valid; min_cell_size is the task's k (MinCellSize). INVALID_ARGUMENT only for the
// schema: a query or filter column missing from the header (naming it) or a size mismatch;
// never for a value. `skipped`, when given, receives the rows left out.
absl::StatusOr<std::vector<double>> EncodeAnalytics(const v1::AnalyticsSpec& spec,
                                                    uint32_t min_cell_size,
                                                    const std::vector<std::string>& header,
                                                    std::span<const double> values, size_t num_rows,
                                                    AnalyticsSkips* skipped = nullptr);

// The main cell of a released query.
struct MainCell {
  double count = 0, sum = 0, mean = 0, variance = 0;  // population variance
};

// One query's answer: each cell either released (a value) or suppressed (nullopt).
struct QueryRelease {
  std::string column;
  std::optional<MainCell> main;
  // The query's edges (empty without a histogram); bins[i] counts [edges[i], edges[i+1]).
  std::vector<double> edges;
  std::vector<std::optional<double>> bins;
  std::optional<double> below, above;
  // How many of the query's cells are suppressed, the main cell and the histogram cells
  // (bins, below, above) together: all of them, 1 + (edges.size() + 1 with a histogram),
  // when the whole query is suppressed.
  uint32_t suppressed_cells = 0;
};

// Coordinator side: the release rule (above) applied to the cohort's summed vector, one
// result per query in spec order, k = MinCellSize(spec). INVALID_ARGUMENT on a wrong
// length, non-finite values, a count or withheld entry that is not a non-negative integer,
// or a released sum out of any honest cohort's range (all of which honest sites never
// produce). Suppressed cells' sums are never decoded.
absl::StatusOr<std::vector<QueryRelease>> ReleaseAnalytics(const v1::AnalyticsSpec& spec,
                                                           std::span<const double> summed);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_ANALYTICS_H_
