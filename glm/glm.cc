#include "glm/glm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glm/internal/wald.h"

namespace tessera::glm {
namespace {

// μ never reaches the boundary of its range, as in R's families (binomial: within
// [ε, 1 − ε]; Poisson: μ > 0), so that weights and logs stay finite far from the optimum.
constexpr double kMuEpsilon = 10 * std::numeric_limits<double>::epsilon();

// One row's part of an iteration, given η (with the offset).
struct RowTerms {
  double mu = 0;
  double dmu_deta = 0;
  double variance = 0;
  double deviance = 0;
  double log_likelihood = 0;
};

double XLogY(double x, double y) { return x == 0 ? 0 : x * std::log(y); }

RowTerms Terms(Family family, double eta, double y) {
  RowTerms t;
  switch (family) {
    case Family::kBinomial: {
      // R's plogis, clamped as binomial()$linkinv is.
      const double mu = 1 / (1 + std::exp(-eta));
      t.mu = std::clamp(mu, kMuEpsilon, 1 - kMuEpsilon);
      t.dmu_deta = std::max(t.mu * (1 - t.mu), kMuEpsilon);
      t.variance = t.mu * (1 - t.mu);
      t.deviance = 2 * (XLogY(y, y / t.mu) + XLogY(1 - y, (1 - y) / (1 - t.mu)));
      t.log_likelihood = XLogY(y, t.mu) + XLogY(1 - y, 1 - t.mu);
      break;
    }
    case Family::kPoisson: {
      t.mu = std::max(std::exp(eta), kMuEpsilon);
      t.dmu_deta = t.mu;
      t.variance = t.mu;
      t.deviance = 2 * (XLogY(y, y / t.mu) - (y - t.mu));
      t.log_likelihood = XLogY(y, t.mu) - t.mu - std::lgamma(y + 1);
      break;
    }
    case Family::kGaussian: {
      t.mu = eta;
      t.dmu_deta = 1;
      t.variance = 1;
      t.deviance = (y - t.mu) * (y - t.mu);
      break;
    }
  }
  return t;
}

absl::Status CheckLabel(Family family, double y) {
  if (!std::isfinite(y)) return absl::InvalidArgumentError("a label is not a finite number");
  if (family == Family::kBinomial && (y < 0 || y > 1)) {
    return absl::InvalidArgumentError("a binomial label is outside [0, 1]");
  }
  if (family == Family::kPoisson && y < 0) {
    return absl::InvalidArgumentError("a Poisson label is negative");
  }
  return absl::OkStatus();
}

// The Cholesky factor of a symmetric X'WX, or FAILED_PRECONDITION.
absl::StatusOr<Eigen::LLT<Eigen::MatrixXd>> Factor(const Eigen::MatrixXd& xtwx) {
  return internal::Factor(xtwx,
                          "X'WX is not positive definite: two columns are collinear, or one is "
                          "zero on every row with a weight");
}

}  // namespace

absl::StatusOr<SiteSums> SiteContribution(Family family, const Eigen::MatrixXd& x,
                                          const Eigen::VectorXd& y, const Eigen::VectorXd& offset,
                                          const Eigen::VectorXd& weights,
                                          const Eigen::VectorXd& beta) {
  const Eigen::Index n = x.rows();
  const Eigen::Index p = x.cols();
  if (y.size() != n || beta.size() != p || (offset.size() != 0 && offset.size() != n) ||
      (weights.size() != 0 && weights.size() != n)) {
    return absl::InvalidArgumentError(absl::StrCat("sizes do not match: X is ", n, " x ", p, ", y ",
                                                   y.size(), ", beta ", beta.size(), ", offset ",
                                                   offset.size(), ", weights ", weights.size()));
  }
  if (!x.allFinite() || !beta.allFinite() || !offset.allFinite() || !weights.allFinite()) {
    return absl::InvalidArgumentError("a feature, offset, weight or coefficient is not finite");
  }
  SiteSums sums;
  sums.xtwx = Eigen::MatrixXd::Zero(p, p);
  sums.xtwz = Eigen::VectorXd::Zero(p);
  // Working weights and responses, then one X'WX product for the whole site.
  Eigen::VectorXd w(n), z(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    if (absl::Status label = CheckLabel(family, y(i)); !label.ok()) return label;
    const double prior = weights.size() == 0 ? 1.0 : weights(i);
    if (prior < 0) return absl::InvalidArgumentError("a prior weight is negative");
    const double off = offset.size() == 0 ? 0.0 : offset(i);
    const double eta = x.row(i).dot(beta) + off;
    const RowTerms t = Terms(family, eta, y(i));
    w(i) = prior * t.dmu_deta * t.dmu_deta / t.variance;
    z(i) = eta - off + (y(i) - t.mu) / t.dmu_deta;
    if (prior > 0) {
      sums.deviance += prior * t.deviance;
      sums.pearson += prior * (y(i) - t.mu) * (y(i) - t.mu) / t.variance;
      sums.log_likelihood += prior * t.log_likelihood;
      sums.weight_sum += prior;
      sums.weighted_y += prior * y(i);
      sums.weighted_offset += prior * off;
      sums.weighted_exposure += prior * std::exp(off);
      ++sums.rows;
    }
  }
  sums.xtwx.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose() * w.cwiseSqrt().asDiagonal());
  sums.xtwx.triangularView<Eigen::StrictlyUpper>() = sums.xtwx.transpose();
  sums.xtwz = x.transpose() * w.cwiseProduct(z);
  return sums;
}

size_t FlatSize(int p) {
  const auto n = static_cast<size_t>(std::max(p, 0));
  return n * (n + 1) / 2 + n + 8;
}

std::vector<double> Flatten(const SiteSums& sums) {
  const auto p = static_cast<int>(sums.xtwz.size());
  std::vector<double> flat;
  flat.reserve(FlatSize(p));
  for (int i = 0; i < p; ++i) {
    for (int j = i; j < p; ++j) flat.push_back(sums.xtwx(i, j));
  }
  for (int i = 0; i < p; ++i) flat.push_back(sums.xtwz(i));
  for (double v :
       {sums.deviance, sums.pearson, sums.log_likelihood, sums.weight_sum, sums.weighted_y,
        sums.weighted_offset, sums.weighted_exposure, static_cast<double>(sums.rows)}) {
    flat.push_back(v);
  }
  return flat;
}

absl::StatusOr<SiteSums> Unflatten(const std::vector<double>& flat, int p) {
  if (p <= 0 || flat.size() != FlatSize(p)) {
    return absl::InvalidArgumentError(absl::StrCat("a flat vector of ", flat.size(),
                                                   " values does not hold the sums of ", p,
                                                   " coefficients"));
  }
  SiteSums sums;
  sums.xtwx.resize(p, p);
  sums.xtwz.resize(p);
  size_t k = 0;
  for (int i = 0; i < p; ++i) {
    for (int j = i; j < p; ++j) {
      sums.xtwx(i, j) = flat[k];
      sums.xtwx(j, i) = flat[k];
      ++k;
    }
  }
  for (int i = 0; i < p; ++i) sums.xtwz(i) = flat[k++];
  sums.deviance = flat[k++];
  sums.pearson = flat[k++];
  sums.log_likelihood = flat[k++];
  sums.weight_sum = flat[k++];
  sums.weighted_y = flat[k++];
  sums.weighted_offset = flat[k++];
  sums.weighted_exposure = flat[k++];
  const double rows = flat[k];
  if (!(rows >= 0) || rows != std::floor(rows) || rows > 9.0e15) {
    return absl::InvalidArgumentError("the row count is not a non-negative integer");
  }
  sums.rows = static_cast<int64_t>(rows);
  return sums;
}

absl::Status Add(SiteSums& total, const SiteSums& site) {
  if (total.xtwx.size() == 0 && total.rows == 0) {
    total = site;
    return absl::OkStatus();
  }
  if (total.xtwx.rows() != site.xtwx.rows() || total.xtwz.size() != site.xtwz.size()) {
    return absl::InvalidArgumentError(absl::StrCat("a site's sums have ", site.xtwz.size(),
                                                   " coefficients, the total ", total.xtwz.size()));
  }
  total.xtwx += site.xtwx;
  total.xtwz += site.xtwz;
  total.deviance += site.deviance;
  total.pearson += site.pearson;
  total.log_likelihood += site.log_likelihood;
  total.weight_sum += site.weight_sum;
  total.weighted_y += site.weighted_y;
  total.weighted_offset += site.weighted_offset;
  total.weighted_exposure += site.weighted_exposure;
  total.rows += site.rows;
  return absl::OkStatus();
}

absl::StatusOr<Eigen::VectorXd> StartingCoefficients(Family family, const SiteSums& total, int p,
                                                     const std::vector<int>& intercepts) {
  for (int index : intercepts) {
    if (p <= 0 || index < 0 || index >= p) {
      return absl::InvalidArgumentError(
          absl::StrCat("an intercept is coefficient ", index, " of ", p));
    }
  }
  if (total.weight_sum <= 0) return absl::InvalidArgumentError("no row has a positive weight");
  const double mean = total.weighted_y / total.weight_sum;
  double intercept = 0;
  switch (family) {
    case Family::kBinomial:
      if (!(mean > 0 && mean < 1)) {
        return absl::InvalidArgumentError(
            "every label is 0, or every label is 1: the intercept has no finite estimate");
      }
      intercept = std::log(mean / (1 - mean));
      break;
    case Family::kPoisson:
      if (!(total.weighted_y > 0)) {
        return absl::InvalidArgumentError("every label is 0: the intercept has no finite estimate");
      }
      intercept = std::log(total.weighted_y / total.weighted_exposure);
      break;
    case Family::kGaussian:
      intercept = (total.weighted_y - total.weighted_offset) / total.weight_sum;
      break;
  }
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(p);
  for (int index : intercepts) beta(index) = intercept;
  return beta;
}

absl::StatusOr<Eigen::VectorXd> NewtonStep(const SiteSums& total) {
  if (total.xtwx.rows() != total.xtwz.size() || total.xtwx.cols() != total.xtwz.size()) {
    return absl::InvalidArgumentError("X'WX and X'Wz do not have matching sizes");
  }
  auto llt = Factor(total.xtwx);
  if (!llt.ok()) return llt.status();
  Eigen::VectorXd beta = llt->solve(total.xtwz);
  if (!beta.allFinite()) return absl::FailedPreconditionError("the Newton step is not finite");
  return beta;
}

bool Converged(double deviance, double previous, double epsilon) {
  return std::abs(deviance - previous) / (std::abs(deviance) + 0.1) < epsilon;
}

absl::StatusOr<Report> MakeReport(Family family, const SiteSums& at_estimate,
                                  const Eigen::VectorXd& beta,
                                  const std::vector<std::string>& names) {
  const Eigen::Index p = beta.size();
  if (static_cast<Eigen::Index>(names.size()) != p || at_estimate.xtwz.size() != p ||
      at_estimate.xtwx.rows() != p) {
    return absl::InvalidArgumentError(absl::StrCat(
        names.size(), " names and sums of ", at_estimate.xtwz.size(), " for ", p, " coefficients"));
  }
  Report report;
  report.rows = at_estimate.rows;
  report.deviance = at_estimate.deviance;
  report.df_residual = at_estimate.rows - p;
  const bool gaussian = family == Family::kGaussian;
  if (gaussian) {
    if (report.df_residual <= 0) {
      return absl::InvalidArgumentError(
          "no residual degrees of freedom: as many rows as coefficients");
    }
    report.dispersion = at_estimate.pearson / static_cast<double>(report.df_residual);
    const double n = static_cast<double>(at_estimate.rows);
    report.aic = n * (std::log(2 * std::numbers::pi * at_estimate.deviance / n) + 1) + 2 + 2 * p;
  } else {
    report.aic = -2 * at_estimate.log_likelihood + 2 * p;
  }
  auto llt = Factor(at_estimate.xtwx);
  if (!llt.ok()) return llt.status();
  const Eigen::MatrixXd covariance =
      report.dispersion * llt->solve(Eigen::MatrixXd::Identity(p, p));
  // Gaussian: t with the residual degrees of freedom; binomial and Poisson: z.
  report.coefficients = internal::WaldCoefficients(
      beta, covariance, names, gaussian ? static_cast<double>(report.df_residual) : 0);
  return report;
}

}  // namespace tessera::glm
