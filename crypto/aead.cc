#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/internal/openssl_util.h"

namespace tessera::crypto {
namespace {

using internal::OpenSslInternal;
using internal::UniqueEvpCipherCtx;

// EVP lengths are ints: feed long inputs in pieces.
constexpr size_t kMaxChunk = size_t{1} << 30;

// Feeds `in` to an initialised context; `out` == nullptr feeds associated data.
bool Update(EVP_CIPHER_CTX* ctx, bool encrypt, std::string_view in, unsigned char* out) {
  for (size_t done = 0; done < in.size();) {
    const size_t chunk = std::min(in.size() - done, kMaxChunk);
    const auto* src = reinterpret_cast<const unsigned char*>(in.data() + done);
    int len = 0;
    const int ok = encrypt ? EVP_EncryptUpdate(ctx, out == nullptr ? nullptr : out + done, &len,
                                               src, static_cast<int>(chunk))
                           : EVP_DecryptUpdate(ctx, out == nullptr ? nullptr : out + done, &len,
                                               src, static_cast<int>(chunk));
    // GCM is a stream mode: every byte in gives one byte out, at once.
    if (ok != 1 || (out != nullptr && static_cast<size_t>(len) != chunk)) return false;
    done += chunk;
  }
  return true;
}

absl::StatusOr<UniqueEvpCipherCtx> NewContext(bool encrypt, const SecretBytes& key,
                                              const unsigned char* nonce) {
  UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslInternal("cannot allocate an AES-GCM context");
  // The default IV length of AES-GCM in OpenSSL is the 12 bytes we use.
  const int ok = encrypt
                     ? EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce)
                     : EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce);
  if (ok != 1) return OpenSslInternal("cannot set up AES-256-GCM");
  return ctx;
}

absl::StatusOr<std::string> Seal(const SecretBytes& key, std::string_view nonce,
                                 std::string_view plaintext, std::string_view associated_data) {
  ASSIGN_OR_RETURN(
      UniqueEvpCipherCtx ctx,
      NewContext(/*encrypt=*/true, key, reinterpret_cast<const unsigned char*>(nonce.data())));
  std::string out(AesGcm256::kNonceBytes + plaintext.size() + AesGcm256::kTagBytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  std::copy(nonce.begin(), nonce.end(), out.begin());
  int final_len = 0;
  if (!Update(ctx.get(), true, associated_data, nullptr) ||
      !Update(ctx.get(), true, plaintext, bytes + AesGcm256::kNonceBytes) ||
      EVP_EncryptFinal_ex(ctx.get(), bytes + AesGcm256::kNonceBytes + plaintext.size(),
                          &final_len) != 1 ||
      final_len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, AesGcm256::kTagBytes,
                          bytes + AesGcm256::kNonceBytes + plaintext.size()) != 1) {
    return OpenSslInternal("AES-256-GCM encryption failed");
  }
  return out;
}

}  // namespace

absl::StatusOr<AesGcm256> AesGcm256::Create(SecretBytes key) {
  if (key.size() != kKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM key must be ", kKeyBytes, " bytes, got ", key.size()));
  }
  return AesGcm256(std::move(key));
}

absl::StatusOr<std::string> AesGcm256::Encrypt(std::string_view plaintext,
                                               std::string_view associated_data) const {
  // Random 96-bit nonces: a collision is expected only after about 2^48 messages under one
  // key, far beyond the few shares a session key ever encrypts.
  unsigned char nonce[kNonceBytes];
  if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
    return OpenSslInternal("the random generator failed");
  }
  return Seal(key_, std::string_view(reinterpret_cast<const char*>(nonce), sizeof(nonce)),
              plaintext, associated_data);
}

absl::StatusOr<SecretBytes> AesGcm256::Decrypt(std::string_view ciphertext,
                                               std::string_view associated_data) const {
  if (ciphertext.size() < kNonceBytes + kTagBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM ciphertext must be at least ", kNonceBytes + kTagBytes,
                     " bytes (nonce and tag), got ", ciphertext.size()));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(ciphertext.data());
  const std::string_view body =
      ciphertext.substr(kNonceBytes, ciphertext.size() - kNonceBytes - kTagBytes);
  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer; copy the tag out.
  unsigned char tag[kTagBytes];
  std::copy(bytes + ciphertext.size() - kTagBytes, bytes + ciphertext.size(), tag);

  ASSIGN_OR_RETURN(UniqueEvpCipherCtx ctx, NewContext(/*encrypt=*/false, key_, bytes));
  std::string plaintext(body.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  if (!Update(ctx.get(), false, associated_data, nullptr) || !Update(ctx.get(), false, body, out) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) != 1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return OpenSslInternal("AES-256-GCM decryption failed");
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), out + body.size(), &final_len) != 1) {
    // An unauthenticated plaintext is wiped, never returned.
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    internal::ClearOpenSslErrors();
    return absl::UnauthenticatedError(
        "AES-256-GCM: the ciphertext does not authenticate (wrong key, associated data, or "
        "tampered data)");
  }
  return SecretBytes(std::move(plaintext));  // wipes the local copy
}

}  // namespace tessera::crypto
