#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_util.h"

namespace tessera::crypto {
namespace {

constexpr size_t kSha256Bytes = 32;
// RFC 5869 section 2.3: L <= 255 * HashLen.
constexpr size_t kMaxOutputBytes = 255 * kSha256Bytes;

}  // namespace

absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view salt,
                                       std::string_view info, size_t length) {
  if (ikm.empty()) return absl::InvalidArgumentError("HKDF input keying material is empty");
  if (length < 1 || length > kMaxOutputBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF output length must be in 1..", kMaxOutputBytes, ", got ", length));
  }
  internal::UniqueEvpKdf kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) return internal::OpenSslInternal("HKDF is not available");
  internal::UniqueEvpKdfCtx ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) return internal::OpenSslInternal("cannot set up HKDF");

  // OSSL_PARAM wants non-const pointers; the KDF only reads (and copies) them. An absent
  // salt is the RFC's default (HashLen zero bytes), the same as an empty one.
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<char*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<char*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(), params) !=
      1) {
    OPENSSL_cleanse(out.data(), out.size());
    return internal::OpenSslInternal("HKDF-SHA256 failed");
  }
  return SecretBytes(std::move(out));
}

}  // namespace tessera::crypto
