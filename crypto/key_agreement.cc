#include "crypto/key_agreement.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/random.h"

namespace tessera::crypto {
namespace {

using internal::ClearOpenSslErrors;
using internal::OpenSslInternal;
using internal::UniqueEvpPkey;
using internal::UniqueEvpPkeyCtx;

absl::Status CheckKeySize(size_t size, const char* what) {
  if (size != kX25519KeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("X25519 ", what, " must be ", kX25519KeyBytes, " bytes, got ", size));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<X25519PublicKey> X25519PublicKey::FromBytes(std::string_view bytes) {
  RETURN_IF_ERROR(CheckKeySize(bytes.size(), "public key"));
  return X25519PublicKey(std::string(bytes));
}

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::Generate() {
  // Every 32-byte string is a valid X25519 private key (the scalar is clamped when used).
  ASSIGN_OR_RETURN(SecretBytes bytes, RandomBytes(kX25519KeyBytes));
  return FromBytes(bytes);
}

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::FromBytes(const SecretBytes& bytes) {
  RETURN_IF_ERROR(CheckKeySize(bytes.size(), "private key"));
  std::shared_ptr<EVP_PKEY> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, bytes.data(), bytes.size()),
      EVP_PKEY_free);
  if (key == nullptr) return OpenSslInternal("cannot load the X25519 private key");
  std::string public_bytes(kX25519KeyBytes, '\0');
  size_t len = public_bytes.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(public_bytes.data()),
                                  &len) != 1 ||
      len != kX25519KeyBytes) {
    return OpenSslInternal("cannot compute the X25519 public key");
  }
  ASSIGN_OR_RETURN(X25519PublicKey public_key, X25519PublicKey::FromBytes(public_bytes));
  return X25519PrivateKey(bytes.Clone(), std::move(public_key), std::move(key));
}

absl::StatusOr<SecretBytes> X25519PrivateKey::Agree(const X25519PublicKey& peer) const {
  UniqueEvpPkey peer_key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_X25519, nullptr, reinterpret_cast<const unsigned char*>(peer.bytes().data()),
      peer.bytes().size()));
  if (peer_key == nullptr) return OpenSslInternal("cannot load the peer's X25519 public key");
  UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer_key.get()) != 1) {
    return OpenSslInternal("cannot set up the X25519 agreement");
  }
  std::string shared(kX25519KeyBytes, '\0');
  size_t len = shared.size();
  const int derived =
      EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(shared.data()), &len);
  SecretBytes secret(std::move(shared));  // wiped on every path out
  static constexpr unsigned char kZeros[kX25519KeyBytes] = {};
  // OpenSSL itself refuses an all-zero result (its only reason to fail here); the explicit
  // constant-time check keeps the refusal if a library version stops doing so.
  if (derived != 1 || len != kX25519KeyBytes ||
      CRYPTO_memcmp(secret.data(), kZeros, kX25519KeyBytes) == 0) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError(
        "X25519 agreement refused: the shared secret is all zeros (the peer's public key is a "
        "small-order point)");
  }
  return secret;
}

}  // namespace tessera::crypto
