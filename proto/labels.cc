#include "proto/labels.h"

#include "absl/strings/ascii.h"

namespace tessera::proto {

const char* StageLabel(v1::Stage stage) {
  switch (stage) {
    case v1::STAGE_STATISTICS:
      return "statistics";
    case v1::STAGE_FIT:
      return "fit";
    case v1::STAGE_EVALUATE:
      return "evaluate";
    case v1::STAGE_ANALYTICS:
      return "analytics";
    default:
      return "unknown";
  }
}

std::string StepLabel(v1::SecAggRound step) {
  std::string name = v1::SecAggRound_Name(step);
  return name.rfind("SECAGG_", 0) == 0 ? absl::AsciiStrToLower(name.substr(7)) : name;
}

}  // namespace tessera::proto
