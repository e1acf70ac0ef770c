#include "crypto/secret.h"

#include <openssl/crypto.h>

#include <string>
#include <utility>

namespace tessera::crypto {
namespace {

// Overwrites every byte `s` owns, including the unused capacity and the small-string
// buffer a move may have left holding a copy, then empties it.
void WipeString(std::string& s) {
  s.resize(s.capacity());
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace

SecretBytes::SecretBytes(std::string&& bytes) : bytes_(std::move(bytes)) { WipeString(bytes); }

SecretBytes SecretBytes::CopyFrom(std::string_view bytes) {
  SecretBytes out;
  // Reserve first so the copy never reallocates and leaves a stray copy behind.
  out.bytes_.reserve(bytes.size());
  out.bytes_.assign(bytes.data(), bytes.size());
  return out;
}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.Wipe();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    other.Wipe();
  }
  return *this;
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (bytes_.size() != other.bytes_.size()) return false;
  if (bytes_.empty()) return true;
  return CRYPTO_memcmp(bytes_.data(), other.bytes_.data(), bytes_.size()) == 0;
}

void SecretBytes::Wipe() { WipeString(bytes_); }

}  // namespace tessera::crypto
