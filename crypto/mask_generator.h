// The mask generator of secure aggregation: AES-128 in counter mode, its keystream read as
// little-endian 32-bit words.
//
// Block k of the keystream is AES-128(key, C0 + k), with C0 the 128-bit big-endian initial
// counter (zero in the protocol) and the addition mod 2^128. Word i is keystream bytes
// [4i, 4i + 4) read little-endian. Any range of words can be generated on its own ("seek"
// by block counter), so expanding a long mask can be split over threads and always gives
// the same words.
//
// Thread-safe: const methods may run concurrently (each call uses its own cipher context).
#ifndef TESSERA_CRYPTO_MASK_GENERATOR_H_
#define TESSERA_CRYPTO_MASK_GENERATOR_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::crypto {

class MaskGenerator {
 public:
  static constexpr size_t kKeyBytes = 16;

  // INVALID_ARGUMENT unless `key` is 16 bytes.
  static absl::StatusOr<MaskGenerator> Create(const SecretBytes& key,
                                              const std::array<uint8_t, 16>& initial_counter = {});

  // out[i] = word(first_word + i).
  void Generate(uint64_t first_word, std::span<uint32_t> out) const;
  // acc[i] += word(first_word + i)  (mod 2^32)
  void AddTo(uint64_t first_word, std::span<uint32_t> acc) const;
  // acc[i] -= word(first_word + i)  (mod 2^32)
  void SubtractFrom(uint64_t first_word, std::span<uint32_t> acc) const;

 private:
  MaskGenerator(SecretBytes key, const std::array<uint8_t, 16>& initial_counter)
      : key_(std::move(key)), initial_counter_(initial_counter) {}
  SecretBytes key_;
  std::array<uint8_t, 16> initial_counter_;
};

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_MASK_GENERATOR_H_
