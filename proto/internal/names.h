// The shapes of names in task files and configs, shared by the validators.
#ifndef TESSERA_PROTO_INTERNAL_NAMES_H_
#define TESSERA_PROTO_INTERNAL_NAMES_H_

#include <string>

#include "absl/strings/ascii.h"

namespace tessera::proto::internal {

inline bool IsNameChar(char c, bool allow_upper) {
  if (absl::ascii_isdigit(c) || absl::ascii_islower(c)) return true;
  if (allow_upper && absl::ascii_isupper(c)) return true;
  return c == '.' || c == '_' || c == '-';
}

// 1..64 characters from [a-z0-9._-] ([A-Za-z0-9._-] with `allow_upper`).
inline bool IsValidName(const std::string& s, bool allow_upper) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!IsNameChar(c, allow_upper)) return false;
  }
  return true;
}

// A CSV header name: 1..256 bytes, no comma, quote or control character.
inline bool IsValidColumnName(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s) {
    if (c == ',' || c == '"' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

// A SHA-256 digest as 64 lowercase hex digits.
inline bool IsLowerHexSha256(const std::string& s) {
  bool hex = s.size() == 64;
  for (char c : s) hex = hex && absl::ascii_isxdigit(c) && !absl::ascii_isupper(c);
  return hex;
}

}  // namespace tessera::proto::internal

#endif  // TESSERA_PROTO_INTERNAL_NAMES_H_
