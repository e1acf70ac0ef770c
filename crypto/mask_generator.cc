#include "crypto/mask_generator.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"
#include "crypto/internal/check.h"
#include "crypto/internal/openssl_util.h"

namespace tessera::crypto {
namespace {

constexpr size_t kBlockBytes = 16;
constexpr size_t kWordsPerBlock = kBlockBytes / sizeof(uint32_t);
// Keystream bytes per EVP call (a whole number of blocks): large enough that the call
// overhead is negligible per word, small enough that the zeros it reads stay in L1.
constexpr size_t kZeroBytes = 16 * 1024;
// AddTo/SubtractFrom expand the keystream into a buffer this size (16 KiB, stays in L1/L2)
// and fold it in; large enough that the EVP call overhead is negligible per word.
constexpr size_t kBufferWords = 4096;

// initial + block, as 128-bit big-endian integers, mod 2^128.
std::array<uint8_t, 16> CounterAt(const std::array<uint8_t, 16>& initial, uint64_t block) {
  std::array<uint8_t, 16> counter = initial;
  uint64_t carry = block;  // what is left to add, from the current byte up
  for (int i = 15; i >= 0 && carry != 0; --i) {
    const uint64_t sum = uint64_t{counter[i]} + (carry & 0xff);
    counter[i] = static_cast<uint8_t>(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  return counter;
}

// The keystream from one word on, in order. OpenSSL's CTR mode increments the whole
// 128-bit counter block big-endian (carrying past the low 32 bits), as the header
// promises, so one context can run across any counter boundary.
class Keystream {
 public:
  Keystream(const SecretBytes& key, const std::array<uint8_t, 16>& initial_counter,
            uint64_t first_word)
      : ctx_(EVP_CIPHER_CTX_new()) {
    TESSERA_CRYPTO_CHECK(ctx_ != nullptr);
    const std::array<uint8_t, 16> counter = CounterAt(initial_counter, first_word / kWordsPerBlock);
    TESSERA_CRYPTO_CHECK(EVP_EncryptInit_ex(ctx_.get(), EVP_aes_128_ctr(), nullptr, key.data(),
                                            counter.data()) == 1);
    // Start mid-block: run the stream past the words before `first_word`.
    const size_t skip = (first_word % kWordsPerBlock) * sizeof(uint32_t);
    if (skip != 0) {
      unsigned char scratch[kBlockBytes];
      Encrypt(scratch, skip);
      OPENSSL_cleanse(scratch, sizeof(scratch));
    }
  }

  // The next out.size() words.
  void Next(std::span<uint32_t> out) {
    if (out.empty()) return;
    Encrypt(reinterpret_cast<unsigned char*>(out.data()), out.size_bytes());
    if constexpr (std::endian::native == std::endian::big) {
      for (uint32_t& word : out) word = __builtin_bswap32(word);
    }
  }

 private:
  // The keystream is the encryption of zeros. Reading them from a small constant buffer
  // (it stays in L1) rather than zeroing `out` first saves a pass over a large output.
  void Encrypt(unsigned char* out, size_t size) {
    static constexpr unsigned char kZeros[kZeroBytes] = {};
    for (size_t done = 0; done < size;) {
      const size_t chunk = std::min(size - done, kZeroBytes);
      int len = 0;
      TESSERA_CRYPTO_CHECK(
          EVP_EncryptUpdate(ctx_.get(), out + done, &len, kZeros, static_cast<int>(chunk)) == 1 &&
          static_cast<size_t>(len) == chunk);
      done += chunk;
    }
  }

  internal::UniqueEvpCipherCtx ctx_;
};

template <typename Op>
void Fold(const SecretBytes& key, const std::array<uint8_t, 16>& initial_counter,
          uint64_t first_word, std::span<uint32_t> acc, Op op) {
  Keystream stream(key, initial_counter, first_word);
  uint32_t buffer[kBufferWords];
  for (size_t done = 0; done < acc.size();) {
    const size_t n = std::min(acc.size() - done, kBufferWords);
    stream.Next(std::span<uint32_t>(buffer, n));
    uint32_t* target = acc.data() + done;
    for (size_t i = 0; i < n; ++i) target[i] = op(target[i], buffer[i]);
    done += n;
  }
  // The buffer held mask words.
  OPENSSL_cleanse(buffer, sizeof(buffer));
}

}  // namespace

absl::StatusOr<MaskGenerator> MaskGenerator::Create(
    const SecretBytes& key, const std::array<uint8_t, 16>& initial_counter) {
  if (key.size() != kKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask generator key must be ", kKeyBytes, " bytes, got ", key.size()));
  }
  return MaskGenerator(key.Clone(), initial_counter);
}

void MaskGenerator::Generate(uint64_t first_word, std::span<uint32_t> out) const {
  if (out.empty()) return;
  Keystream(key_, initial_counter_, first_word).Next(out);
}

void MaskGenerator::AddTo(uint64_t first_word, std::span<uint32_t> acc) const {
  if (acc.empty()) return;
  Fold(key_, initial_counter_, first_word, acc, [](uint32_t a, uint32_t m) { return a + m; });
}

void MaskGenerator::SubtractFrom(uint64_t first_word, std::span<uint32_t> acc) const {
  if (acc.empty()) return;
  Fold(key_, initial_counter_, first_word, acc, [](uint32_t a, uint32_t m) { return a - m; });
}

}  // namespace tessera::crypto
