// Exact federated generalised linear models: Newton–Raphson (IRLS, Fisher scoring with the
// canonical link) where each iteration needs only sums over the sites, and the inference a
// clinical paper reports (standard errors, Wald statistics, p-values, 95% confidence
// intervals, deviance, AIC). Pure math, shared by the sites (their contribution) and the
// coordinator (the step and the report); it knows no transport. The result is the pooled
// maximum-likelihood fit, equal to R's glm() on the pooled rows whatever the partition
// (tests/research/reference/glm_reference.R holds R's values).
//
// One iteration at coefficients β (p of them, the intercept a column of ones the caller
// puts in X):
//   site:         η = Xβ + offset, μ = g⁻¹(η), w_i = prior weight · (dμ/dη)² / V(μ),
//                 z = η − offset + (y − μ) / (dμ/dη);
//                 sends X'WX (p × p, symmetric), X'Wz, the deviance and Pearson χ² at β,
//                 and β-independent totals (Σ prior weight, Σ weight·y, Σ weight·e^offset,
//                 Σ weight·offset) and the log-likelihood at β — SiteSums.
//   coordinator:  adds them (Add), β' = (X'WX)⁻¹ X'Wz (NewtonStep), and stops when
//                 |D(β) − D(β_previous)| / (|D(β)| + 0.1) < ε (Converged: R's own rule).
// The first iteration runs at StartingCoefficients: the intercept of the null model (the
// intercept-only fit with the offset: g(ȳ); log(Σ y / Σ e^offset) for Poisson, mean of
// y − offset for Gaussian; for binomial with an offset, logit(ȳ), not its null model), the
// rest 0, from sums taken at any β. The deviance there is the null deviance (binomial with
// an offset excepted).
//
// Families and canonical links: binomial (logit; y in [0, 1], a proportion with its
// prior weight as the number of trials), Poisson (log; y ≥ 0) and Gaussian (identity).
// Inference (Report) as R's summary.glm: Cov(β̂) = φ (X'WX)⁻¹ at β̂, φ = 1 for binomial and
// Poisson, φ = Pearson χ² / (n − p) for Gaussian; Wald z (normal p and interval) for
// binomial and Poisson, t with n − p degrees of freedom for Gaussian (confint.lm's
// interval); AIC as R's family$aic + 2p (+ 2 for Gaussian's variance).
//
// Errors are INVALID_ARGUMENT naming what is wrong (sizes, a label outside the family's
// range, a non-finite value) and never a value computed from data; FAILED_PRECONDITION
// when X'WX is not positive definite (collinear columns, or a column constant zero).
// Thread-compatible: pure functions.
#ifndef TESSERA_GLM_GLM_H_
#define TESSERA_GLM_GLM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"

namespace tessera::glm {

enum class Family { kBinomial, kGaussian, kPoisson };

// What one site contributes to one iteration (or, added up, what all sites do).
struct SiteSums {
  Eigen::MatrixXd xtwx;  // p × p
  Eigen::VectorXd xtwz;  // p
  double deviance = 0;
  double pearson = 0;         // Σ weight·(y − μ)² / V(μ)
  double log_likelihood = 0;  // binomial and Poisson (R's family$aic / −2); 0 for Gaussian
  // Independent of β.
  double weight_sum = 0;         // Σ prior weight (the rows, when unweighted)
  double weighted_y = 0;         // Σ weight·y
  double weighted_offset = 0;    // Σ weight·offset
  double weighted_exposure = 0;  // Σ weight·e^offset (Σ weight without an offset)
  int64_t rows = 0;              // with a positive prior weight
};

// SiteSums as one vector of reals, for secure aggregation (a WIDE segment of
// secagg/vector_codec.h adds them exactly): X'WX's upper triangle row by row (i <= j), X'Wz,
// then deviance, Pearson χ², log-likelihood, Σ weight, Σ weight·y, Σ weight·offset,
// Σ weight·e^offset and the rows. FlatSize(p) = p(p+1)/2 + p + 8 values.
size_t FlatSize(int p);
std::vector<double> Flatten(const SiteSums& sums);
// The sums of p coefficients from a flat vector (a sum of Flatten's). INVALID_ARGUMENT if
// its length is not FlatSize(p), or the row count is not a non-negative integer.
absl::StatusOr<SiteSums> Unflatten(const std::vector<double>& flat, int p);

// The sums of one site's rows at `beta`. `x` is n × p (the intercept column included by
// the caller), `y` n; `offset` and `weights` are empty or n long (weights ≥ 0, finite).
absl::StatusOr<SiteSums> SiteContribution(Family family, const Eigen::MatrixXd& x,
                                          const Eigen::VectorXd& y, const Eigen::VectorXd& offset,
                                          const Eigen::VectorXd& weights,
                                          const Eigen::VectorXd& beta);

// total += site. INVALID_ARGUMENT if their sizes differ (an empty total takes the site's).
absl::Status Add(SiteSums& total, const SiteSums& site);

// Where the iterations start (p coefficients; the intercepts at `intercepts`: one, or with
// site fixed effects one per site, each set to the null model's), from sums taken at any β
// (only their β-independent totals are used). INVALID_ARGUMENT if an index is outside
// [0, p), there are no rows, or the mean is outside the family's open range (all y 0 or all
// 1 for binomial, all 0 for Poisson: no finite maximum-likelihood intercept).
absl::StatusOr<Eigen::VectorXd> StartingCoefficients(Family family, const SiteSums& total, int p,
                                                     const std::vector<int>& intercepts);

// β' = (X'WX)⁻¹ X'Wz. FAILED_PRECONDITION if X'WX is not positive definite.
absl::StatusOr<Eigen::VectorXd> NewtonStep(const SiteSums& total);

// R's rule: |deviance − previous| / (|deviance| + 0.1) < epsilon.
bool Converged(double deviance, double previous, double epsilon);

struct Coefficient {
  std::string name;
  double estimate = 0;
  double std_error = 0;
  double statistic = 0;  // z or t
  double p_value = 0;    // two-sided
  double ci_low = 0;     // 95%
  double ci_high = 0;
};

struct Report {
  std::vector<Coefficient> coefficients;
  double deviance = 0;
  double null_deviance = 0;  // when given to MakeReport; else 0
  double aic = 0;
  double dispersion = 1;
  int64_t df_residual = 0;
  int64_t rows = 0;  // with a positive prior weight
};

// The inference at the estimate `beta`, from the sums taken at it. `names` has p entries.
// INVALID_ARGUMENT for sizes that do not match, or no residual degrees of freedom for
// Gaussian; FAILED_PRECONDITION if X'WX is not positive definite.
absl::StatusOr<Report> MakeReport(Family family, const SiteSums& at_estimate,
                                  const Eigen::VectorXd& beta,
                                  const std::vector<std::string>& names);

}  // namespace tessera::glm

#endif  // TESSERA_GLM_GLM_H_
