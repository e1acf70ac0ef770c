#include "glm/cox.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "glm/internal/wald.h"

namespace tessera::glm {
namespace {

absl::StatusOr<Eigen::LLT<Eigen::MatrixXd>> FactorInformation(const Eigen::MatrixXd& information) {
  return internal::Factor(information,
                          "the information matrix is not positive definite: two covariates are "
                          "collinear, or one does not vary within the risk sets");
}

// The risk-set sums over some rows: Σ r, Σ r·x, Σ r·x·x' with r = e^(η − c).
struct RiskSums {
  explicit RiskSums(Eigen::Index p)
      : s1(Eigen::VectorXd::Zero(p)), s2(Eigen::MatrixXd::Zero(p, p)) {}
  void Add(double r, const Eigen::VectorXd& x) {
    s0 += r;
    s1 += r * x;
    s2.selfadjointView<Eigen::Lower>().rankUpdate(x, r);
  }
  double s0 = 0;
  Eigen::VectorXd s1;
  Eigen::MatrixXd s2;  // lower triangle
};

// Sizes that match, finite covariates and coefficients, times > 0 and 0/1 events; the
// refusal names what is wrong, never a value.
absl::Status CheckSurvivalInputs(const Eigen::MatrixXd& x, const Eigen::VectorXd& time,
                                 const Eigen::VectorXd& event, const Eigen::VectorXd& beta) {
  const Eigen::Index n = x.rows();
  const Eigen::Index p = x.cols();
  if (time.size() != n || event.size() != n || beta.size() != p) {
    return absl::InvalidArgumentError(absl::StrCat("sizes do not match: X is ", n, " x ", p,
                                                   ", time ", time.size(), ", event ", event.size(),
                                                   ", beta ", beta.size()));
  }
  if (!x.allFinite() || !beta.allFinite()) {
    return absl::InvalidArgumentError("a covariate or coefficient is not finite");
  }
  for (Eigen::Index i = 0; i < n; ++i) {
    if (!std::isfinite(time(i)) || time(i) <= 0) {
      return absl::InvalidArgumentError("a follow-up time is not a positive number");
    }
    if (event(i) != 0 && event(i) != 1) {
      return absl::InvalidArgumentError("an event indicator is neither 0 nor 1");
    }
  }
  return absl::OkStatus();
}

// One term of the partial likelihood: −(log s0 + c), −s1/s0, + s2/s0 − (s1/s0)(s1/s0)',
// `times` over (each tie under Breslow's method).
void SubtractRiskTerm(double s0, const Eigen::VectorXd& s1, const Eigen::MatrixXd& s2_lower,
                      double c, double times, CoxSums& out) {
  const Eigen::VectorXd mean = s1 / s0;
  out.log_likelihood -= times * (std::log(s0) + c);
  out.score -= times * mean;
  Eigen::MatrixXd s2 = s2_lower.selfadjointView<Eigen::Lower>();
  out.information += times * (s2 / s0 - mean * mean.transpose());
}

}  // namespace

absl::StatusOr<CoxSums> CoxStratumContribution(Ties ties, const Eigen::MatrixXd& x,
                                               const Eigen::VectorXd& time,
                                               const Eigen::VectorXd& event,
                                               const Eigen::VectorXd& beta) {
  RETURN_IF_ERROR(CheckSurvivalInputs(x, time, event, beta));
  const Eigen::Index n = x.rows();
  const Eigen::Index p = x.cols();
  CoxSums out;
  out.score = Eigen::VectorXd::Zero(p);
  out.information = Eigen::MatrixXd::Zero(p, p);
  out.rows = n;
  if (n == 0) return out;
  const Eigen::VectorXd eta = x * beta;
  const double c = eta.maxCoeff();
  std::vector<Eigen::Index> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](Eigen::Index a, Eigen::Index b) { return time(a) > time(b); });
  RiskSums at_risk(p);
  for (size_t start = 0; start < order.size();) {
    // The rows with this time join the risk set; its events are then the ties.
    size_t end = start;
    const double t = time(order[start]);
    RiskSums tied(p);
    double tied_eta = 0;
    Eigen::VectorXd tied_x = Eigen::VectorXd::Zero(p);
    int64_t deaths = 0;
    while (end < order.size() && time(order[end]) == t) {
      const Eigen::Index i = order[end];
      const Eigen::VectorXd xi = x.row(i).transpose();
      const double r = std::exp(eta(i) - c);
      at_risk.Add(r, xi);
      if (event(i) == 1) {
        tied.Add(r, xi);
        tied_eta += eta(i);
        tied_x += xi;
        ++deaths;
      }
      ++end;
    }
    if (deaths > 0) {
      out.events += deaths;
      out.log_likelihood += tied_eta;
      out.score += tied_x;
      if (ties == Ties::kBreslow) {
        SubtractRiskTerm(at_risk.s0, at_risk.s1, at_risk.s2, c, static_cast<double>(deaths), out);
      } else {
        for (int64_t k = 0; k < deaths; ++k) {
          const double f = static_cast<double>(k) / static_cast<double>(deaths);
          SubtractRiskTerm(at_risk.s0 - f * tied.s0, at_risk.s1 - f * tied.s1,
                           at_risk.s2 - f * tied.s2, c, 1.0, out);
        }
      }
    }
    start = end;
  }
  return out;
}

size_t CoxFlatSize(int p) {
  const auto n = static_cast<size_t>(p);
  return 1 + n + n * (n + 1) / 2 + 2;
}

std::vector<double> FlattenCox(const CoxSums& sums) {
  const auto p = static_cast<int>(sums.score.size());
  std::vector<double> flat;
  flat.reserve(CoxFlatSize(p));
  flat.push_back(sums.log_likelihood);
  for (int i = 0; i < p; ++i) flat.push_back(sums.score(i));
  for (int i = 0; i < p; ++i) {
    for (int j = i; j < p; ++j) flat.push_back(sums.information(i, j));
  }
  flat.push_back(static_cast<double>(sums.rows));
  flat.push_back(static_cast<double>(sums.events));
  return flat;
}

absl::StatusOr<CoxSums> UnflattenCox(const std::vector<double>& flat, int p) {
  if (p <= 0 || flat.size() != CoxFlatSize(p)) {
    return absl::InvalidArgumentError(absl::StrCat("a flat vector of ", flat.size(),
                                                   " values does not hold the Cox sums of ", p,
                                                   " coefficients"));
  }
  CoxSums sums;
  sums.score.resize(p);
  sums.information.resize(p, p);
  size_t k = 0;
  sums.log_likelihood = flat[k++];
  for (int i = 0; i < p; ++i) sums.score(i) = flat[k++];
  for (int i = 0; i < p; ++i) {
    for (int j = i; j < p; ++j) {
      sums.information(i, j) = flat[k];
      sums.information(j, i) = flat[k];
      ++k;
    }
  }
  const double rows = flat[k++];
  const double events = flat[k];
  for (double count : {rows, events}) {
    if (!(count >= 0) || count != std::floor(count) || count > 9.0e15) {
      return absl::InvalidArgumentError("the row or event count is not a non-negative integer");
    }
  }
  if (events > rows) return absl::InvalidArgumentError("more events than rows");
  sums.rows = static_cast<int64_t>(rows);
  sums.events = static_cast<int64_t>(events);
  return sums;
}

absl::Status Add(CoxSums& total, const CoxSums& stratum) {
  if (total.score.size() == 0 && total.rows == 0) {
    total = stratum;
    return absl::OkStatus();
  }
  if (total.score.size() != stratum.score.size()) {
    return absl::InvalidArgumentError(absl::StrCat("a stratum's sums have ", stratum.score.size(),
                                                   " coefficients, the total ",
                                                   total.score.size()));
  }
  total.log_likelihood += stratum.log_likelihood;
  total.score += stratum.score;
  total.information += stratum.information;
  total.rows += stratum.rows;
  total.events += stratum.events;
  return absl::OkStatus();
}

absl::StatusOr<Eigen::VectorXd> CoxNewtonStep(const CoxSums& total, const Eigen::VectorXd& beta) {
  if (total.score.size() != beta.size() || total.information.rows() != beta.size()) {
    return absl::InvalidArgumentError("the sums and the coefficients do not have matching sizes");
  }
  auto llt = FactorInformation(total.information);
  if (!llt.ok()) return llt.status();
  Eigen::VectorXd next = beta + llt->solve(total.score);
  if (!next.allFinite()) return absl::FailedPreconditionError("the Newton step is not finite");
  return next;
}

bool CoxConverged(double log_likelihood, double previous, double epsilon) {
  return std::abs(1 - previous / log_likelihood) <= epsilon;
}

absl::StatusOr<CoxReport> MakeCoxReport(const CoxSums& at_estimate, const Eigen::VectorXd& beta,
                                        const std::vector<std::string>& names) {
  const Eigen::Index p = beta.size();
  if (static_cast<Eigen::Index>(names.size()) != p || at_estimate.score.size() != p) {
    return absl::InvalidArgumentError(absl::StrCat(names.size(), " names and sums of ",
                                                   at_estimate.score.size(), " for ", p,
                                                   " coefficients"));
  }
  auto llt = FactorInformation(at_estimate.information);
  if (!llt.ok()) return llt.status();
  const Eigen::MatrixXd covariance = llt->solve(Eigen::MatrixXd::Identity(p, p));
  CoxReport report;
  report.log_likelihood = at_estimate.log_likelihood;
  report.rows = at_estimate.rows;
  report.events = at_estimate.events;
  report.coefficients = internal::WaldCoefficients(beta, covariance, names,
                                                   /*t_degrees_of_freedom=*/0);  // z
  for (const Coefficient& c : report.coefficients) {
    report.hazard_ratios.push_back(std::exp(c.estimate));
    report.hazard_ratio_low.push_back(std::exp(c.ci_low));
    report.hazard_ratio_high.push_back(std::exp(c.ci_high));
  }
  return report;
}

// ---- Pooled on a grid ----

GridTime OnGrid(const CoxGrid& grid, double time, double event) {
  const double k = std::ceil(time / grid.unit);
  GridTime out;
  if (k > grid.points) {
    out.k = grid.points;  // censored at the grid's end
    return out;
  }
  out.k = std::max(1, static_cast<int>(k));
  out.event = event == 1;
  return out;
}

size_t PooledCoxFlatSize(int p, int points) {
  const auto n = static_cast<size_t>(p);
  return 1 + n + 2 + static_cast<size_t>(points) * (3 + 2 * n + n * (n + 1));
}

namespace {

void AppendTriangle(const Eigen::MatrixXd& lower, std::vector<double>* out) {
  for (Eigen::Index i = 0; i < lower.rows(); ++i) {
    for (Eigen::Index j = i; j < lower.cols(); ++j) out->push_back(lower(j, i));
  }
}

// Reads n values at *at into a vector, a triangle into a symmetric (lower-filled) matrix.
Eigen::VectorXd ReadVector(const std::vector<double>& flat, size_t* at, int n) {
  Eigen::VectorXd v(n);
  for (int i = 0; i < n; ++i) v(i) = flat[(*at)++];
  return v;
}
Eigen::MatrixXd ReadTriangle(const std::vector<double>& flat, size_t* at, int p) {
  Eigen::MatrixXd m(p, p);
  for (int i = 0; i < p; ++i) {
    for (int j = i; j < p; ++j) {
      m(i, j) = flat[*at];
      m(j, i) = flat[*at];
      ++*at;
    }
  }
  return m;
}

bool IsCount(double v) { return v >= 0 && v == std::floor(v) && v <= 9.0e15; }

}  // namespace

absl::StatusOr<std::vector<double>> PooledCoxSiteSums(const CoxGrid& grid, const Eigen::MatrixXd& x,
                                                      const Eigen::VectorXd& time,
                                                      const Eigen::VectorXd& event,
                                                      const Eigen::VectorXd& beta) {
  RETURN_IF_ERROR(CheckSurvivalInputs(x, time, event, beta));
  const Eigen::Index n = x.rows();
  const Eigen::Index p = x.cols();
  if (!(grid.unit > 0) || grid.points < 1) {
    return absl::InvalidArgumentError("the time grid needs a positive unit and points");
  }
  const auto points = static_cast<size_t>(grid.points);
  // Per grid time: the rows whose (grid) time is τ_k, and the events among them.
  std::vector<RiskSums> at_time(points, RiskSums(p));
  std::vector<RiskSums> events_at(points, RiskSums(p));
  std::vector<int64_t> deaths(points, 0);
  double event_eta = 0;
  Eigen::VectorXd event_x = Eigen::VectorXd::Zero(p);
  int64_t events = 0;
  const Eigen::VectorXd eta = x * beta;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double r = std::exp(eta(i));
    if (!std::isfinite(r)) {
      return absl::InvalidArgumentError("the linear predictor is too large to exponentiate");
    }
    const GridTime g = OnGrid(grid, time(i), event(i));
    const auto k = static_cast<size_t>(g.k - 1);
    const Eigen::VectorXd xi = x.row(i).transpose();
    at_time[k].Add(r, xi);
    if (g.event) {
      events_at[k].Add(r, xi);
      ++deaths[k];
      event_eta += eta(i);
      event_x += xi;
      ++events;
    }
  }
  std::vector<double> flat;
  flat.reserve(PooledCoxFlatSize(static_cast<int>(p), grid.points));
  flat.push_back(event_eta);
  for (Eigen::Index j = 0; j < p; ++j) flat.push_back(event_x(j));
  flat.push_back(static_cast<double>(n));
  flat.push_back(static_cast<double>(events));
  // The risk set at τ_k: every row whose time is τ_k or later (cumulated from the end).
  std::vector<RiskSums> at_risk(points, RiskSums(p));
  RiskSums running(p);
  for (size_t k = points; k-- > 0;) {
    running.s0 += at_time[k].s0;
    running.s1 += at_time[k].s1;
    running.s2 += at_time[k].s2;
    at_risk[k] = running;
  }
  for (size_t k = 0; k < points; ++k) {
    flat.push_back(static_cast<double>(deaths[k]));
    flat.push_back(at_risk[k].s0);
    flat.push_back(events_at[k].s0);
    for (Eigen::Index j = 0; j < p; ++j) flat.push_back(at_risk[k].s1(j));
    for (Eigen::Index j = 0; j < p; ++j) flat.push_back(events_at[k].s1(j));
    AppendTriangle(at_risk[k].s2, &flat);
    AppendTriangle(events_at[k].s2, &flat);
  }
  return flat;
}

absl::StatusOr<CoxSums> PooledCoxFromSums(Ties ties, const CoxGrid& grid,
                                          const std::vector<double>& flat, int p) {
  if (p <= 0 || grid.points < 1 || flat.size() != PooledCoxFlatSize(p, grid.points)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a flat vector of ", flat.size(), " values does not hold the pooled Cox sums of ", p,
        " coefficients on ", grid.points, " grid times"));
  }
  CoxSums out;
  size_t at = 0;
  out.log_likelihood = flat[at++];
  out.score = ReadVector(flat, &at, p);
  out.information = Eigen::MatrixXd::Zero(p, p);
  const double rows = flat[at++];
  const double events = flat[at++];
  if (!IsCount(rows) || !IsCount(events) || events > rows) {
    return absl::InvalidArgumentError("the row or event count is not a non-negative integer");
  }
  out.rows = static_cast<int64_t>(rows);
  out.events = static_cast<int64_t>(events);
  for (int k = 0; k < grid.points; ++k) {
    const double d = flat[at++];
    const double s0 = flat[at++];
    const double e0 = flat[at++];
    const Eigen::VectorXd s1 = ReadVector(flat, &at, p);
    const Eigen::VectorXd e1 = ReadVector(flat, &at, p);
    const Eigen::MatrixXd s2 = ReadTriangle(flat, &at, p);
    const Eigen::MatrixXd e2 = ReadTriangle(flat, &at, p);
    if (!IsCount(d)) return absl::InvalidArgumentError("an event count is not an integer");
    if (d == 0) continue;
    if (!(s0 > 0) || !(e0 > 0) || e0 > s0 * (1 + 1e-9)) {
      return absl::InvalidArgumentError(
          absl::StrCat("grid time ", k + 1, " has events but no positive risk-set sum"));
    }
    if (ties == Ties::kBreslow) {
      SubtractRiskTerm(s0, s1, s2, 0, d, out);
    } else {
      for (int64_t l = 0; l < static_cast<int64_t>(d); ++l) {
        const double f = static_cast<double>(l) / d;
        SubtractRiskTerm(s0 - f * e0, s1 - f * e1, s2 - f * e2, 0, 1.0, out);
      }
    }
  }
  return out;
}

}  // namespace tessera::glm
