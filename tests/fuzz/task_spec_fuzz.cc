// Fuzz target: a task file as the console, the coordinator and a site read it — text-format
// parse with locations, range expansion, ValidateTaskSpec, and for a valid spec the
// defaults, the spec hash and the model's parameter count. Checks two promises of
// proto/validation.h: ApplyTaskDefaults is idempotent, and a valid spec stays valid once
// its defaults are applied.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/proto_text.h"
#include "crypto/hash.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"
#include "proto/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const std::string text(reinterpret_cast<const char*>(data), size);
  v1::TaskSpec spec;
  common::TextLocations where;
  if (!common::ParseTextProto(text, "task.textproto", &spec, &where).ok()) return 0;
  const std::vector<common::FieldError> errors = proto::ValidateTaskSpec(spec);
  const absl::Status status = common::FieldErrorsToStatus(errors, "task.textproto", &where);
  if (!errors.empty()) {
    if (status.ok()) std::abort();  // errors must make an error
    return 0;
  }
  proto::ApplyTaskDefaults(&spec);
  const std::string hash = crypto::HashTaskSpec(spec);
  if (!proto::ValidateTaskSpec(spec).empty()) std::abort();  // defaults made it invalid
  v1::TaskSpec again = spec;
  proto::ApplyTaskDefaults(&again);
  if (crypto::HashTaskSpec(again) != hash) std::abort();  // not idempotent
  if (spec.has_model()) {
    (void)proto::NumParameters(spec.model(), static_cast<size_t>(spec.dataset().features_size()));
  }
  (void)common::ToTextProto(spec);
  return 0;
}
