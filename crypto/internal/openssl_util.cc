#include "crypto/internal/openssl_util.h"

#include <openssl/err.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace tessera::crypto::internal {

absl::Status OpenSslError(absl::StatusCode code, absl::string_view message) {
  std::string reasons;
  const char* file = nullptr;
  int line = 0;
  unsigned long err;  // NOLINT(runtime/int): OpenSSL's type
  // Only the library and reason strings: never ERR_get_error_all's data field, which a
  // decoder may fill with parts of its input.
  while ((err = ERR_get_error_all(&file, &line, nullptr, nullptr, nullptr)) != 0) {
    const char* reason = ERR_reason_error_string(err);
    const char* lib = ERR_lib_error_string(err);
    absl::StrAppend(&reasons, reasons.empty() ? "" : "; ", lib != nullptr ? lib : "openssl", ": ",
                    reason != nullptr ? reason : absl::StrCat("error ", err));
  }
  if (reasons.empty()) return absl::Status(code, std::string(message));
  return absl::Status(code, absl::StrCat(message, " (", reasons, ")"));
}

void ClearOpenSslErrors() { ERR_clear_error(); }

UniqueBio MemoryBio(std::string_view data) {
  return UniqueBio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  if (size <= 0 || data == nullptr) return std::string();
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace tessera::crypto::internal
