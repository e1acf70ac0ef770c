// Private to glm/: what the GLM and the Cox reports share — the Cholesky factor of an
// information matrix (X'WX, or the Cox information) and the Wald inference of each
// coefficient from the covariance.
#ifndef TESSERA_GLM_INTERNAL_WALD_H_
#define TESSERA_GLM_INTERNAL_WALD_H_

#include <string>
#include <vector>

#include "Eigen/Cholesky"
#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "glm/glm.h"

namespace tessera::glm::internal {

// The Cholesky factor of the symmetric `information`, or FAILED_PRECONDITION with
// `not_positive_definite` as the message.
absl::StatusOr<Eigen::LLT<Eigen::MatrixXd>> Factor(const Eigen::MatrixXd& information,
                                                   const char* not_positive_definite);

// Estimate, SE = sqrt(covariance(j, j)), statistic, two-sided p and 95% interval of each
// coefficient: with Student's t of `t_degrees_of_freedom` when it is positive, else the
// normal. `beta`, `covariance` and `names` have matching sizes (the callers check).
std::vector<Coefficient> WaldCoefficients(const Eigen::VectorXd& beta,
                                          const Eigen::MatrixXd& covariance,
                                          const std::vector<std::string>& names,
                                          double t_degrees_of_freedom);

}  // namespace tessera::glm::internal

#endif  // TESSERA_GLM_INTERNAL_WALD_H_
