// SplitMix64: a small seeded generator whose output is fixed by this file alone, not by
// the standard library. std::shuffle and the std distributions differ between libstdc++,
// libc++ and MSVC, and a federated task must give the same shuffles and the same initial
// model on every site's build and on the coordinator. Header-only so that proto/ (initial
// parameters) and client/ (shuffling) share one definition. Not for cryptography.
#ifndef TESSERA_COMMON_SPLITMIX64_H_
#define TESSERA_COMMON_SPLITMIX64_H_

#include <cstdint>

namespace tessera::common {

// Steele, Lea & Flood 2014; constants as in Vigna's reference splitmix64.c.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound), bound > 0, without modulo bias (Lemire 2019, multiply and
  // reject).
  uint64_t Below(uint64_t bound) {
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * bound;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < bound) {
      const uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(Next()) * bound;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform in [0, 1) on the grid k * 2^-53: exact in double, the same everywhere.
  double NextUnit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace tessera::common

#endif  // TESSERA_COMMON_SPLITMIX64_H_
