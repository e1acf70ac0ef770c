#include "proto/labels.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

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
    case v1::STAGE_FIT_EVALUATE:
      return "fit_evaluate";
    case v1::STAGE_GLM:
      return "glm";
    case v1::STAGE_TEST:
      return "test";
    default:
      return "unknown";
  }
}

std::string StepLabel(v1::SecAggRound step) {
  std::string name = v1::SecAggRound_Name(step);
  return name.rfind("SECAGG_", 0) == 0 ? absl::AsciiStrToLower(name.substr(7)) : name;
}

std::string SiteAnswerLabel(const v1::SiteAnswer& a) {
  std::string label = v1::SiteAnswerKind_Name(a.kind());
  if (label.rfind("SITE_ANSWER_", 0) == 0) label = label.substr(12);
  switch (a.kind()) {
    case v1::SITE_ANSWER_DECLINED:
      absl::StrAppend(&label, " ", v1::Decline::Reason_Name(a.decline_reason()));
      break;
    case v1::SITE_ANSWER_DROPPED: {
      std::string reason = v1::SecAggDropReason_Name(a.drop_reason());
      if (reason.rfind("SECAGG_DROP_", 0) == 0) reason = reason.substr(12);
      absl::StrAppend(&label, " at ", StepLabel(a.step()), ": ", reason);
      break;
    }
    case v1::SITE_ANSWER_PENDING:
      absl::StrAppend(&label, " at ", StepLabel(a.step()));
      break;
    default:
      break;
  }
  return label;
}

}  // namespace tessera::proto
