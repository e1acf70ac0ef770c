// Exact federated Cox proportional hazards, stratified by site: each site is a stratum
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

}  // namespace tessera::glm

#endif  // TESSERA_GLM_COX_H_
