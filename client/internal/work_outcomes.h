// The outcomes of a work item that client/work_processor.cc and
// client/work_processor_statistics.cc both make: a decline with its reason, a decline for a
// local data problem (which says nothing of the site's data), and a contribution.
#ifndef TESSERA_CLIENT_INTERNAL_WORK_OUTCOMES_H_
#define TESSERA_CLIENT_INTERNAL_WORK_OUTCOMES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/work_processor.h"
#include "proto/federation.pb.h"

namespace tessera::client::internal {

// A decline with `reason` and `detail` (which must hold nothing computed from local data).
WorkOutcome Declined(v1::Decline::Reason reason, std::string detail);

// A local data problem (`status`), explained in the site's own log only: the coordinator
// learns that the site cannot take part, not the file's paths, headers or cells. One
// exception, which names nothing of the site's: a column of the task (the task's own word)
// that the local file lacks, or whose cells the task cannot use.
WorkOutcome DataDeclined(const v1::WorkItem& item, const absl::Status& status);

// A contribution of `values`.
WorkOutcome Contributed(std::vector<double> values);

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_WORK_OUTCOMES_H_
