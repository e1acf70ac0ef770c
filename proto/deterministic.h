// The one way Tessera serialises a message whose bytes must not depend on how the message
// was built: hashed (crypto::HashMessage, secagg::SetupDigest), recorded in a site's
// egress ledger (client::SentBytes), exported (ONNX) or compared in tests. Protobuf's
// deterministic serialisation: map entries in key order, fields in field-number order.
// Pure; thread-safe.
#ifndef TESSERA_PROTO_DETERMINISTIC_H_
#define TESSERA_PROTO_DETERMINISTIC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "google/protobuf/message_lite.h"

namespace tessera::proto {

// `message`'s deterministic wire bytes. INTERNAL, "cannot serialise <what>", if protobuf
// refuses (a message of 2 GiB or more); an in-memory message otherwise always serialises.
absl::StatusOr<std::string> DeterministicBytes(const google::protobuf::MessageLite& message,
                                               std::string_view what);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_DETERMINISTIC_H_
