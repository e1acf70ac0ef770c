// The coordinator's side of an exact regression (ModelSpec.GlmSpec): what one Newton
// round's sum — over every site of the cohort — turns into. Pure: no I/O, no clock; the
// task runner (task_runner_glm.cc) runs the sessions, keeps the history and commits.
//
// The rounds (r = 1, 2, ...; β_r the coefficients the sites evaluate in round r):
//   GLM families  β_1 = 0: its sum gives the β-independent totals, from which β_2 is the
//                 null model's start (glm::StartingCoefficients, R's own start). From round
//                 2 on β_{r+1} = (X'WX)⁻¹X'Wz at β_r (glm::NewtonStep). Round r ≥ 3 has
//                 converged when R's rule holds between the deviances of rounds r − 1 and
//                 r; the report is then made from round r's sums (glm::MakeReport), its
//                 estimate their Newton step in double (as R reports the last weighted
//                 least-squares solution), its standard errors from X'WX at β_r, its
//                 null deviance round 2's deviance (round 1's with site fixed effects: R's
//                 null model without an intercept is η = offset; none for binomial with an
//                 offset), its iterations r − 2 Newton steps. A start that is β_1 itself
//                 (a mean of exactly 0.5 for binomial) is not asked for again: round 1's
//                 sums are the start's, and its Newton step follows at once.
//   Every family: a step that leaves the coefficients exactly as they are has converged
//                 (the same β asked for again is the same contribution, which every site
//                 refuses to send twice: client/contribution_key.h) — a Gaussian fit, exact
//                 after one step, ends so.
//   COX           β_1 = 0 (coxph's start), β_{r+1} = β_r + I⁻¹U (glm::CoxNewtonStep); round
//                 r ≥ 2 has converged when coxph's rule holds between rounds r − 1 and r; the
//                 report's estimate is the step from round r's sums (in double), its
//                 information I(β_r), its iterations r − 1.
// The task's last round reports where it is, marked not converged (R warns and does the
// same). The coefficients travel in double (WorkItem.glm_coefficients); the report's
// estimate is one Newton step beyond the last round's β, within Newton's quadratic
// convergence of the maximum (tests/research/glm_simulate_test.cc: R's values to 1e-6).
//
// Checks on the sum (the coordinator never sees one site's): the layout's length, integral
// row (and event) counts, and the rows equal to the cohort's pooled training rows (without
// weights; at most them with weights) — a sum over other rows is another population's.
// INVALID_ARGUMENT naming the check; FAILED_PRECONDITION when X'WX (or I) is not positive
// definite (collinear columns).
//
// Thread-compatible.
#ifndef TESSERA_COORDINATOR_GLM_ROUNDS_H_
#define TESSERA_COORDINATOR_GLM_ROUNDS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"

namespace tessera::coordinator {

// The round metric that carries a round's objective: "deviance" (GLM families) or
// "partial_log_likelihood" (COX).
std::string GlmObjectiveMetric(const v1::TaskSpec& spec);

struct GlmRoundInput {
  // With defaults applied.
  const v1::TaskSpec* spec = nullptr;
  // The cohort, sorted (the site fixed effects' order).
  std::vector<std::string> sites;
  uint32_t round = 0;
  // β_round, as the sites received it.
  std::span<const double> coefficients;
  // The cohort's summed contribution.
  std::span<const double> sum;
  // The objective of rounds 1 .. round − 1, in order.
  std::vector<double> history;
  // The cohort's pooled training rows (round 0's statistics).
  uint64_t pooled_rows = 0;
  // The null deviance, once an earlier round's output gave it.
  std::optional<double> null_deviance;
};

struct GlmRoundOutput {
  // This round's objective (GlmObjectiveMetric).
  double objective = 0;
  // β_{round+1} (with a report: the estimate).
  std::vector<double> next;
  // Set when the fit converged or this is the task's last round.
  std::optional<v1::GlmReport> report;
  // Set by the round whose sums were taken at the null model (kept by the runner as the
  // round's "null_deviance" metric, and passed back in later rounds).
  std::optional<double> null_deviance;
};

absl::StatusOr<GlmRoundOutput> GlmRound(const GlmRoundInput& in);

// β_1: zeros, one per coefficient for a cohort of `num_sites`.
absl::StatusOr<std::vector<double>> GlmFirstCoefficients(const v1::TaskSpec& spec,
                                                         size_t num_sites);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_GLM_ROUNDS_H_
