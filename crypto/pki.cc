#include "crypto/pki.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/internal/certificate_cache.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/internal/x509_util.h"

namespace tessera::crypto {
namespace internal {

int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

bool IsP256(const EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64];
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) return false;
  return OBJ_txt2nid(group) == NID_X9_62_prime256v1;
}

absl::StatusOr<UniqueEvpPkey> ParsePrivateKey(const SecretBytes& key_pem) {
  if (key_pem.empty()) return absl::InvalidArgumentError("private key is empty");
  UniqueBio bio = MemoryBio(key_pem.view());
  if (bio == nullptr) return OpenSslInternal("cannot read the private key");
  UniqueEvpPkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    // OpenSSL's reasons name the decoder step only, never the bytes; still, keep them out.
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("private key is not an unencrypted PEM private key");
  }
  if (!IsP256(key.get())) {
    return absl::InvalidArgumentError("private key is not an ECDSA P-256 key");
  }
  return key;
}

absl::StatusOr<UniqueX509> ParseX509(const std::string& pem, const char* what) {
  UniqueBio bio = MemoryBio(pem);
  if (bio == nullptr) return OpenSslInternal(absl::StrCat("cannot read the ", what));
  UniqueX509 cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat(what, " is not a PEM certificate"));
  }
  return cert;
}

absl::Time Asn1TimeToAbsl(const ASN1_TIME* t) {
  struct tm tm;
  std::memset(&tm, 0, sizeof(tm));
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

}  // namespace internal

namespace {

using internal::Asn1TimeToAbsl;
using internal::IsP256;
using internal::NoPassphrase;
using internal::ParsePrivateKey;
using internal::ParseX509;

using internal::BioContents;
using internal::ClearOpenSslErrors;
using internal::MemoryBio;
using internal::OpenSslError;
using internal::OpenSslInternal;
using internal::UniqueAsn1Integer;
using internal::UniqueBignum;
using internal::UniqueBio;
using internal::UniqueEvpPkey;
using internal::UniqueGeneralName;
using internal::UniqueGeneralNames;
using internal::UniqueX509;
using internal::UniqueX509Extension;
using internal::UniqueX509Name;
using internal::UniqueX509Req;

// Certificates start a little in the past so a peer whose clock runs slightly behind
// still accepts a certificate issued a moment ago.
constexpr absl::Duration kBackdate = absl::Minutes(5);
constexpr int kMaxValidityDays = 100 * 365;
constexpr size_t kMaxFederationNameLength = 64;
constexpr char kCaCommonName[] = "Tessera federation CA";

absl::Status CheckValidityDays(int days) {
  if (days < 1 || days > kMaxValidityDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity_days must be in 1..", kMaxValidityDays, ", got ", days));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueEvpPkey> GenerateP256Key() {
  UniqueEvpPkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslInternal("cannot generate an ECDSA P-256 key");
  return key;
}

// PKCS#8 PEM, written through a secure-memory BIO (wiped when freed).
absl::StatusOr<SecretBytes> PrivateKeyToPem(EVP_PKEY* key) {
  UniqueBio bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslInternal("cannot encode the private key");
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  if (size <= 0 || data == nullptr) return OpenSslInternal("cannot encode the private key");
  return SecretBytes::CopyFrom(std::string_view(data, static_cast<size_t>(size)));
}

absl::StatusOr<UniqueX509Req> ParseCsr(const std::string& pem) {
  UniqueBio bio = MemoryBio(pem);
  if (bio == nullptr) return OpenSslInternal("cannot read the CSR");
  UniqueX509Req req(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr));
  if (req == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "CSR is not a PEM certificate request");
  }
  return req;
}

// The single value of attribute `nid` in `name`. INVALID_ARGUMENT if absent or repeated.
absl::StatusOr<std::string> SingleNameEntry(const X509_NAME* name, int nid, const char* what) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return absl::InvalidArgumentError(absl::StrCat(what, " has no ", OBJ_nid2sn(nid)));
  if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has more than one ", OBJ_nid2sn(nid)));
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat(what, " has an undecodable ", OBJ_nid2sn(nid)));
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

absl::Status AddNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return OpenSslInternal(absl::StrCat("cannot set subject ", field));
  }
  return absl::OkStatus();
}

// A positive 128-bit serial from the CSPRNG; the top bits fixed so it always encodes in
// 16 bytes and is never zero (126 random bits, RFC 5280 asks for at most 20 octets).
absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return OpenSslInternal("RAND_bytes failed");
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  UniqueBignum bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (bn == nullptr) return OpenSslInternal("cannot make a serial number");
  UniqueAsn1Integer serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr || X509_set_serialNumber(cert, serial.get()) != 1) {
    return OpenSslInternal("cannot set the serial number");
  }
  return absl::OkStatus();
}

absl::Status SetValidity(X509* cert, absl::Time now, int validity_days) {
  const absl::Time not_before = now - kBackdate;
  const absl::Time not_after = now + absl::Hours(24) * validity_days;
  if (ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(not_after)) == nullptr) {
    return OpenSslInternal("cannot set the validity period");
  }
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  UniqueX509Extension ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslInternal(absl::StrCat("cannot add extension ", OBJ_nid2sn(nid)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslInternal("cannot encode the certificate");
  }
  return BioContents(bio.get());
}

bool LooksLikeIpAddress(const std::string& name, int* family) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, name.c_str(), buf) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, name.c_str(), buf) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

// RFC 1123 host name: dot-separated labels of letters, digits and '-', no label
// starting or ending with '-'. No wildcards: each coordinator gets its own names.
bool IsValidDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    const size_t end = dot == std::string::npos ? name.size() : dot;
    const size_t len = end - start;
    if (len == 0 || len > 63) return false;
    if (name[start] == '-' || name[end - 1] == '-') return false;
    for (size_t i = start; i < end; ++i) {
      const char c = name[i];
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

absl::Status AddSubjectAltNames(X509* cert, const std::vector<std::string>& names) {
  UniqueGeneralNames general_names(sk_GENERAL_NAME_new_null());
  if (general_names == nullptr) return OpenSslInternal("cannot allocate subjectAltName");
  for (const std::string& name : names) {
    UniqueGeneralName entry(GENERAL_NAME_new());
    if (entry == nullptr) return OpenSslInternal("cannot allocate subjectAltName");
    int family = 0;
    if (LooksLikeIpAddress(name, &family)) {
      ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
      if (ip == nullptr) {
        return OpenSslError(
            absl::StatusCode::kInvalidArgument,
            absl::StrCat("subject alternative name '", name, "' is not a valid IP address"));
      }
      GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, ip);
    } else if (IsValidDnsName(name)) {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (dns == nullptr || ASN1_STRING_set(dns, name.data(), static_cast<int>(name.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        return OpenSslInternal("cannot encode a DNS name");
      }
      GENERAL_NAME_set0_value(entry.get(), GEN_DNS, dns);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("subject alternative name '", name,
                                                     "' is neither an IP address nor a DNS name"));
    }
    if (sk_GENERAL_NAME_push(general_names.get(), entry.get()) == 0) {
      return OpenSslInternal("cannot add a subject alternative name");
    }
    static_cast<void>(entry.release());  // now owned by general_names
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, general_names.get(), 0, X509V3_ADD_APPEND) !=
      1) {
    return OpenSslInternal("cannot add subjectAltName");
  }
  return absl::OkStatus();
}

bool IsValidFederationName(const std::string& name) {
  if (name.empty() || name.size() > kMaxFederationNameLength) return false;
  if (name.front() == ' ' || name.back() == ' ') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

absl::StatusOr<CertificateInfo> InfoFromX509(X509* cert) {
  CertificateInfo info;
  const X509_NAME* subject = X509_get_subject_name(cert);
  ASSIGN_OR_RETURN(std::string cn, SingleNameEntry(subject, NID_commonName, "certificate subject"));
  if (!IsValidNodeId(cn)) {
    return absl::InvalidArgumentError("certificate subject CN is not a valid node id");
  }
  ASSIGN_OR_RETURN(std::string ou,
                   SingleNameEntry(subject, NID_organizationalUnitName, "certificate subject"));
  absl::StatusOr<Role> role = ParseRole(ou);
  if (!role.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate of node '", cn, "' has a subject OU that names no role"));
  }
  ASSIGN_OR_RETURN(std::string o,
                   SingleNameEntry(subject, NID_organizationName, "certificate subject"));
  info.node_id = std::move(cn);
  info.role = *role;
  info.federation = std::move(o);

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) != 1) {
    return OpenSslInternal("cannot fingerprint the certificate");
  }
  info.fingerprint_hex = ToHex(std::string_view(reinterpret_cast<const char*>(md), md_len));

  UniqueBignum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (serial == nullptr) return OpenSslInternal("cannot read the serial number");
  char* hex = BN_bn2hex(serial.get());
  if (hex == nullptr) return OpenSslInternal("cannot read the serial number");
  info.serial_hex = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);

  info.not_before = Asn1TimeToAbsl(X509_get0_notBefore(cert));
  info.not_after = Asn1TimeToAbsl(X509_get0_notAfter(cert));
  return info;
}

// The CSR, its signature verified, and its node id.
struct VerifiedCsr {
  UniqueX509Req req;
  std::string node_id;
};

absl::StatusOr<VerifiedCsr> ParseAndVerifyCsr(const std::string& csr_pem) {
  ASSIGN_OR_RETURN(UniqueX509Req req, ParseCsr(csr_pem));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "CSR carries no usable public key");
  }
  if (!IsP256(key)) return absl::InvalidArgumentError("CSR key is not an ECDSA P-256 key");
  if (X509_REQ_verify(req.get(), key) != 1) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("CSR signature does not verify");
  }
  ASSIGN_OR_RETURN(std::string cn, SingleNameEntry(X509_REQ_get_subject_name(req.get()),
                                                   NID_commonName, "CSR subject"));
  if (!IsValidNodeId(cn)) {
    return absl::InvalidArgumentError(
        "CSR subject CN is not a valid node id (1..64 characters from [A-Za-z0-9._-])");
  }
  return VerifiedCsr{std::move(req), std::move(cn)};
}

}  // namespace

namespace internal {
absl::StatusOr<CertificateInfo> CertificateInfoOf(X509* cert) { return InfoFromX509(cert); }
}  // namespace internal

const char* RoleName(Role role) {
  switch (role) {
    case Role::kInstitution:
      return "institution";
    case Role::kOperator:
      return "operator";
    case Role::kCoordinator:
      return "coordinator";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(const std::string& name) {
  for (Role role : {Role::kInstitution, Role::kOperator, Role::kCoordinator}) {
    if (name == RoleName(role)) return role;
  }
  return absl::InvalidArgumentError(
      "role must be one of \"institution\", \"operator\", \"coordinator\"");
}

bool IsValidNodeId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

absl::StatusOr<SecretBytes> GeneratePrivateKey() {
  ASSIGN_OR_RETURN(UniqueEvpPkey key, GenerateP256Key());
  return PrivateKeyToPem(key.get());
}

absl::StatusOr<CertificateAuthority> CreateCertificateAuthority(const std::string& federation_name,
                                                                int validity_days, absl::Time now) {
  if (!IsValidFederationName(federation_name)) {
    return absl::InvalidArgumentError(
        "federation name must be 1..64 printable ASCII characters without leading or "
        "trailing spaces");
  }
  RETURN_IF_ERROR(CheckValidityDays(validity_days));
  ASSIGN_OR_RETURN(UniqueEvpPkey key, GenerateP256Key());

  UniqueX509 cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return OpenSslInternal("cannot allocate the CA certificate");
  }
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  RETURN_IF_ERROR(SetValidity(cert.get(), now, validity_days));
  X509_NAME* name = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddNameEntry(name, "O", federation_name));
  RETURN_IF_ERROR(AddNameEntry(name, "CN", kCaCommonName));
  if (X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key.get()) != 1) {
    return OpenSslInternal("cannot fill the CA certificate");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  if (X509V3_set_issuer_pkey(&ctx, key.get()) != 1) {
    return OpenSslInternal("cannot prepare CA extensions");
  }
  // No intermediates in a federation: the CA signs leaves only.
  RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));

  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return OpenSslInternal("cannot sign the CA certificate");
  }
  CertificateAuthority ca;
  ASSIGN_OR_RETURN(ca.key_pem, PrivateKeyToPem(key.get()));
  ASSIGN_OR_RETURN(ca.cert_pem, CertToPem(cert.get()));
  return ca;
}

absl::StatusOr<std::string> CreateCsr(const SecretBytes& key_pem, const std::string& node_id) {
  if (!IsValidNodeId(node_id)) {
    return absl::InvalidArgumentError("node id must be 1..64 characters from [A-Za-z0-9._-]");
  }
  ASSIGN_OR_RETURN(UniqueEvpPkey key, ParsePrivateKey(key_pem));
  UniqueX509Req req(X509_REQ_new());
  if (req == nullptr || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1) {
    return OpenSslInternal("cannot allocate the CSR");
  }
  UniqueX509Name name(X509_NAME_new());
  if (name == nullptr) return OpenSslInternal("cannot allocate the CSR subject");
  RETURN_IF_ERROR(AddNameEntry(name.get(), "CN", node_id));
  if (X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return OpenSslInternal("cannot fill the CSR");
  }
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return OpenSslInternal("cannot sign the CSR");
  }
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return OpenSslInternal("cannot encode the CSR");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> SignCsr(const CertificateAuthority& ca, const std::string& csr_pem,
                                    const SignOptions& options, absl::Time now) {
  RETURN_IF_ERROR(CheckValidityDays(options.validity_days));
  if (options.role != Role::kCoordinator && !options.subject_alt_names.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject alternative names are for coordinator certificates only, not ",
                     RoleName(options.role)));
  }
  ASSIGN_OR_RETURN(UniqueX509 ca_cert, ParseX509(ca.cert_pem, "CA certificate"));
  if (X509_check_ca(ca_cert.get()) == 0) {
    return absl::FailedPreconditionError("CA certificate is not a CA certificate");
  }
  ASSIGN_OR_RETURN(UniqueEvpPkey ca_key, ParsePrivateKey(ca.key_pem));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ClearOpenSslErrors();
    return absl::FailedPreconditionError("CA key does not match the CA certificate");
  }
  ASSIGN_OR_RETURN(std::string federation,
                   SingleNameEntry(X509_get_subject_name(ca_cert.get()), NID_organizationName,
                                   "CA certificate subject"));
  ASSIGN_OR_RETURN(VerifiedCsr csr, ParseAndVerifyCsr(csr_pem));

  UniqueX509 cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return OpenSslInternal("cannot allocate the certificate");
  }
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  RETURN_IF_ERROR(SetValidity(cert.get(), now, options.validity_days));
  // The subject is built here from the CSR's CN alone: whatever else the CSR asked for
  // (OU, O, extensions) is ignored, so a site cannot request another role.
  X509_NAME* subject = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddNameEntry(subject, "O", federation));
  RETURN_IF_ERROR(AddNameEntry(subject, "OU", RoleName(options.role)));
  RETURN_IF_ERROR(AddNameEntry(subject, "CN", csr.node_id));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1 ||
      X509_set_pubkey(cert.get(), X509_REQ_get0_pubkey(csr.req.get())) != 1) {
    return OpenSslInternal("cannot fill the certificate");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  // Every node is a TLS client; only the coordinator also serves.
  RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_ext_key_usage,
                   options.role == Role::kCoordinator ? "serverAuth,clientAuth" : "clientAuth"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!options.subject_alt_names.empty()) {
    RETURN_IF_ERROR(AddSubjectAltNames(cert.get(), options.subject_alt_names));
  }

  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) <= 0) {
    return OpenSslInternal("cannot sign the certificate");
  }
  return CertToPem(cert.get());
}

absl::StatusOr<CertificateInfo> ParseCertificate(const std::string& cert_pem) {
  internal::ParsedCertificates& parsed_before = internal::ParsedCertificates::Instance();
  if (std::optional<CertificateInfo> info = parsed_before.Find(cert_pem)) return *std::move(info);
  ASSIGN_OR_RETURN(UniqueX509 cert, ParseX509(cert_pem, "certificate"));
  ASSIGN_OR_RETURN(CertificateInfo info, InfoFromX509(cert.get()));
  parsed_before.Insert(cert_pem, info);
  return info;
}

absl::StatusOr<std::string> CanonicalCertificatePem(const std::string& cert_pem) {
  ASSIGN_OR_RETURN(UniqueX509 cert, ParseX509(cert_pem, "certificate"));
  return CertToPem(cert.get());
}

absl::Status RequireRole(const CertificateInfo& info, Role want) {
  if (info.role == want) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(info.node_id, " has role ", RoleName(info.role),
                                                  ", ", RoleName(want), " required"));
}

absl::Status CheckKeyMatchesCertificate(const SecretBytes& key_pem, const std::string& cert_pem) {
  ASSIGN_OR_RETURN(UniqueEvpPkey key, ParsePrivateKey(key_pem));
  ASSIGN_OR_RETURN(UniqueX509 cert, ParseX509(cert_pem, "certificate"));
  const EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
  if (cert_key == nullptr || EVP_PKEY_eq(cert_key, key.get()) != 1) {
    ClearOpenSslErrors();
    return absl::FailedPreconditionError("private key does not match the certificate");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CsrNodeId(const std::string& csr_pem) {
  ASSIGN_OR_RETURN(VerifiedCsr csr, ParseAndVerifyCsr(csr_pem));
  return std::move(csr.node_id);
}

}  // namespace tessera::crypto
