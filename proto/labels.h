// Short lower-case labels of stages and secure-aggregation steps, for work ids, session
// labels and log lines ("fit", "masked_input"), shared by the coordinator and the client;
// and a site's answer in a session as the console and the dashboard print it.
#ifndef TESSERA_PROTO_LABELS_H_
#define TESSERA_PROTO_LABELS_H_

#include <string>

#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"
#include "proto/state.pb.h"

namespace tessera::proto {

// "statistics", "fit", "evaluate", "analytics"; "unknown" otherwise.
const char* StageLabel(v1::Stage stage);

// "advertise_keys", "share_keys", "masked_input", "consistency_check", "unmasking".
std::string StepLabel(v1::SecAggRound step);

// A site's answer in one session, without its detail: "CONTRIBUTED", "DECLINED
// POLICY_REFUSED", "DROPPED at masked_input: NO_ANSWER", "PENDING at share_keys",
// "NOT_CONNECTED". Shared by the console's tables and the dashboard.
std::string SiteAnswerLabel(const v1::SiteAnswer& a);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_LABELS_H_
