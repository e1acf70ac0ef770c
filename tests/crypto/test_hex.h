// Hex decoding for known-answer vectors in the crypto tests (ToHex is in crypto/hash.h).
#ifndef TESSERA_TESTS_CRYPTO_TEST_HEX_H_
#define TESSERA_TESTS_CRYPTO_TEST_HEX_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/secret.h"

namespace tessera::crypto::testing {

// Bytes from lowercase or uppercase hex; aborts on malformed input (a broken vector).
inline std::string FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    std::fprintf(stderr, "bad hex digit in a test vector\n");
    std::abort();
  };
  if (hex.size() % 2 != 0) {
    std::fprintf(stderr, "odd-length hex in a test vector\n");
    std::abort();
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

inline SecretBytes SecretFromHex(std::string_view hex) { return SecretBytes(FromHex(hex)); }

}  // namespace tessera::crypto::testing

#endif  // TESSERA_TESTS_CRYPTO_TEST_HEX_H_
