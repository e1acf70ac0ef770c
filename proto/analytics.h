// Federated analytics (v1::AnalyticsSpec in proto/task.proto): per query column, the
// count, sum, mean and population variance over the rows the filter keeps, and a
// histogram when edges are given, released only for cells of at least k rows. A site
// encodes its table into a vector of doubles (EncodeAnalytics); the coordinator sees only
// the vector summed over the cohort and applies the release rule to it
// (ReleaseAnalytics). Every entry is a plain sum over sites. Optionally (the task's
// `privacy`) the answer is record-level differentially private instead: the sites add
// noise and withhold nothing (EncodeNoisedAnalytics; "Differential privacy" below).
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
// Local withholding (site; without noise). A site holding between 1 and k-1 rows of a
// cell contributes 0 for every value of that cell and 1 in its `withheld` entry; if that
// is the main cell, it withholds the whole query (every histogram cell zero and marked
// withheld too). A cell of 0 rows is sent as 0, not withheld. So no site ever sends a sum,
// sum of squares or count over 1..k-1 of its rows, whatever the coordinator does with the
// vector.
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
// Value ranges. A query may bound its column, value_range [lo, hi] (the task validator
// requires it on every query of a task with privacy and refuses it otherwise): every kept
// row's value x is then clipped into [lo, hi] before it enters S and Q (in both encodings);
// the histogram bins the row's own value (a row is in exactly one histogram cell whatever
// its value), and the filter's column needs no bound (it only selects rows).
//
// Differential privacy (record-level; the task's `privacy`, noise multiplier sigma).
// Neighbouring datasets differ by one row, added or removed, at one site. Statistics: the
// vector's values other than the withheld entries, with S and Q one statistic each (their
// four parts carry one number), in vector order: per query count, S, Q, then each
// histogram cell's count (AnalyticsStatisticsLength of them).
//   Sensitivity. Adding or removing one row changes statistic i by at most Delta_i: a
//   count by 1, S by max(|lo|, |hi|) (the clipped value), Q by max(lo^2, hi^2), and of a
//   query's histogram cells exactly one, by 1; a row that the filter drops, or with a
//   non-finite value in a column the spec reads, changes nothing. So one row changes at
//   most m = sum over queries of (3 + [the query has a histogram]) statistics
//   (AnalyticsRecordSensitivity). Every query carries the main cell's count again, so m
//   counts it once per query.
//   Mechanism. Scaled by 1/(sqrt(m) Delta_i), each of those m statistics moves by at most
//   1/sqrt(m), so the scaled vector moves by at most 1 in L2: its L2 sensitivity per row is
//   1. Each site adds to statistic i Gaussian noise of standard deviation
//   sigma sqrt(m) Delta_i / sqrt(t), t the session's threshold, independently (from its
//   CSPRNG: client/privacy.h); a sum over at least t honest sites carries, in the scaled
//   units, noise of standard deviation at least sigma in every coordinate: the Gaussian
//   mechanism with L2 sensitivity 1 and noise multiplier sigma, RDP alpha / (2 sigma^2),
//   charged to the task's epsilon like one model-update sum (dp/rdp.h,
//   coordinator/privacy_accountant.h). Everything the coordinator derives from it is
//   post-processing.
//   Sites. With noise no site withholds anything (withheld entries are 0 and carry no
//   noise): local withholding would make one row switch a whole cell's sums on or off, an
//   unbounded sensitivity. Sites with no kept rows send noise alone.
//   Transport (EncodeNoisedAnalytics). The noise is added to the site's S and Q in
//   double-double before they are split, and S and Q travel scaled: the parts carry
//   (S + noise) / Delta_S and (Q + noise) / Delta_Q. A site's scaled |S| and |Q| are then at
//   most its kept rows plus its noise (standard deviation sigma sqrt(m / t), at most
//   1e6 sqrt(4000) for a valid spec), whatever the range's magnitude, so they stay far
//   inside both the site's 2^76 and the WIDE segment's per-site range (2^(4 b - 41):
//   2^71 for 5 sites, 2^43 for 1000, 2^27 for 10000); neither saturates for any realistic
//   table, and the guarantee assumes none does (a saturated site's share is no longer the
//   Gaussian above). The transport's 2^-80 step is negligible against the noise
//   (sigma sqrt(m / t) in these units) for any sigma above ~1e-15.
//   Release (ReleaseAnalytics with noised = true). Counts are no longer integers and may be
//   negative: each count is rounded to the nearest integer and clamped at 0; the main
//   cell's sum S is clamped into [n lo, n hi] (n its rounded count), mean = S / n and
//   variance = Q / n - mean^2, clamped into [0, (hi - lo)^2 / 4] (the largest variance of
//   values in [lo, hi]); then the suppression rules above apply to the rounded counts
//   (withheld entries still suppress; honest sites send none). All of it is
//   post-processing of the noised sum: no further cost.
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
// Bounds of a query's value_range: each |value| at most kMaxValueRangeMagnitude, and the
// larger of |lo| and |hi| at least kMinValueRangeMagnitude (so that Delta_Q is a normal
// double).
inline constexpr double kMaxValueRangeMagnitude = 1e100;
inline constexpr double kMinValueRangeMagnitude = 1e-100;
// Largest noise multiplier of an analytics task (the transport bound above).
inline constexpr double kMaxAnalyticsNoiseMultiplier = 1e6;

// Every error in `spec`, each path prefixed by `path_prefix` ("analytics" gives
// "analytics.queries[2].histogram_edges[3]"; an empty prefix gives "queries[2]..."):
// 1..1000 queries; each column a CSV header name (non-empty, at most 256 bytes, no comma,
// quote or control character); edges, when given, 2..101 finite and strictly increasing
// values; a value_range, when given, exactly two finite values lo < hi within the bounds
// above; a filter, when set, with a column, a known op (not OP_UNSPECIFIED) and a finite
// value; min_cohort at most 10000; min_cell_size at most 1000000 (0 = unset: the default
// applies). Empty means valid. Whether value_range is required (with the task's privacy)
// is the task validator's (proto/validation.h).
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
// which it holds 1..min_cell_size-1 rows (min_cell_size <= 1: none); values clipped into a
// query's value_range when it has one. Preconditions: `spec`
// is valid; min_cell_size is the task's k (MinCellSize). INVALID_ARGUMENT only for the
// schema: a query or filter column missing from the header (naming it) or a size mismatch;
// never for a value. `skipped`, when given, receives the rows left out.
absl::StatusOr<std::vector<double>> EncodeAnalytics(const v1::AnalyticsSpec& spec,
                                                    uint32_t min_cell_size,
                                                    const std::vector<std::string>& header,
                                                    std::span<const double> values, size_t num_rows,
                                                    AnalyticsSkips* skipped = nullptr);

// ---- Differential privacy (the section above) ----

// Statistics of a (valid) spec: per query 3 + its histogram cells.
size_t AnalyticsStatisticsLength(const v1::AnalyticsSpec& spec);

// What one row can change.
struct AnalyticsSensitivity {
  // m: how many statistics one row changes at most.
  size_t row_statistics = 0;
  // Delta_i per statistic, in statistics order (AnalyticsStatisticsLength values).
  std::vector<double> per_statistic;
};

// The spec's record-level sensitivity. Precondition: `spec` is valid and every query has
// its value_range (a query without one gets Delta 0 for S and Q: no bound is known).
AnalyticsSensitivity AnalyticsRecordSensitivity(const v1::AnalyticsSpec& spec);

// Client side, with noise: as EncodeAnalytics with nothing withheld, then noise[i] (in
// statistic i's own units: rows, or the column's units for S, its square's for Q) added to
// statistic i, and S and Q written in the noised transport (scaled by 1/Delta). The caller
// draws the noise (client/privacy.h). Precondition: `spec` is valid. INVALID_ARGUMENT as
// EncodeAnalytics, or if a query has no value_range, noise.size() !=
// AnalyticsStatisticsLength(spec) or a noise value is not finite (all independent of the
// table's values).
absl::StatusOr<std::vector<double>> EncodeNoisedAnalytics(const v1::AnalyticsSpec& spec,
                                                          std::span<const double> noise,
                                                          const std::vector<std::string>& header,
                                                          std::span<const double> values,
                                                          size_t num_rows,
                                                          AnalyticsSkips* skipped = nullptr);

// The statistics a vector holds (a site's or the cohort's), in statistics order: counts as
// they are, S and Q joined from their parts and, when `noised`, scaled back to the
// column's units (times Delta). For tests and tools. INVALID_ARGUMENT on a wrong length,
// a non-finite value, a part beyond any cohort's range, or (noised) a query without its
// value_range.
absl::StatusOr<std::vector<double>> AnalyticsStatistics(const v1::AnalyticsSpec& spec,
                                                        std::span<const double> values,
                                                        bool noised);

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
// result per query in spec order, k = MinCellSize(spec). `noised`: the sites encoded with
// EncodeNoisedAnalytics (the task has privacy); counts are then rounded and clamped, and
// the main cell's values clamped, as the Differential-privacy section says. INVALID_ARGUMENT
// on a wrong length, non-finite values, a withheld entry (or, exact, a count) that is not a
// non-negative integer, a released sum out of any honest cohort's range (all of which
// honest sites never produce), or (noised) a query without its value_range. Suppressed
// cells' sums are never decoded.
absl::StatusOr<std::vector<QueryRelease>> ReleaseAnalytics(const v1::AnalyticsSpec& spec,
                                                           std::span<const double> summed,
                                                           bool noised = false);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_ANALYTICS_H_
