// Fuzz target: the daemons' config files — the coordinator's, the site daemon's and the
// console's — parsed as text format with locations and validated as each program does at
// start (and the site daemon at every reload). The first byte picks the kind. For a valid
// config the defaults are applied and the result must still be valid (but for the site's
// default control socket, whose length the daemon checks when it binds it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/proto_text.h"
#include "proto/config.pb.h"
#include "proto/validation.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using tessera::common::FieldError;

template <typename Config>
bool IsDerivedSocket(const Config&, const FieldError&) {
  return false;
}
bool IsDerivedSocket(const tessera::v1::ClientConfig& before, const FieldError& e) {
  return e.path == "control_socket" && before.control_socket().empty();
}

template <typename Config, typename Validate, typename Defaults>
void Check(const std::string& text, Validate validate, Defaults defaults) {
  Config config;
  tessera::common::TextLocations where;
  if (!tessera::common::ParseTextProto(text, "config.textproto", &config, &where).ok()) return;
  const std::vector<FieldError> errors = validate(config);
  if (!errors.empty()) {
    if (tessera::common::FieldErrorsToStatus(errors, "config.textproto", &where).ok()) std::abort();
    return;
  }
  const Config before = config;
  defaults(&config);
  std::vector<FieldError> after = validate(config);
  // By design (proto/validation.cc) the default control socket, derived from data_dir, is
  // checked when the daemon binds it, not here.
  std::erase_if(after, [&](const FieldError& e) { return IsDerivedSocket(before, e); });
  if (!after.empty()) {  // the defaults made a valid config invalid
    std::fprintf(stderr, "after defaults: %s: %s\n", after[0].path.c_str(),
                 after[0].message.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  fuzz::FuzzInput in(data, size);
  const uint8_t kind = in.Byte() % 3;
  const std::string text(in.Rest());
  if (kind == 0) {
    Check<v1::CoordinatorConfig>(text, proto::ValidateCoordinatorConfig,
                                 proto::ApplyCoordinatorDefaults);
  } else if (kind == 1) {
    Check<v1::ClientConfig>(text, proto::ValidateClientConfig, proto::ApplyClientDefaults);
  } else {
    Check<v1::ConsoleConfig>(text, proto::ValidateConsoleConfig, [](v1::ConsoleConfig*) {});
  }
  return 0;
}
