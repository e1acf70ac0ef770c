#include "coordinator/glm_rounds.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "glm/cox.h"
#include "glm/glm.h"
#include "glm/spec.h"
#include "proto/glm_layout.h"

namespace tessera::coordinator {
namespace {

// β as the next round's coefficients; FAILED_PRECONDITION when a step diverged (the
// checkpoint keeps them as float32 too).
absl::StatusOr<std::vector<double>> ToVector(const Eigen::VectorXd& beta) {
  std::vector<double> out(static_cast<size_t>(beta.size()));
  for (Eigen::Index i = 0; i < beta.size(); ++i) {
    const double v = beta(i);
    if (!std::isfinite(v) || std::abs(v) > std::numeric_limits<float>::max()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the Newton step left the range of float32 (coefficient ", i,
          "): the fit diverges (separation, or a column that predicts the label perfectly?)"));
    }
    out[static_cast<size_t>(i)] = v;
  }
  return out;
}

void CopyCoefficients(const std::vector<glm::Coefficient>& from, v1::GlmReport* to) {
  for (const glm::Coefficient& c : from) {
    v1::GlmCoefficient* out = to->add_coefficients();
    out->set_name(c.name);
    out->set_estimate(c.estimate);
    out->set_std_error(c.std_error);
    out->set_statistic(c.statistic);
    out->set_p_value(c.p_value);
    out->set_ci_low(c.ci_low);
    out->set_ci_high(c.ci_high);
  }
}

absl::Status CheckRows(int64_t rows, uint64_t pooled, bool weighted) {
  const auto want = static_cast<int64_t>(pooled);
  if (weighted ? rows > want : rows != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("the sum covers ", rows, " rows, the cohort's statistics ", pooled,
                     weighted ? " (at most, with weights)" : "", ": it is not the cohort's sum"));
  }
  return absl::OkStatus();
}

absl::StatusOr<GlmRoundOutput> CoxRound(const GlmRoundInput& in, const Eigen::VectorXd& beta,
                                        const std::vector<std::string>& names) {
  const v1::GlmSpec& g = in.spec->model().glm();
  const std::vector<double> flat(in.sum.begin(), in.sum.end());
  const std::optional<glm::CoxGrid> grid = glm::PooledGridOf(g);
  // Pooled: the sites' sums at each grid time make the pooled risk sets' (glm/cox.h).
  ASSIGN_OR_RETURN(glm::CoxSums sums,
                   grid.has_value() ? glm::PooledCoxFromSums(glm::TiesOf(g.ties()), *grid, flat,
                                                             static_cast<int>(beta.size()))
                                    : glm::UnflattenCox(flat, static_cast<int>(beta.size())));
  RETURN_IF_ERROR(CheckRows(sums.rows, in.pooled_rows, false));
  GlmRoundOutput out;
  out.objective = sums.log_likelihood;
  ASSIGN_OR_RETURN(const Eigen::VectorXd next, glm::CoxNewtonStep(sums, beta));
  ASSIGN_OR_RETURN(out.next, ToVector(next));
  // coxph's rule, or a step that does not move the coefficients (the same β would be
  // the same contribution, which the sites refuse to send twice).
  const bool converged =
      (in.round >= 2 && glm::CoxConverged(sums.log_likelihood, in.history.back(), g.epsilon())) ||
      std::equal(out.next.begin(), out.next.end(), in.coefficients.begin());
  if (converged || in.round >= in.spec->rounds()) {
    ASSIGN_OR_RETURN(glm::CoxReport report, glm::MakeCoxReport(sums, next, names));
    v1::GlmReport r;
    r.set_family("cox");
    if (grid.has_value()) r.set_pooled_grid_points(static_cast<uint32_t>(grid->points));
    r.set_statistic("z");
    CopyCoefficients(report.coefficients, &r);
    r.set_rows(report.rows);
    r.set_events(report.events);
    r.set_log_likelihood(report.log_likelihood);
    r.set_iterations(in.round - 1);
    r.set_rounds(in.round);
    r.set_converged(converged);
    r.set_epsilon(g.epsilon());
    out.report = std::move(r);
  }
  return out;
}

}  // namespace

std::string GlmObjectiveMetric(const v1::TaskSpec& spec) {
  return spec.model().glm().family() == v1::GlmSpec::COX ? "partial_log_likelihood" : "deviance";
}

absl::StatusOr<std::vector<double>> GlmFirstCoefficients(const v1::TaskSpec& spec,
                                                         size_t num_sites) {
  ASSIGN_OR_RETURN(const size_t p, proto::GlmCoefficientCount(spec, num_sites));
  return std::vector<double>(p, 0.0);
}

absl::StatusOr<GlmRoundOutput> GlmRound(const GlmRoundInput& in) {
  const v1::TaskSpec& spec = *in.spec;
  const v1::GlmSpec& g = spec.model().glm();
  ASSIGN_OR_RETURN(const std::vector<std::string> names,
                   proto::GlmCoefficientNames(spec, in.sites));
  if (in.coefficients.size() != names.size()) {
    return absl::InvalidArgumentError(absl::StrCat("round ", in.round, " ran on ",
                                                   in.coefficients.size(),
                                                   " coefficients, the "
                                                   "task has ",
                                                   names.size()));
  }
  if (in.history.size() + 1 != in.round) {
    return absl::InvalidArgumentError(absl::StrCat("round ", in.round, " with the objective of ",
                                                   in.history.size(), " earlier rounds"));
  }
  const auto p = static_cast<Eigen::Index>(names.size());
  Eigen::VectorXd beta(p);
  for (Eigen::Index i = 0; i < p; ++i) beta(i) = in.coefficients[static_cast<size_t>(i)];
  if (g.family() == v1::GlmSpec::COX) return CoxRound(in, beta, names);

  const glm::Family family = glm::FamilyOf(g.family());
  const std::vector<double> flat(in.sum.begin(), in.sum.end());
  ASSIGN_OR_RETURN(glm::SiteSums sums, glm::Unflatten(flat, static_cast<int>(p)));
  RETURN_IF_ERROR(CheckRows(sums.rows, in.pooled_rows, !g.weights().empty()));
  GlmRoundOutput out;
  out.objective = sums.deviance;
  const bool binomial_offset = family == glm::Family::kBinomial && !g.offset().empty();
  if (in.round == 1) {
    // The totals do not depend on β: the null model's start. R's null model without an
    // intercept (site fixed effects) is η = offset: this round's β = 0.
    if (g.site_fixed_effects()) out.null_deviance = sums.deviance;
    const int count = g.site_fixed_effects() ? static_cast<int>(in.sites.size()) : 1;
    std::vector<int> intercepts(static_cast<size_t>(count));
    std::iota(intercepts.begin(), intercepts.end(), 0);
    ASSIGN_OR_RETURN(const Eigen::VectorXd start,
                     glm::StartingCoefficients(family, sums, static_cast<int>(p), intercepts));
    ASSIGN_OR_RETURN(out.next, ToVector(start));
    if (!std::equal(out.next.begin(), out.next.end(), in.coefficients.begin())) return out;
    // The start is β = 0 itself (a mean of exactly 0.5, 1 or 0 on the link's scale): these
    // sums are the start's, and the same β must not be asked for twice.
    if (!g.site_fixed_effects() && !binomial_offset) out.null_deviance = sums.deviance;
  } else if (in.round == 2 && !in.null_deviance.has_value() && !g.site_fixed_effects() &&
             !binomial_offset) {
    out.null_deviance = sums.deviance;  // the intercept-only fit's
  }
  ASSIGN_OR_RETURN(const Eigen::VectorXd next, glm::NewtonStep(sums));
  ASSIGN_OR_RETURN(out.next, ToVector(next));
  // R's rule, or a step that does not move the coefficients at all (asking for the
  // same β again would be refused by every site: it is the same contribution).
  const bool converged =
      (in.round >= 3 && glm::Converged(sums.deviance, in.history.back(), g.epsilon())) ||
      std::equal(out.next.begin(), out.next.end(), in.coefficients.begin());
  if (converged || in.round >= spec.rounds()) {
    // The estimate is the step from this round's sums, in double (R reports the last
    // weighted least-squares solution too): within Newton's quadratic convergence of the
    // maximum.
    ASSIGN_OR_RETURN(glm::Report report, glm::MakeReport(family, sums, next, names));
    v1::GlmReport r;
    r.set_family(proto::GlmFamilyName(g.family()));
    r.set_statistic(family == glm::Family::kGaussian ? "t" : "z");
    CopyCoefficients(report.coefficients, &r);
    r.set_deviance(report.deviance);
    // R's null model: the intercept-only fit (the start), or η = offset without an
    // intercept (β = 0). The start is not binomial's null fit with an offset: none then.
    const std::optional<double> null_deviance =
        out.null_deviance.has_value() ? out.null_deviance : in.null_deviance;
    if (null_deviance.has_value()) r.set_null_deviance(*null_deviance);
    r.set_aic(report.aic);
    r.set_dispersion(report.dispersion);
    r.set_df_residual(report.df_residual);
    r.set_rows(report.rows);
    r.set_iterations(in.round > 2 ? in.round - 2 : 0);
    r.set_rounds(in.round);
    r.set_converged(converged);
    r.set_epsilon(g.epsilon());
    out.report = std::move(r);
  }
  return out;
}

}  // namespace tessera::coordinator
