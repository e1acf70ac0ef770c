// The one narrow door through which anything leaves the site. What is computed from local
// data only passes it inside secure-aggregation messages (masked input, encrypted shares,
// public keys, signatures): the daemon's SecureSessions turn the site's vector into them.
// Wrapping a sink (an egress ledger, a test recorder) sees everything that leaves.
#ifndef TESSERA_CLIENT_UPDATE_SINK_H_
#define TESSERA_CLIENT_UPDATE_SINK_H_

#include <memory>

#include "absl/status/status.h"

namespace tessera::v1 {
class Decline;
class SecAggClientMessage;
class WorkItem;
}  // namespace tessera::v1

namespace tessera::client {

class UpdateSink {
 public:
  virtual ~UpdateSink() = default;
  // Sends this site's answer to the secure-aggregation step of `item`.
  // UNAVAILABLE/DEADLINE_EXCEEDED: the coordinator could not be reached (the daemon
  // reconnects); other codes: the coordinator refused the answer (logged, not retried).
  virtual absl::Status Send(const v1::WorkItem& item, const v1::SecAggClientMessage& message) = 0;
  // Tells the coordinator this site will not answer `item`, and why.
  virtual absl::Status Decline(const v1::WorkItem& item, const v1::Decline& decline) = 0;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_UPDATE_SINK_H_
