// A site's part of an exact regression (ModelSpec.GlmSpec, stage STAGE_GLM): the sums of
// its training rows that one Newton round needs at the global coefficients, flattened for
// secure aggregation (proto/glm_layout.h). The design matrix is built here, identically at
// every site: the intercept (or, with site fixed effects, one column per site of the
// cohort, 1 on this site's rows), then the features as they are in the file; the offset
// (its log with log_offset) and the prior weights from their columns.
//
// Errors: INVALID_ARGUMENT for rows the task cannot use, naming the file and the column or
// row but never a value (a label outside the family's range, a non-positive offset under
// log_offset, a negative weight, a time that is not > 0, an event that is not 0 or 1) —
// the site declines DATA_ERROR with it; FAILED_PRECONDITION for an item that does not fit
// the task (the coefficients' count or a non-finite one, the site list) — BAD_WORK_ITEM.
//
// Thread-compatible: pure functions of their arguments.
#ifndef TESSERA_CLIENT_GLM_WORK_H_
#define TESSERA_CLIENT_GLM_WORK_H_

#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/csv.h"

namespace tessera::v1 {
class TaskSpec;
}  // namespace tessera::v1

namespace tessera::client {

// Where this site's intercept is: `own_site` in `sites` (site fixed effects), the cohort.
struct GlmSitePlace {
  std::vector<std::string> sites;
  std::string own_site;
  // A pooled Cox model (GlmSpec.pooled_time_grid): the pooled means of the features (the
  // item's standardisation), by which every site centres its covariates.
  std::vector<double> feature_means;
};

// The flat sums of `table`'s rows at `coefficients` (glm::Flatten or glm::FlattenCox).
// `source` names the file in errors.
absl::StatusOr<std::vector<double>> GlmContribution(const v1::TaskSpec& spec, const CsvTable& table,
                                                    const std::string& source,
                                                    std::span<const double> coefficients,
                                                    const GlmSitePlace& place);

// Whether `table`'s rows can serve the task (the checks above), for the statistics round.
absl::Status CheckGlmRows(const v1::TaskSpec& spec, const CsvTable& table,
                          const std::string& source);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_GLM_WORK_H_
