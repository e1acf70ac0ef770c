#include "crypto/hash.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "crypto/internal/openssl_util.h"
#include "proto/deterministic.h"
#include "proto/task.pb.h"

namespace tessera::crypto {
namespace {

using internal::UniqueEvpMdCtx;

// SHA-256 only fails on allocation failure or a broken libcrypto: a broken invariant,
// not an input error, so it crashes rather than return a hash of nothing.
[[noreturn]] void DigestFailed() {
  std::fprintf(stderr, "tessera: SHA-256 failed inside OpenSSL\n");
  std::abort();
}

class Sha256Hasher {
 public:
  Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
      DigestFailed();
    }
  }
  void Update(const void* data, size_t size) {
    if (size != 0 && EVP_DigestUpdate(ctx_.get(), data, size) != 1) DigestFailed();
  }
  std::string Finish() {
    std::string out(SHA256_DIGEST_LENGTH, '\0');
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
        len != SHA256_DIGEST_LENGTH) {
      DigestFailed();
    }
    return out;
  }

 private:
  UniqueEvpMdCtx ctx_;
};

}  // namespace

struct Sha256Stream::Impl {
  Sha256Hasher hasher;
};

Sha256Stream::Sha256Stream() : impl_(std::make_unique<Impl>()) {}
Sha256Stream::~Sha256Stream() = default;
void Sha256Stream::Update(std::string_view data) { impl_->hasher.Update(data.data(), data.size()); }
std::string Sha256Stream::Finish() { return impl_->hasher.Finish(); }

std::string Sha256(std::string_view data) {
  Sha256Hasher hasher;
  hasher.Update(data.data(), data.size());
  return hasher.Finish();
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string HashMessage(const google::protobuf::MessageLite& message) {
  // Map entries in key order; without it two equal messages could hash differently.
  absl::StatusOr<std::string> serialized = proto::DeterministicBytes(message, "a hashed message");
  if (!serialized.ok()) DigestFailed();
  return Sha256(*serialized);
}

std::string HashTaskSpec(const v1::TaskSpec& spec) { return HashMessage(spec); }

std::string HashModel(std::span<const float> parameters) {
  static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559,
                "HashModel needs IEEE-754 binary32 floats");
  Sha256Hasher hasher;
  // Encode in chunks so the hash is the same on big-endian hosts without a full copy.
  std::array<unsigned char, 4096> buffer;
  size_t used = 0;
  for (float value : parameters) {
    const uint32_t bits = std::bit_cast<uint32_t>(value);
    buffer[used++] = static_cast<unsigned char>(bits);
    buffer[used++] = static_cast<unsigned char>(bits >> 8);
    buffer[used++] = static_cast<unsigned char>(bits >> 16);
    buffer[used++] = static_cast<unsigned char>(bits >> 24);
    if (used == buffer.size()) {
      hasher.Update(buffer.data(), used);
      used = 0;
    }
  }
  hasher.Update(buffer.data(), used);
  return hasher.Finish();
}

std::string HashCoefficients(std::span<const double> coefficients) {
  static_assert(sizeof(double) == 8 && std::numeric_limits<double>::is_iec559,
                "HashCoefficients needs IEEE-754 binary64 doubles");
  Sha256Hasher hasher;
  static constexpr char kDomain[] = "tessera/glm-coefficients/v1";
  hasher.Update(reinterpret_cast<const unsigned char*>(kDomain), sizeof(kDomain) - 1);
  for (double value : coefficients) {
    const uint64_t bits = std::bit_cast<uint64_t>(value);
    std::array<unsigned char, 8> word;
    for (size_t i = 0; i < word.size(); ++i) word[i] = static_cast<unsigned char>(bits >> (8 * i));
    hasher.Update(word.data(), word.size());
  }
  return hasher.Finish();
}

}  // namespace tessera::crypto
