#include "crypto/crl.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/internal/x509_util.h"

namespace tessera::crypto {
namespace {

using internal::Asn1TimeToAbsl;
using internal::BioContents;
using internal::ClearOpenSslErrors;
using internal::FormatUtc;
using internal::MemoryBio;
using internal::NoPassphrase;
using internal::OpenSslInternal;
using internal::OpenSslPtr;
using internal::ParsePrivateKey;
using internal::ParseX509;
using internal::UniqueAsn1Integer;
using internal::UniqueAsn1Time;
using internal::UniqueBignum;
using internal::UniqueBio;
using internal::UniqueEvpPkey;
using internal::UniqueX509;

using UniqueX509Crl = OpenSslPtr<X509_CRL, X509_CRL_free>;
using UniqueX509Revoked = OpenSslPtr<X509_REVOKED, X509_REVOKED_free>;
using UniqueAsn1Enumerated = OpenSslPtr<ASN1_ENUMERATED, ASN1_ENUMERATED_free>;

struct ReasonName {
  int code;
  const char* name;
};
constexpr ReasonName kReasons[] = {
    {CRL_REASON_UNSPECIFIED, "unspecified"},
    {CRL_REASON_KEY_COMPROMISE, "key-compromise"},
    {CRL_REASON_AFFILIATION_CHANGED, "affiliation-changed"},
    {CRL_REASON_SUPERSEDED, "superseded"},
    {CRL_REASON_CESSATION_OF_OPERATION, "cessation-of-operation"},
};

std::string ReasonOfCode(int code) {
  for (const ReasonName& r : kReasons) {
    if (r.code == code) return r.name;
  }
  return absl::StrCat("reason-", code);
}

absl::StatusOr<int> CodeOfReason(const std::string& name) {
  for (const ReasonName& r : kReasons) {
    if (name == r.name) return r.code;
  }
  std::vector<std::string> names;
  for (const ReasonName& r : kReasons) names.push_back(r.name);
  return absl::InvalidArgumentError(
      absl::StrCat("revocation reason '", name, "' is not one of ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<UniqueAsn1Integer> SerialFromHex(const std::string& hex) {
  if (hex.empty() || hex.size() > 40 ||
      hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("serial '", hex.substr(0, 64), "' is not 1..40 hexadecimal digits"));
  }
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, hex.c_str()) == 0) return OpenSslInternal("cannot read a serial number");
  UniqueBignum bn(raw);
  UniqueAsn1Integer serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr) return OpenSslInternal("cannot encode a serial number");
  return serial;
}

absl::StatusOr<std::string> SerialToHex(const ASN1_INTEGER* serial) {
  UniqueBignum bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return OpenSslInternal("cannot read a serial number");
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return OpenSslInternal("cannot read a serial number");
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  return out;
}

absl::Status AddRevoked(X509_CRL* crl, const RevokedCertificate& entry) {
  ASSIGN_OR_RETURN(int code, CodeOfReason(entry.reason));
  ASSIGN_OR_RETURN(UniqueAsn1Integer serial, SerialFromHex(entry.serial_hex));
  UniqueX509Revoked revoked(X509_REVOKED_new());
  UniqueAsn1Time when(ASN1_TIME_set(nullptr, absl::ToTimeT(entry.revoked_at)));
  UniqueAsn1Enumerated reason(ASN1_ENUMERATED_new());
  if (revoked == nullptr || when == nullptr || reason == nullptr ||
      X509_REVOKED_set_serialNumber(revoked.get(), serial.get()) != 1 ||
      X509_REVOKED_set_revocationDate(revoked.get(), when.get()) != 1 ||
      ASN1_ENUMERATED_set(reason.get(), code) != 1 ||
      X509_REVOKED_add1_ext_i2d(revoked.get(), NID_crl_reason, reason.get(), 0, 0) != 1 ||
      X509_CRL_add0_revoked(crl, revoked.get()) != 1) {
    return OpenSslInternal("cannot add a CRL entry");
  }
  static_cast<void>(revoked.release());  // owned by the CRL now
  return absl::OkStatus();
}

absl::StatusOr<RevokedCertificate> EntryOf(X509_REVOKED* revoked) {
  RevokedCertificate entry;
  ASSIGN_OR_RETURN(entry.serial_hex, SerialToHex(X509_REVOKED_get0_serialNumber(revoked)));
  entry.revoked_at = Asn1TimeToAbsl(X509_REVOKED_get0_revocationDate(revoked));
  int critical = 0;
  UniqueAsn1Enumerated reason(static_cast<ASN1_ENUMERATED*>(
      X509_REVOKED_get_ext_d2i(revoked, NID_crl_reason, &critical, nullptr)));
  entry.reason = reason == nullptr
                     ? "unspecified"
                     : ReasonOfCode(static_cast<int>(ASN1_ENUMERATED_get(reason.get())));
  return entry;
}

}  // namespace

absl::Status CheckRevocationReason(const std::string& reason) {
  return CodeOfReason(reason).status();
}

absl::StatusOr<std::string> CreateCrl(const CertificateAuthority& ca,
                                      const std::vector<RevokedCertificate>& revoked,
                                      uint64_t number, absl::Time now, absl::Duration validity) {
  if (validity < absl::Hours(1) || validity > absl::Hours(24 * 400)) {
    return absl::InvalidArgumentError("CRL validity must be 1 hour .. 400 days");
  }
  ASSIGN_OR_RETURN(UniqueEvpPkey key, ParsePrivateKey(ca.key_pem));
  ASSIGN_OR_RETURN(UniqueX509 ca_cert, ParseX509(ca.cert_pem, "CA certificate"));
  UniqueX509Crl crl(X509_CRL_new());
  UniqueAsn1Time this_update(ASN1_TIME_set(nullptr, absl::ToTimeT(now)));
  UniqueAsn1Time next_update(ASN1_TIME_set(nullptr, absl::ToTimeT(now + validity)));
  UniqueAsn1Integer crl_number(ASN1_INTEGER_new());
  if (crl == nullptr || this_update == nullptr || next_update == nullptr || crl_number == nullptr ||
      X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1 ||
      ASN1_INTEGER_set_uint64(crl_number.get(), number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0) != 1) {
    return OpenSslInternal("cannot make the CRL");
  }
  for (const RevokedCertificate& entry : revoked) RETURN_IF_ERROR(AddRevoked(crl.get(), entry));
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), key.get(), EVP_sha256()) == 0) {
    return OpenSslInternal("cannot sign the CRL");
  }
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) {
    return OpenSslInternal("cannot encode the CRL");
  }
  return BioContents(bio.get());
}

absl::StatusOr<CrlInfo> VerifyCrl(const std::string& crl_pem, const std::string& ca_cert_pem) {
  ASSIGN_OR_RETURN(UniqueX509 ca_cert, ParseX509(ca_cert_pem, "CA certificate"));
  UniqueBio bio = MemoryBio(crl_pem);
  if (bio == nullptr) return OpenSslInternal("cannot read the CRL");
  UniqueX509Crl crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, NoPassphrase, nullptr));
  if (crl == nullptr) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("the CRL is not a PEM X.509 CRL");
  }
  EVP_PKEY* ca_key = X509_get0_pubkey(ca_cert.get());
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca_cert.get())) != 0 ||
      ca_key == nullptr || X509_CRL_verify(crl.get(), ca_key) != 1) {
    ClearOpenSslErrors();
    return absl::UnauthenticatedError(
        "the CRL is not signed by the federation CA (another CA, altered, or a bad signature)");
  }
  CrlInfo info;
  int critical = 0;
  UniqueAsn1Integer number(static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, &critical, nullptr)));
  if (number == nullptr || ASN1_INTEGER_get_uint64(&info.number, number.get()) != 1) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("the CRL has no CRL number");
  }
  info.this_update = Asn1TimeToAbsl(X509_CRL_get0_lastUpdate(crl.get()));
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
  info.next_update = next == nullptr ? absl::InfiniteFuture() : Asn1TimeToAbsl(next);
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    ASSIGN_OR_RETURN(RevokedCertificate entry, EntryOf(sk_X509_REVOKED_value(entries, i)));
    info.revoked.push_back(std::move(entry));
  }
  return info;
}

RevocationList::RevocationList(std::string ca_cert_pem) : ca_cert_pem_(std::move(ca_cert_pem)) {}

absl::StatusOr<bool> RevocationList::Offer(const std::string& crl_pem) {
  ASSIGN_OR_RETURN(CrlInfo info, VerifyCrl(crl_pem, ca_cert_pem_));
  absl::MutexLock lock(&mu_);
  if (!pem_.empty() && info.number <= info_.number) return false;
  pem_ = crl_pem;
  info_ = std::move(info);
  return true;
}

std::optional<RevokedCertificate> RevocationList::Find(const std::string& serial_hex) const {
  absl::MutexLock lock(&mu_);
  for (const RevokedCertificate& entry : info_.revoked) {
    if (entry.serial_hex == serial_hex) return entry;
  }
  return std::nullopt;
}

std::string RevocationList::pem() const {
  absl::MutexLock lock(&mu_);
  return pem_;
}

uint64_t RevocationList::number() const {
  absl::MutexLock lock(&mu_);
  return pem_.empty() ? 0 : info_.number;
}

absl::Time RevocationList::next_update() const {
  absl::MutexLock lock(&mu_);
  return pem_.empty() ? absl::InfinitePast() : info_.next_update;
}

std::string DescribeRevocation(const CertificateInfo& info, const RevokedCertificate& entry) {
  return absl::StrCat("certificate ", info.serial_hex, " of ", info.node_id, " was revoked at ",
                      FormatUtc(entry.revoked_at), " (", entry.reason, ")");
}

}  // namespace tessera::crypto
