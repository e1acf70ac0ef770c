#include "client/internal/work_outcomes.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/policy.h"
#include "common/log.h"

namespace tessera::client::internal {

WorkOutcome Declined(v1::Decline::Reason reason, std::string detail) {
  WorkOutcome out;
  out.decline.set_reason(reason);
  out.decline.set_detail(std::move(detail));
  return out;
}

WorkOutcome DataDeclined(const v1::WorkItem& item, const absl::Status& status) {
  common::LogWarning("local_data_error")
      .With("task", item.task_id())
      .With("round", item.round())
      .With("error", std::string(status.message()));
  for (const std::string& column : TaskColumns(item.spec())) {
    if (absl::StrContains(status.message(), absl::StrCat("column '", column, "' not found"))) {
      return Declined(v1::Decline::DATA_ERROR,
                      absl::StrCat("the task's column '", column,
                                   "' is not in the local dataset (details in the site's log)"));
    }
    const std::string has = absl::StrCat("column '", column, "' has ");
    for (const auto& [says, means] : std::vector<std::pair<const char*, const char*>>{
             {"declared levels", "a cell that is not one of its declared levels"},
             {"domain", "a cell outside its transform's domain"},
             {"cells that are missing", "missing cells, which the task refuses"}}) {
      if (absl::StrContains(status.message(), has) && absl::StrContains(status.message(), says)) {
        return Declined(v1::Decline::DATA_ERROR,
                        absl::StrCat("the task's column '", column, "' has ", means,
                                     " in the local dataset (details in the site's log)"));
      }
    }
    if (absl::StrContains(status.message(), has) &&
        absl::StrContains(status.message(), "not finite numbers")) {
      return Declined(v1::Decline::DATA_ERROR,
                      absl::StrCat("the task's column '", column,
                                   "' has cells that are not numbers (empty, NA or text) in the "
                                   "local dataset (details in the site's log)"));
    }
  }
  return Declined(v1::Decline::DATA_ERROR,
                  "local data cannot be used for this task (details in the site's log)");
}

WorkOutcome Contributed(std::vector<double> values) {
  WorkOutcome out;
  out.contribution = std::move(values);
  return out;
}

}  // namespace tessera::client::internal
