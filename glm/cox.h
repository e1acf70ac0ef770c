// Exact federated Cox proportional hazards, stratified by site (or pooled on a declared time
// grid: the end of this file): each site is a stratum
// (its own baseline hazard) and contributes its partial log-likelihood, score and
// information at β; the coordinator adds them and takes the Newton step
// β' = β + I(β)⁻¹ U(β) until R's rule |1 − ℓ_previous / ℓ| ≤ ε holds. The result is R's
// coxph(Surv(time, event) ~ x + strata(site)) on the pooled rows (glm_reference.R).
// Nothing of a site's event times leaves it: only sums over its own risk sets.
//
// Ties at an event time: Breslow's approximation or Efron's (R's default). The risk set
// at t holds every row of the stratum with time ≥ t (a row censored at t is at risk at t).
// Each site centres its linear predictor by its largest value before exponentiating (the
// partial likelihood of a stratum does not change when a constant is added to it).
//
// Inference (MakeCoxReport): Cov(β̂) = I(β̂)⁻¹, Wald z, normal p and 95% interval on the log
// hazard ratio; the hazard ratio and its interval are their exponentials.
//
// Errors as glm.h: INVALID_ARGUMENT naming what is wrong, never a value from the data;
// FAILED_PRECONDITION when the information is not positive definite. Thread-compatible.
#ifndef TESSERA_GLM_COX_H_
#define TESSERA_GLM_COX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "glm/glm.h"

namespace tessera::glm {

enum class Ties { kBreslow, kEfron };

// One stratum's (site's) part of the partial likelihood at β, or their sum.
struct CoxSums {
  double log_likelihood = 0;
  Eigen::VectorXd score;        // U, p
  Eigen::MatrixXd information;  // I, p × p
  int64_t rows = 0;
  int64_t events = 0;
};

// A site's stratum at `beta`: `x` n × p (no intercept: the baseline hazard takes it), the
// follow-up `time` (> 0) and `event` (1 = the event, 0 = censored) of each row.
absl::StatusOr<CoxSums> CoxStratumContribution(Ties ties, const Eigen::MatrixXd& x,
                                               const Eigen::VectorXd& time,
                                               const Eigen::VectorXd& event,
                                               const Eigen::VectorXd& beta);

// CoxSums as one vector of reals, for secure aggregation: the partial log-likelihood, U,
// I's upper triangle row by row (i <= j), the rows and the events. CoxFlatSize(p) =
// 1 + p + p(p+1)/2 + 2 values.
size_t CoxFlatSize(int p);
std::vector<double> FlattenCox(const CoxSums& sums);
// The sums of p coefficients from a flat vector (a sum of FlattenCox's). INVALID_ARGUMENT if
// its length is not CoxFlatSize(p), or the row or event count is not a non-negative integer
// (events at most rows).
absl::StatusOr<CoxSums> UnflattenCox(const std::vector<double>& flat, int p);

// total += stratum. INVALID_ARGUMENT if their sizes differ (an empty total takes it).
absl::Status Add(CoxSums& total, const CoxSums& stratum);

// β + I⁻¹ U. FAILED_PRECONDITION if I is not positive definite.
absl::StatusOr<Eigen::VectorXd> CoxNewtonStep(const CoxSums& total, const Eigen::VectorXd& beta);

// R's rule: |1 − previous / log_likelihood| ≤ epsilon.
bool CoxConverged(double log_likelihood, double previous, double epsilon);

struct CoxReport {
  std::vector<Coefficient> coefficients;  // log hazard ratios
  std::vector<double> hazard_ratios;      // exp(estimate), and their 95% intervals
  std::vector<double> hazard_ratio_low;
  std::vector<double> hazard_ratio_high;
  double log_likelihood = 0;
  int64_t rows = 0;
  int64_t events = 0;
};

// The inference at the estimate `beta`, from the sums taken at it; `names` has p entries.
absl::StatusOr<CoxReport> MakeCoxReport(const CoxSums& at_estimate, const Eigen::VectorXd& beta,
                                        const std::vector<std::string>& names);

// ---- Pooled (unstratified) Cox on a declared time grid ----
//
// One baseline hazard over every site needs the risk sets of the pooled rows at every event
// time, which no site can form alone, and sharing the event times themselves would disclose
// them. So the times are put on a grid the task declares: a row's time t becomes
// τ_k = k·unit with k = ⌈t / unit⌉, and a row with k > points is censored at τ_points (R:
// time2 = pmin(ceiling(time / unit), points) * unit, event2 = ifelse(ceiling(time / unit) >
// points, 0, event)). Each site then sends, for every grid time, its sums over its rows at
// risk there (time ≥ τ_k) and over its events there; their sum is the pooled risk sets'.
// The fit is R's coxph(Surv(time2, event2) ~ x) on the pooled rows, Breslow or Efron.
//
// The linear predictor is taken on covariates centred by the pooled means (the sites share
// them from the statistics round): the partial likelihood does not change, and e^η stays
// within what the fixed-point encoding carries.
struct CoxGrid {
  double unit = 1;
  int points = 1;
};

// A row's grid index k in 1..points and whether its event counts (false when censored at
// the grid's end or not an event).
struct GridTime {
  int k = 1;
  bool event = false;
};
GridTime OnGrid(const CoxGrid& grid, double time, double event);

// The flat vector of a site (or the sum of the sites'): [Σ_events η, Σ_events x (p), rows,
// events], then for each grid time k = 1..points [events d_k, S0_k, E0_k, S1_k (p), E1_k (p),
// S2_k (p(p+1)/2), E2_k (p(p+1)/2)] — S over the rows at risk at τ_k, E over the events at
// τ_k, of e^η, e^η·x and e^η·x·x' (upper triangles row by row).
size_t PooledCoxFlatSize(int p, int points);

// A site's flat vector at `beta`: `x` n × p centred covariates, `time` (> 0), `event` (0/1).
// INVALID_ARGUMENT as CoxStratumContribution, or if e^η is not finite.
absl::StatusOr<std::vector<double>> PooledCoxSiteSums(const CoxGrid& grid, const Eigen::MatrixXd& x,
                                                      const Eigen::VectorXd& time,
                                                      const Eigen::VectorXd& event,
                                                      const Eigen::VectorXd& beta);

// The pooled partial likelihood's sums (log-likelihood, U, I, rows, events) from the sum
// of the sites' vectors. INVALID_ARGUMENT if its length is not PooledCoxFlatSize, a count
// is not a non-negative integer, or a grid time with events has no positive risk sum.
absl::StatusOr<CoxSums> PooledCoxFromSums(Ties ties, const CoxGrid& grid,
                                          const std::vector<double>& flat, int p);

}  // namespace tessera::glm

#endif  // TESSERA_GLM_COX_H_
