// TESSERA_SECAGG_CHECK: the crash tier for broken invariants inside tessera_secagg (a
// caller that ignores a documented precondition, or a primitive failing where it can only
// fail on allocation failure or a broken library). Never for bad input, which gets a Status
// (a peer's message) or a recorded drop or abort. The message names the condition only,
// never a value (which could be key material).
#ifndef TESSERA_SECAGG_INTERNAL_CHECK_H_
#define TESSERA_SECAGG_INTERNAL_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define TESSERA_SECAGG_CHECK(condition)                                                  \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#endif  // TESSERA_SECAGG_INTERNAL_CHECK_H_
