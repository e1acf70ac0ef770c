// What a task would send out of this site, for the site's staff deciding on it (`tessera-client
// tasks show`): per stage, what the masked vector holds, its size (from the same layouts and
// encodings the site's sessions use: secagg::StageEncoding) and whether this site adds
// differential-privacy noise to it; the dataset and columns read; the local policy's verdict.
//
// Pure functions of the spec and the config; thread-safe.
#ifndef TESSERA_CLIENT_TASK_EGRESS_H_
#define TESSERA_CLIENT_TASK_EGRESS_H_

#include "proto/config.pb.h"
#include "proto/site_control.pb.h"
#include "proto/task.pb.h"

namespace tessera::client {

// Fills out->dataset, columns, stages and policy for `spec` (canonical, as a work item
// carries it) at a site configured by `config` (its datasets and policy).
void DescribeTask(const v1::TaskSpec& spec, const v1::ClientConfig& config,
                  v1::ShowTaskResponse* out);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_TASK_EGRESS_H_
