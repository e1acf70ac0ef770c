// The one narrow door through which anything computed from local data leaves the site.
// The daemon hands every answer to an UpdateSink; the plain gRPC sink sends the vector as
// it is, and the secure-aggregation sink (a later stage of the project) will mask it first.
// Wrapping a sink (an egress ledger, a test recorder) sees everything that leaves.
#ifndef TESSERA_CLIENT_UPDATE_SINK_H_
#define TESSERA_CLIENT_UPDATE_SINK_H_

#include <memory>
#include <span>

#include "absl/status/status.h"

namespace tessera::v1 {
class Decline;
class WorkItem;
}  // namespace tessera::v1

namespace tessera::client {

class UpdateSink {
 public:
  virtual ~UpdateSink() = default;
  // Sends this site's contribution to `item`. UNAVAILABLE/DEADLINE_EXCEEDED: the
  // coordinator could not be reached (the daemon reconnects); other codes: the coordinator
  // refused the answer (logged, not retried).
  virtual absl::Status Send(const v1::WorkItem& item, std::span<const double> contribution) = 0;
  // Tells the coordinator this site will not answer `item`, and why.
  virtual absl::Status Decline(const v1::WorkItem& item, const v1::Decline& decline) = 0;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_UPDATE_SINK_H_
