// Seeded shuffling for local training. The generator is common::SplitMix64 (shared with
// the coordinator's parameter initialisation in proto/model_layout.cc); its output, and so
// every shuffle, is fixed by our own code rather than by the standard library.
#ifndef TESSERA_CLIENT_INTERNAL_RANDOM_H_
#define TESSERA_CLIENT_INTERNAL_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "common/splitmix64.h"

namespace tessera::client::internal {

using SplitMix64 = ::tessera::common::SplitMix64;

// Fisher-Yates (Durstenfeld) shuffle of `items` driven by `rng`.
inline void Shuffle(SplitMix64& rng, std::span<size_t> items) {
  for (size_t i = items.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.Below(i));
    std::swap(items[i - 1], items[j]);
  }
}

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_RANDOM_H_
