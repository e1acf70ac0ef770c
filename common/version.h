// The version of the Tessera programs: CMake's project version (CMakeLists.txt), the same
// for every binary built from one tree. `--version` on each program prints it. Stateless;
// thread-safe.
#ifndef TESSERA_COMMON_VERSION_H_
#define TESSERA_COMMON_VERSION_H_

#include <string>
#include <string_view>
#include <vector>

namespace tessera::common {

// "0.1.0".
std::string_view Version();

// True if the arguments (after the program name) are exactly `--version`.
bool VersionRequested(const std::vector<std::string>& args);

// "<program> <version>\n", what `--version` prints.
std::string VersionLine(std::string_view program);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_VERSION_H_
