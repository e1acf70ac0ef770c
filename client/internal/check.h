// TESSERA_CLIENT_CHECK: the crash tier for broken internal invariants (a caller that
// ignores a documented precondition), never for bad input, which gets a Status.
#ifndef TESSERA_CLIENT_INTERNAL_CHECK_H_
#define TESSERA_CLIENT_INTERNAL_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define TESSERA_CLIENT_CHECK(condition)                                                  \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#endif  // TESSERA_CLIENT_INTERNAL_CHECK_H_
