// TESSERA_CRYPTO_CHECK: the crash tier for broken invariants inside tessera_crypto (a
// caller that ignores a documented precondition, or OpenSSL failing where it can only fail
// on allocation failure or a broken library). Never for bad input, which gets a Status.
// The message names the condition only, never a value (which could be key material).
#ifndef TESSERA_CRYPTO_INTERNAL_CHECK_H_
#define TESSERA_CRYPTO_INTERNAL_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define TESSERA_CRYPTO_CHECK(condition)                                                  \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#endif  // TESSERA_CRYPTO_INTERNAL_CHECK_H_
