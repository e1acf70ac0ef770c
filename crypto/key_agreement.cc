#include "crypto/key_agreement.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

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

// The private key with its public key given too: OpenSSL would otherwise recompute the
// public key (a full scalar multiplication) every time the key is loaded.
absl::StatusOr<UniqueEvpPkey> LoadKeyPair(const SecretBytes& private_key,
                                          const std::string& public_key) {
  UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr));
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OpenSslInternal("cannot set up an X25519 key");
  }
  // OSSL_PARAM wants non-const pointers; fromdata only reads (and copies) them.
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_PKEY_PARAM_PRIV_KEY, const_cast<uint8_t*>(private_key.data()), private_key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<char*>(public_key.data()), public_key.size()),
      OSSL_PARAM_construct_end(),
  };
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params) != 1) {
    return OpenSslInternal("cannot load the X25519 key");
  }
  return UniqueEvpPkey(raw);
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
  UniqueEvpPkey key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, bytes.data(), bytes.size()));
  if (key == nullptr) return OpenSslInternal("cannot load the X25519 private key");
  std::string public_bytes(kX25519KeyBytes, '\0');
  size_t len = public_bytes.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(public_bytes.data()),
                                  &len) != 1 ||
      len != kX25519KeyBytes) {
    return OpenSslInternal("cannot compute the X25519 public key");
  }
  ASSIGN_OR_RETURN(X25519PublicKey public_key, X25519PublicKey::FromBytes(public_bytes));
  return X25519PrivateKey(bytes.Clone(), std::move(public_key));
}

absl::StatusOr<SecretBytes> X25519PrivateKey::Agree(const X25519PublicKey& peer) const {
  ASSIGN_OR_RETURN(UniqueEvpPkey self, LoadKeyPair(bytes_, public_key_.bytes()));
  UniqueEvpPkey peer_key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_X25519, nullptr, reinterpret_cast<const unsigned char*>(peer.bytes().data()),
      peer.bytes().size()));
  if (peer_key == nullptr) return OpenSslInternal("cannot load the peer's X25519 public key");
  UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, self.get(), nullptr));
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
