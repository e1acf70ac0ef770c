#include "common/status.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace tessera::common {

absl::Status Annotate(const absl::Status& status, const std::string& prefix) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, ": ", status.message()));
}

}  // namespace tessera::common
