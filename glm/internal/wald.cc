#include "glm/internal/wald.h"

#include <cmath>
#include <utility>

#include "boost/math/distributions/normal.hpp"
#include "boost/math/distributions/students_t.hpp"

namespace tessera::glm::internal {

absl::StatusOr<Eigen::LLT<Eigen::MatrixXd>> Factor(const Eigen::MatrixXd& information,
                                                   const char* not_positive_definite) {
  Eigen::LLT<Eigen::MatrixXd> llt(information);
  if (llt.info() != Eigen::Success) return absl::FailedPreconditionError(not_positive_definite);
  return llt;
}

std::vector<Coefficient> WaldCoefficients(const Eigen::VectorXd& beta,
                                          const Eigen::MatrixXd& covariance,
                                          const std::vector<std::string>& names,
                                          double t_degrees_of_freedom) {
  const bool t = t_degrees_of_freedom > 0;
  const boost::math::normal normal;
  const boost::math::students_t student(t ? t_degrees_of_freedom : 1);
  const double quantile =
      t ? boost::math::quantile(student, 0.975) : boost::math::quantile(normal, 0.975);
  std::vector<Coefficient> out;
  out.reserve(names.size());
  for (Eigen::Index j = 0; j < beta.size(); ++j) {
    Coefficient c;
    c.name = names[static_cast<size_t>(j)];
    c.estimate = beta(j);
    c.std_error = std::sqrt(covariance(j, j));
    c.statistic = c.estimate / c.std_error;
    const double tail = std::abs(c.statistic);
    c.p_value = 2 * (t ? boost::math::cdf(boost::math::complement(student, tail))
                       : boost::math::cdf(boost::math::complement(normal, tail)));
    c.ci_low = c.estimate - quantile * c.std_error;
    c.ci_high = c.estimate + quantile * c.std_error;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace tessera::glm::internal
