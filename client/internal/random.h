// A small seeded generator whose output is fixed by this file alone, not by the standard
// library: std::shuffle and the std distributions differ between libstdc++, libc++ and
// MSVC, and a federated task must give the same model on every site's build.
#ifndef TESSERA_CLIENT_INTERNAL_RANDOM_H_
#define TESSERA_CLIENT_INTERNAL_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace tessera::client::internal {

// SplitMix64 (Steele, Lea & Flood 2014; constants as in Vigna's reference code).
// Not for cryptography.
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

 private:
  uint64_t state_;
};

// Fisher-Yates (Durstenfeld) shuffle of `items` driven by `rng`.
inline void Shuffle(SplitMix64& rng, std::span<size_t> items) {
  for (size_t i = items.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.Below(i));
    std::swap(items[i - 1], items[j]);
  }
}

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_RANDOM_H_
