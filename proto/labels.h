// Short lower-case labels of stages and secure-aggregation steps, for work ids, session
// labels and log lines ("fit", "masked_input"), shared by the coordinator and the client.
#ifndef TESSERA_PROTO_LABELS_H_
#define TESSERA_PROTO_LABELS_H_

#include <string>

#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"

namespace tessera::proto {

// "statistics", "fit", "evaluate", "analytics"; "unknown" otherwise.
const char* StageLabel(v1::Stage stage);

// "advertise_keys", "share_keys", "masked_input", "consistency_check", "unmasking".
std::string StepLabel(v1::SecAggRound step);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_LABELS_H_
