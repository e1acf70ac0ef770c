// How the console prints tasks, rounds, sites' decisions and answers, and clients: shared by
// admin_commands.cc and tasks_show_command.cc (and whatever else prints a task). Output only;
// no network.
#ifndef TESSERA_COORDINATOR_CONSOLE_TASK_TABLES_H_
#define TESSERA_COORDINATOR_CONSOLE_TASK_TABLES_H_

#include <string>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/admin.pb.h"
#include "proto/state.pb.h"

namespace tessera::console::internal {

// "RUNNING" for TASK_RUNNING.
std::string ShortState(v1::TaskState s);
// A metric's value as printed: counts without decimals, others with four.
std::string FormatMetric(const std::string& name, double v);
// The metric names used across `rounds`, in first-seen order.
std::vector<std::string> MetricNames(
    const google::protobuf::RepeatedPtrField<v1::RoundRecord>& rounds);
// A round's row and the header of such rows (ROUND SITES ATTEMPTS <metrics> COMMITTED).
std::vector<std::string> RoundRow(const v1::RoundRecord& r, const std::vector<std::string>& names);
std::vector<std::string> RoundHeader(const std::vector<std::string>& names);
// Cells left-aligned in columns of the given widths, two spaces apart.
std::string PadRow(const std::vector<std::string>& cells, const std::vector<size_t>& widths);
// Prints rows as an aligned table.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

// The task's header lines (id, state and reason, why it waits, rounds, dataset, spec).
void PrintTaskSummary(const v1::TaskRecord& t);
// Each site's decision on the task, as the coordinator last heard it.
void PrintSiteDecisions(const v1::TaskRecord& t);
// Under `title`, one row per site and session: ROUND STAGE ATTEMPT SITE ANSWER DETAIL, and
// each session's outcome. Nothing when `attempts` is empty.
void PrintAttempts(const std::string& title,
                   const google::protobuf::RepeatedPtrField<v1::StageAttempt>& attempts);

// An exact regression's report as R's summary prints it: one row per coefficient (TERM
// ESTIMATE STD_ERROR Z|T P CI_LOW CI_HIGH, and for binomial, Poisson and Cox the ratio
// exp(estimate) with its interval: ODDS_RATIO, RATE_RATIO, HAZARD_RATIO), then the fit's
// deviance, AIC and iterations (the partial log-likelihood and events for Cox).
void PrintGlmReport(const v1::GlmReport& report);
// A task with a validation split (TrainingSpec.validation_fraction): what the rounds'
// metrics are on, the selected round and why, and its test metrics ("test  round 7 on the
// test rows of 3 sites: loss=0.3200 accuracy=0.8700"). Nothing without a split.
void PrintSelection(const v1::TaskRecord& t);

}  // namespace tessera::console::internal

#endif  // TESSERA_COORDINATOR_CONSOLE_TASK_TABLES_H_
