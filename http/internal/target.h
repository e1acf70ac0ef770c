// Parsing of what arrives as text: request targets (path and query, percent-encoded) and
// listen addresses. Pure functions, no Beast or Asio, tested on their own.
#ifndef TESSERA_HTTP_INTERNAL_TARGET_H_
#define TESSERA_HTTP_INTERNAL_TARGET_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tessera::http::internal {

struct Target {
  std::string path;                          // percent-decoded, starts with '/'
  std::map<std::string, std::string> query;  // percent-decoded, '+' as space; last key wins
};

// Splits and decodes a request target ("/task?id=task-1"). INVALID_ARGUMENT for a target
// that is not origin-form (must start with '/'), a bad percent escape, or a decoded NUL.
absl::StatusOr<Target> ParseTarget(std::string_view target);

// Decodes %XX escapes (and '+' as space when `plus_is_space`). INVALID_ARGUMENT for a
// truncated or non-hex escape or a decoded NUL byte.
absl::StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space);

struct HostPort {
  std::string host;  // an IP address literal, brackets removed ("::1"); "localhost" → 127.0.0.1
  int port = 0;
};

// "127.0.0.1:8080", "[::1]:0", "localhost:8080". INVALID_ARGUMENT naming the address for a
// missing or bad port, an empty host or a host that is not an IP literal or localhost.
absl::StatusOr<HostPort> ParseListenAddress(std::string_view address);

}  // namespace tessera::http::internal

#endif  // TESSERA_HTTP_INTERNAL_TARGET_H_
