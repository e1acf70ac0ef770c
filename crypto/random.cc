#include "crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "crypto/internal/openssl_util.h"

namespace tessera::crypto {

absl::StatusOr<SecretBytes> RandomBytes(size_t n) {
  std::string buffer(n, '\0');
  // RAND_bytes takes an int length.
  for (size_t done = 0; done < n;) {
    const size_t chunk = std::min<size_t>(n - done, INT_MAX);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(buffer.data() + done),
                   static_cast<int>(chunk)) != 1) {
      OPENSSL_cleanse(buffer.data(), buffer.size());
      return internal::OpenSslInternal("the random generator failed");
    }
    done += chunk;
  }
  return SecretBytes(std::move(buffer));  // wipes `buffer`
}

absl::StatusOr<uint64_t> RandomUint64() {
  unsigned char bytes[sizeof(uint64_t)];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return internal::OpenSslInternal("the random generator failed");
  }
  uint64_t value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

}  // namespace tessera::crypto
