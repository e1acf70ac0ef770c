#include "crypto/pki.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "crypto/hash.h"
#include "crypto/internal/openssl_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::crypto {
namespace {

using internal::UniqueBio;
using internal::UniqueEvpPkey;
using internal::UniqueX509;
using internal::UniqueX509Extension;
using internal::UniqueX509Name;
using internal::UniqueX509Req;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

// A fixed issue time makes validity checks exact; 2030 keeps UTCTime encoding.
const absl::Time kNow = absl::FromUnixSeconds(1900000000);

UniqueX509 X509FromPem(const std::string& pem) {
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return UniqueX509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

UniqueX509Req CsrFromPem(const std::string& pem) {
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return UniqueX509Req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
}

UniqueEvpPkey KeyFromPem(const SecretBytes& pem) {
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return UniqueEvpPkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string CsrToPem(X509_REQ* req) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req);
  return internal::BioContents(bio.get());
}

std::string Der(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

std::string SubjectField(X509* cert, int nid) {
  char buf[256];
  const int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof(buf));
  return len < 0 ? std::string("<none>") : std::string(buf, len);
}

bool IsCritical(X509* cert, int nid) {
  const int index = X509_get_ext_by_NID(cert, nid, -1);
  return index >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, index)) == 1;
}

bool HasExtension(X509* cert, int nid) { return X509_get_ext_by_NID(cert, nid, -1) >= 0; }

// "DNS:name" / "IP:addr" for each SAN entry.
std::vector<std::string> SubjectAltNames(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(
                                             ASN1_STRING_get0_data(name->d.dNSName)),
                                         ASN1_STRING_length(name->d.dNSName)));
    } else if (name->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(name->d.iPAddress);
      char text[INET6_ADDRSTRLEN] = "?";
      inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(name->d.iPAddress), text,
                sizeof(text));
      out.push_back("IP:" + std::string(text));
    } else {
      out.push_back("other");
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string OctetString(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     ASN1_STRING_length(s));
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, CreateCertificateAuthority("Example Health Federation", 3650,
                                                         kNow - absl::Hours(24 * 30)));
  }

  // A fresh key, a CSR for `node_id` and a certificate signed with `options` at `now`.
  absl::StatusOr<std::string> Issue(const std::string& node_id, const SignOptions& options,
                                    absl::Time now = kNow, SecretBytes* key_out = nullptr) {
    absl::StatusOr<SecretBytes> key = GeneratePrivateKey();
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> csr = CreateCsr(*key, node_id);
    if (!csr.ok()) return csr.status();
    if (key_out != nullptr) *key_out = std::move(*key);
    return SignCsr(ca_, *csr, options, now);
  }

  CertificateAuthority ca_;
};

TEST(RoleTest, NamesRoundTrip) {
  for (Role role : {Role::kInstitution, Role::kOperator, Role::kCoordinator}) {
    ASSERT_OK_AND_ASSIGN(Role parsed, ParseRole(RoleName(role)));
    EXPECT_EQ(parsed, role);
  }
  EXPECT_STREQ(RoleName(Role::kOperator), "operator");
  EXPECT_THAT(ParseRole("admin"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("institution")));
  EXPECT_THAT(ParseRole("Operator"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("operator")));
}

TEST(NodeIdTest, Validity) {
  EXPECT_TRUE(IsValidNodeId("hospital-a"));
  EXPECT_TRUE(IsValidNodeId("site_01.example"));
  EXPECT_TRUE(IsValidNodeId(std::string(64, 'a')));
  EXPECT_FALSE(IsValidNodeId(""));
  EXPECT_FALSE(IsValidNodeId(std::string(65, 'a')));
  EXPECT_FALSE(IsValidNodeId("has space"));
  EXPECT_FALSE(IsValidNodeId("a/b"));
  EXPECT_FALSE(IsValidNodeId("a,OU=operator"));
  EXPECT_FALSE(IsValidNodeId("caf\xc3\xa9"));
}

TEST(KeyTest, GeneratesDistinctPkcs8P256Keys) {
  ASSERT_OK_AND_ASSIGN(SecretBytes a, GeneratePrivateKey());
  ASSERT_OK_AND_ASSIGN(SecretBytes b, GeneratePrivateKey());
  EXPECT_THAT(std::string(a.view()), HasSubstr("-----BEGIN PRIVATE KEY-----"));
  EXPECT_FALSE(a.Equals(b));
  UniqueEvpPkey key = KeyFromPem(a);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
  char group[64];
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &len), 1);
  EXPECT_STREQ(group, "prime256v1");
}

TEST_F(PkiTest, CaCertificateIsARootCa) {
  UniqueX509 cert = X509FromPem(ca_.cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(SubjectField(cert.get(), NID_organizationName), "Example Health Federation");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EXPECT_NE(X509_get_extension_flags(cert.get()) & EXFLAG_CA, 0u);
  EXPECT_TRUE(IsCritical(cert.get(), NID_basic_constraints));
  EXPECT_TRUE(IsCritical(cert.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(OctetString(X509_get0_subject_key_id(cert.get())).size(), 20u);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  // Self-signature verifies with its own key.
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);
  UniqueEvpPkey key = KeyFromPem(ca_.key_pem);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
}

TEST_F(PkiTest, CaRefusesBadArguments) {
  EXPECT_THAT(CreateCertificateAuthority("", 10, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation name")));
  EXPECT_THAT(CreateCertificateAuthority(std::string(65, 'f'), 10, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation name")));
  EXPECT_THAT(CreateCertificateAuthority("bad\nname", 10, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation name")));
  EXPECT_THAT(CreateCertificateAuthority("fed", 0, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("validity_days")));
}

TEST_F(PkiTest, CsrSignRoundTrip) {
  SignOptions options;
  options.role = Role::kInstitution;
  options.validity_days = 365;
  SecretBytes key;
  ASSERT_OK_AND_ASSIGN(std::string cert_pem, Issue("hospital-a", options, kNow, &key));

  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(cert_pem));
  EXPECT_EQ(info.node_id, "hospital-a");
  EXPECT_EQ(info.role, Role::kInstitution);
  EXPECT_EQ(info.federation, "Example Health Federation");
  EXPECT_EQ(info.not_before, kNow - absl::Minutes(5));
  EXPECT_EQ(info.not_after, kNow + absl::Hours(24 * 365));
  UniqueX509 cert = X509FromPem(cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(info.fingerprint_hex, ToHex(Sha256(Der(cert.get()))));
  // 128-bit positive serial: 32 hex digits.
  EXPECT_EQ(info.serial_hex.size(), 32u);
  EXPECT_EQ(info.serial_hex.find_first_not_of("0123456789abcdef"), std::string::npos);

  ASSERT_OK_AND_ASSIGN(CertificateInfo verified,
                       VerifyCertificate(cert_pem, ca_.cert_pem, kNow + absl::Hours(1)));
  EXPECT_EQ(verified.fingerprint_hex, info.fingerprint_hex);
  EXPECT_OK(CheckKeyMatchesCertificate(key, cert_pem));
  EXPECT_OK(RequireRole(info, Role::kInstitution));
}

TEST_F(PkiTest, SerialsAreRandom) {
  SignOptions options;
  ASSERT_OK_AND_ASSIGN(std::string a, Issue("site", options));
  ASSERT_OK_AND_ASSIGN(std::string b, Issue("site", options));
  ASSERT_OK_AND_ASSIGN(CertificateInfo ia, ParseCertificate(a));
  ASSERT_OK_AND_ASSIGN(CertificateInfo ib, ParseCertificate(b));
  EXPECT_NE(ia.serial_hex, ib.serial_hex);
}

TEST_F(PkiTest, InstitutionCertificateExtensions) {
  ASSERT_OK_AND_ASSIGN(std::string pem, Issue("hospital-a", SignOptions()));
  UniqueX509 cert = X509FromPem(pem);
  UniqueX509 ca = X509FromPem(ca_.cert_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_get_extension_flags(cert.get()) & EXFLAG_CA, 0u);
  EXPECT_TRUE(HasExtension(cert.get(), NID_basic_constraints));
  EXPECT_TRUE(IsCritical(cert.get(), NID_basic_constraints));
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_TRUE(IsCritical(cert.get(), NID_key_usage));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_FALSE(HasExtension(cert.get(), NID_subject_alt_name));
  // Authority key id names the CA's subject key id.
  EXPECT_EQ(OctetString(X509_get0_authority_key_id(cert.get())),
            OctetString(X509_get0_subject_key_id(ca.get())));
  EXPECT_EQ(SubjectField(cert.get(), NID_commonName), "hospital-a");
  EXPECT_EQ(SubjectField(cert.get(), NID_organizationalUnitName), "institution");
}

TEST_F(PkiTest, CoordinatorCertificateHasServerAuthAndSans) {
  SignOptions options;
  options.role = Role::kCoordinator;
  options.subject_alt_names = {"127.0.0.1", "localhost", "::1", "coord.example.org"};
  ASSERT_OK_AND_ASSIGN(std::string pem, Issue("coordinator", options));
  UniqueX509 cert = X509FromPem(pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_THAT(SubjectAltNames(cert.get()), UnorderedElementsAre("IP:127.0.0.1", "DNS:localhost",
                                                                "IP:::1", "DNS:coord.example.org"));
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "other.example.org", 0, 0, nullptr), 0);
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(pem));
  EXPECT_EQ(info.role, Role::kCoordinator);
}

TEST_F(PkiTest, SansAreForCoordinatorsOnlyAndValidated) {
  SignOptions options;
  options.role = Role::kInstitution;
  options.subject_alt_names = {"localhost"};
  EXPECT_THAT(Issue("hospital-a", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("coordinator")));
  options.role = Role::kCoordinator;
  for (const char* bad : {"", "a,DNS:evil.example", "-lead.example", "under_score.example",
                          "*.example.org", "a..b"}) {
    options.subject_alt_names = {bad};
    EXPECT_THAT(Issue("coordinator", options),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subject alternative")))
        << bad;
  }
}

// A CSR built by hand, asking for more than a site may have: another role and
// federation in its subject, and CA and SAN extensions.
std::string GreedyCsr(const SecretBytes& key_pem) {
  UniqueEvpPkey key = KeyFromPem(key_pem);
  UniqueX509Req req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Evil Federation"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("operator"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("hospital-a"), -1, -1, 0);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  sk_X509_EXTENSION_push(
      exts, X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  sk_X509_EXTENSION_push(
      exts, X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:evil.example"));
  X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_set_pubkey(req.get(), key.get());
  X509_REQ_sign(req.get(), key.get(), EVP_sha256());
  return CsrToPem(req.get());
}

TEST_F(PkiTest, SignerSetsRoleAndFederationAndIgnoresCsrRequests) {
  ASSERT_OK_AND_ASSIGN(SecretBytes key, GeneratePrivateKey());
  const std::string csr = GreedyCsr(key);
  ASSERT_OK_AND_ASSIGN(std::string asked, CsrNodeId(csr));
  EXPECT_EQ(asked, "hospital-a");

  SignOptions options;
  options.role = Role::kInstitution;
  ASSERT_OK_AND_ASSIGN(std::string pem, SignCsr(ca_, csr, options, kNow));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(pem));
  EXPECT_EQ(info.node_id, "hospital-a");
  EXPECT_EQ(info.role, Role::kInstitution);
  EXPECT_EQ(info.federation, "Example Health Federation");
  EXPECT_THAT(RequireRole(info, Role::kOperator),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("hospital-a has role institution, operator required")));
  UniqueX509 cert = X509FromPem(pem);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_FALSE(HasExtension(cert.get(), NID_subject_alt_name));
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert.get())), 3);
}

TEST_F(PkiTest, CsrWithBadSelfSignatureIsRefused) {
  ASSERT_OK_AND_ASSIGN(SecretBytes key, GeneratePrivateKey());
  ASSERT_OK_AND_ASSIGN(std::string csr, CreateCsr(key, "hospital-a"));
  ASSERT_OK(CsrNodeId(csr));

  // 1. The subject changed after signing (someone else's CSR, renamed).
  UniqueX509Req renamed = CsrFromPem(csr);
  ASSERT_NE(renamed, nullptr);
  UniqueX509Name name(X509_NAME_new());
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("coordinator"), -1, -1, 0);
  ASSERT_EQ(X509_REQ_set_subject_name(renamed.get(), name.get()), 1);
  const std::string renamed_pem = CsrToPem(renamed.get());
  ASSERT_NE(renamed_pem, csr);
  EXPECT_THAT(SignCsr(ca_, renamed_pem, SignOptions(), kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signature")));
  EXPECT_THAT(CsrNodeId(renamed_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signature")));

  // 2. Signed by a key other than the one it carries.
  ASSERT_OK_AND_ASSIGN(SecretBytes other, GeneratePrivateKey());
  UniqueX509Req swapped = CsrFromPem(csr);
  UniqueEvpPkey other_key = KeyFromPem(other);
  ASSERT_GT(X509_REQ_sign(swapped.get(), other_key.get(), EVP_sha256()), 0);
  UniqueEvpPkey original_key = KeyFromPem(key);
  ASSERT_EQ(X509_REQ_set_pubkey(swapped.get(), original_key.get()), 1);
  EXPECT_THAT(SignCsr(ca_, CsrToPem(swapped.get()), SignOptions(), kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signature")));
}

TEST_F(PkiTest, MalformedCsrsAreRefused) {
  EXPECT_THAT(SignCsr(ca_, "not a csr", SignOptions(), kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CSR")));
  ASSERT_OK_AND_ASSIGN(SecretBytes key, GeneratePrivateKey());
  EXPECT_THAT(CreateCsr(key, "bad id"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("node id")));

  // A P-384 key: outside the federation's key policy.
  UniqueEvpPkey p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  ASSERT_NE(p384, nullptr);
  UniqueX509Req req(X509_REQ_new());
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("hospital-a"), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), p384.get());
  ASSERT_GT(X509_REQ_sign(req.get(), p384.get(), EVP_sha256()), 0);
  EXPECT_THAT(SignCsr(ca_, CsrToPem(req.get()), SignOptions(), kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
}

TEST_F(PkiTest, SigningNeedsTheCaKeyThatMatchesTheCaCertificate) {
  ASSERT_OK_AND_ASSIGN(SecretBytes key, GeneratePrivateKey());
  ASSERT_OK_AND_ASSIGN(std::string csr, CreateCsr(key, "hospital-a"));
  CertificateAuthority mixed{key.Clone(), ca_.cert_pem};
  EXPECT_THAT(SignCsr(mixed, csr, SignOptions(), kNow),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CA key")));
}

TEST_F(PkiTest, VerifyUsesTheGivenTime) {
  SignOptions options;
  options.validity_days = 1;
  ASSERT_OK_AND_ASSIGN(std::string pem, Issue("hospital-a", options));
  EXPECT_OK(VerifyCertificate(pem, ca_.cert_pem, kNow));
  EXPECT_OK(VerifyCertificate(pem, ca_.cert_pem, kNow + absl::Hours(23)));
  EXPECT_THAT(VerifyCertificate(pem, ca_.cert_pem, kNow + absl::Hours(25)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("node 'hospital-a': certificate has expired (not after "
                                 "2030-03-18T17:46:40Z)")));
  EXPECT_THAT(VerifyCertificate(pem, ca_.cert_pem, kNow - absl::Minutes(10)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("certificate is not yet valid (not before")));
}

TEST_F(PkiTest, VerifyRefusesACertificateFromAnotherCa) {
  // Same federation name, different key: only the signature tells them apart.
  ASSERT_OK_AND_ASSIGN(
      CertificateAuthority foreign,
      CreateCertificateAuthority("Example Health Federation", 3650, kNow - absl::Hours(24 * 30)));
  ASSERT_OK_AND_ASSIGN(SecretBytes key, GeneratePrivateKey());
  ASSERT_OK_AND_ASSIGN(std::string csr, CreateCsr(key, "intruder"));
  ASSERT_OK_AND_ASSIGN(std::string pem, SignCsr(foreign, csr, SignOptions(), kNow));
  EXPECT_OK(VerifyCertificate(pem, foreign.cert_pem, kNow));
  EXPECT_THAT(
      VerifyCertificate(pem, ca_.cert_pem, kNow),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not signed by the federation CA")));
}

TEST_F(PkiTest, VerifyRefusesATamperedCertificate) {
  ASSERT_OK_AND_ASSIGN(std::string pem, Issue("hospital-a", SignOptions()));
  UniqueX509 cert = X509FromPem(pem);
  std::string der = Der(cert.get());
  der[der.size() - 1] ^= 0x01;  // last byte of the signature
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  UniqueX509 tampered(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_NE(tampered, nullptr);
  UniqueBio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), tampered.get());
  EXPECT_THAT(
      VerifyCertificate(internal::BioContents(bio.get()), ca_.cert_pem, kNow),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not signed by the federation CA")));
}

TEST_F(PkiTest, VerifyRefusesMalformedInput) {
  ASSERT_OK_AND_ASSIGN(std::string pem, Issue("hospital-a", SignOptions()));
  EXPECT_THAT(VerifyCertificate("garbage", ca_.cert_pem, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("certificate")));
  EXPECT_THAT(VerifyCertificate(pem, "garbage", kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation CA")));
  // The CA certificate names no node and no role.
  EXPECT_THAT(VerifyCertificate(ca_.cert_pem, ca_.cert_pem, kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("certificate subject")));
  EXPECT_THAT(ParseCertificate(ca_.cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("certificate subject")));
}

TEST_F(PkiTest, KeyCertificateMismatch) {
  SecretBytes key;
  ASSERT_OK_AND_ASSIGN(std::string pem, Issue("hospital-a", SignOptions(), kNow, &key));
  ASSERT_OK_AND_ASSIGN(SecretBytes other, GeneratePrivateKey());
  EXPECT_OK(CheckKeyMatchesCertificate(key, pem));
  EXPECT_THAT(CheckKeyMatchesCertificate(other, pem),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not match")));
  EXPECT_THAT(CheckKeyMatchesCertificate(ca_.key_pem, pem),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not match")));
}

TEST_F(PkiTest, ErrorsNeverQuoteKeyMaterial) {
  ASSERT_OK_AND_ASSIGN(SecretBytes key, GeneratePrivateKey());
  std::string text(key.view());
  // Corrupt the base64 body so decoding fails part way through.
  const size_t body = text.find('\n') + 1;
  text[body + 10] = '!';
  text[body + 11] = '!';
  SecretBytes corrupt(std::move(text));
  ASSERT_OK_AND_ASSIGN(std::string pem, Issue("hospital-a", SignOptions()));

  std::vector<absl::Status> errors = {
      CheckKeyMatchesCertificate(corrupt, pem),
      CreateCsr(corrupt, "hospital-a").status(),
      SignCsr(CertificateAuthority{corrupt.Clone(), ca_.cert_pem}, "x", SignOptions(), kNow)
          .status(),
  };
  const std::string untouched(corrupt.view().substr(body + 20, 16));
  for (const absl::Status& status : errors) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(untouched)));
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("BEGIN")));
  }
}

TEST_F(PkiTest, CanonicalCertificatePemIsOneTextPerCertificate) {
  ASSERT_OK_AND_ASSIGN(std::string canonical, CanonicalCertificatePem(ca_.cert_pem));
  EXPECT_EQ(canonical, ca_.cert_pem);  // what this library writes is already canonical
  // The same certificate in lines of 48 characters, with CRLF line ends.
  const std::vector<std::string> lines = absl::StrSplit(ca_.cert_pem, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 3u);
  std::string base64;
  for (size_t i = 1; i + 1 < lines.size(); ++i) base64 += lines[i];
  std::string rewrapped = lines.front() + "\r\n";
  for (size_t i = 0; i < base64.size(); i += 48) rewrapped += base64.substr(i, 48) + "\r\n";
  rewrapped += lines.back() + "\r\n";
  ASSERT_NE(rewrapped, ca_.cert_pem);
  EXPECT_THAT(CanonicalCertificatePem(rewrapped), IsOkAndHolds(ca_.cert_pem));
  EXPECT_THAT(CanonicalCertificatePem("not a certificate"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM certificate")));
}

}  // namespace
}  // namespace tessera::crypto
