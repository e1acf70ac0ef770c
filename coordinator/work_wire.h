// A work item on the wire: the PullWork response built from a posted item (work_board.h)
// without copying what every site's item of a step shares.
//
// The response is the client's own fields, serialized per call (a few hundred bytes to a
// few kilobytes: its secure-aggregation message), followed by the step's shared bytes (the
// set-up's spec, model and standardisation) as one reference-counted slice over the
// board's copy. Protobuf merges concatenated fields, so the client parses an ordinary
// PullWorkResponse. A step sent to n sites thus holds the model once, not n times.
//
// Thread-safe (a pure function; the slice keeps the shared bytes alive until gRPC has sent
// them).
#ifndef TESSERA_COORDINATOR_WORK_WIRE_H_
#define TESSERA_COORDINATOR_WORK_WIRE_H_

#include <string_view>

#include "coordinator/work_board.h"
#include "grpcpp/support/byte_buffer.h"

namespace tessera::coordinator {

// The serialized v1::PullWorkResponse whose `work` is `item.Whole()` with `crl_pem` set.
grpc::ByteBuffer PullWorkResponseBytes(const PostedItem& item, std::string_view crl_pem);

// The serialized empty v1::PullWorkResponse (no work yet): zero bytes, but a valid buffer,
// which an answered raw method must have.
grpc::ByteBuffer EmptyPullWorkResponse();

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_WORK_WIRE_H_
