// SecretBytes: bytes that must not outlive their use or leak into logs — private keys,
// shared secrets, seeds. Wiped with OPENSSL_cleanse when destroyed or overwritten,
// compared in constant time, never printed. Move-only; copy explicitly with Clone().
#ifndef TESSERA_CRYPTO_SECRET_H_
#define TESSERA_CRYPTO_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::crypto {

class SecretBytes {
 public:
  SecretBytes() = default;
  // Takes `bytes`; the caller's string is wiped and left empty.
  explicit SecretBytes(std::string&& bytes);
  // Copies from a view the caller will wipe itself.
  static SecretBytes CopyFrom(std::string_view bytes);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const { return CopyFrom(bytes_); }

  // Read-only view; do not copy it into anything that is not wiped.
  std::string_view view() const { return bytes_; }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(bytes_.data()); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }

  // Constant-time equality (CRYPTO_memcmp); sizes are not secret.
  bool Equals(const SecretBytes& other) const;

 private:
  void Wipe();
  std::string bytes_;
};

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_SECRET_H_
