// The one narrow door through which anything leaves the site. What is computed from local
// data only passes it inside secure-aggregation messages (masked input, encrypted shares,
// public keys, signatures): the daemon's SecureSessions turn the site's vector into them.
// Wrapping a sink (an egress ledger, a test recorder) sees everything that leaves.
#ifndef TESSERA_CLIENT_UPDATE_SINK_H_
#define TESSERA_CLIENT_UPDATE_SINK_H_

#include <memory>

#include "absl/status/status.h"

namespace tessera::v1 {
class PushResultRequest;
class WorkItem;
}  // namespace tessera::v1

namespace tessera::client {

class UpdateSink {
 public:
  virtual ~UpdateSink() = default;
  // Sends this site's answer to `item` (a secure-aggregation message or a decline).
  // UNAVAILABLE/DEADLINE_EXCEEDED: the coordinator could not be reached (the daemon
  // reconnects); other codes: the coordinator refused the answer (logged, not retried).
  virtual absl::Status Send(const v1::WorkItem& item, const v1::PushResultRequest& answer) = 0;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_UPDATE_SINK_H_
