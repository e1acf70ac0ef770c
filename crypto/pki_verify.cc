// VerifyCertificate (crypto/pki.h): a certificate against the federation CA, remembered per
// process once it verified (internal/certificate_cache.h).
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/internal/certificate_cache.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/internal/x509_util.h"
#include "crypto/pki.h"

namespace tessera::crypto {
namespace {

using internal::Asn1TimeToAbsl;
using internal::CertificateInfoOf;
using internal::ClearOpenSslErrors;
using internal::FormatUtc;
using internal::OpenSslInternal;
using internal::ParseX509;
using internal::UniqueX509;
using internal::UniqueX509Store;
using internal::UniqueX509StoreCtx;

// The verification errors that mean "not signed by this CA".
bool IsSignerError(int error) {
  switch (error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
    case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
    case X509_V_ERR_CERT_UNTRUSTED:
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<CertificateInfo> VerifyCertificate(const std::string& cert_pem,
                                                  const std::string& ca_cert_pem, absl::Time now) {
  internal::VerifiedCertificates& verified_before = internal::VerifiedCertificates::Instance();
  const std::string key = internal::VerifiedCertificates::Key(cert_pem, ca_cert_pem);
  if (std::optional<CertificateInfo> info = verified_before.Find(key, now)) return *std::move(info);

  ASSIGN_OR_RETURN(UniqueX509 cert, ParseX509(cert_pem, "certificate"));
  ASSIGN_OR_RETURN(CertificateInfo info, CertificateInfoOf(cert.get()));
  ASSIGN_OR_RETURN(UniqueX509 ca_cert, ParseX509(ca_cert_pem, "federation CA certificate"));

  UniqueX509Store store(X509_STORE_new());
  UniqueX509StoreCtx ctx(X509_STORE_CTX_new());
  if (store == nullptr || ctx == nullptr || X509_STORE_add_cert(store.get(), ca_cert.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return OpenSslInternal("cannot set up certificate verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  // Every Tessera leaf is a TLS client; this also checks the CA may sign for that use.
  if (X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT) != 1) {
    return OpenSslInternal("cannot set up certificate verification");
  }
  const int verified = X509_verify_cert(ctx.get());
  ClearOpenSslErrors();
  if (verified == 1) {
    verified_before.Insert(
        key, info, std::max(info.not_before, Asn1TimeToAbsl(X509_get0_notBefore(ca_cert.get()))),
        std::min(info.not_after, Asn1TimeToAbsl(X509_get0_notAfter(ca_cert.get()))));
    return info;
  }

  const int error = X509_STORE_CTX_get_error(ctx.get());
  const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  const std::string who = absl::StrCat("node '", info.node_id, "': ");
  if (depth > 0 &&
      (error == X509_V_ERR_CERT_HAS_EXPIRED || error == X509_V_ERR_CERT_NOT_YET_VALID)) {
    const bool expired = error == X509_V_ERR_CERT_HAS_EXPIRED;
    return absl::UnauthenticatedError(
        absl::StrCat(who, "the federation CA certificate ",
                     expired ? "has expired (not after " : "is not yet valid (not before ",
                     FormatUtc(Asn1TimeToAbsl(expired ? X509_get0_notAfter(ca_cert.get())
                                                      : X509_get0_notBefore(ca_cert.get()))),
                     ")"));
  }
  if (error == X509_V_ERR_CERT_HAS_EXPIRED) {
    return absl::UnauthenticatedError(
        absl::StrCat(who, "certificate has expired (not after ", FormatUtc(info.not_after), ")"));
  }
  if (error == X509_V_ERR_CERT_NOT_YET_VALID) {
    return absl::UnauthenticatedError(absl::StrCat(who, "certificate is not yet valid (not before ",
                                                   FormatUtc(info.not_before), ")"));
  }
  if (IsSignerError(error)) {
    return absl::UnauthenticatedError(
        absl::StrCat(who, "certificate is not signed by the federation CA"));
  }
  return absl::UnauthenticatedError(
      absl::StrCat(who, "certificate verification failed: ", X509_verify_cert_error_string(error)));
}

}  // namespace tessera::crypto
