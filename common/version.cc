#include "common/version.h"

#ifndef TESSERA_VERSION
#error "TESSERA_VERSION must be defined by the build (common/CMakeLists.txt)"
#endif

namespace tessera::common {

std::string_view Version() { return TESSERA_VERSION; }

bool VersionRequested(const std::vector<std::string>& args) {
  return args.size() == 1 && args[0] == "--version";
}

std::string VersionLine(std::string_view program) {
  std::string line(program);
  line += " ";
  line += Version();
  line += "\n";
  return line;
}

}  // namespace tessera::common
