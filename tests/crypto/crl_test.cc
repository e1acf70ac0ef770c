// CRLs: made by the CA, verified with the CA, never replaced by an older one; the CA
// directory's revoke/list/re-issue (crypto/ca_records.h).
#include "crypto/crl.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "crypto/ca_records.h"
#include "crypto/pki.h"
#include "crypto/pki_files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::crypto {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1900000000);
const absl::Duration kWeek = absl::Hours(24 * 7);

CertificateAuthority MakeCa(const std::string& name) {
  auto ca = CreateCertificateAuthority(name, 3650, kNow);
  EXPECT_TRUE(ca.ok()) << ca.status();
  return *std::move(ca);
}

CertificateInfo Issue(const CertificateAuthority& ca, const std::string& id) {
  auto key = GeneratePrivateKey();
  auto csr = CreateCsr(*key, id);
  auto cert = SignCsr(ca, *csr, SignOptions{}, kNow);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return *ParseCertificate(*cert);
}

TEST(RevocationCrlTest, CaSignedCrlRoundTripsEntriesNumberAndReasons) {
  CertificateAuthority ca = MakeCa("fed");
  CertificateInfo a = Issue(ca, "site-a");
  auto pem = CreateCrl(ca, {{a.serial_hex, kNow, "key-compromise"}}, 7, kNow, kWeek);
  ASSERT_TRUE(pem.ok()) << pem.status();
  auto info = VerifyCrl(*pem, ca.cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->number, 7u);
  EXPECT_EQ(info->next_update, kNow + kWeek);
  ASSERT_EQ(info->revoked.size(), 1u);
  EXPECT_EQ(info->revoked[0].serial_hex, a.serial_hex);
  EXPECT_EQ(info->revoked[0].reason, "key-compromise");
  EXPECT_EQ(info->revoked[0].revoked_at, kNow);
}

TEST(RevocationCrlTest, RefusesGarbageOtherCaAndAlteredCrl) {
  CertificateAuthority ca = MakeCa("fed");
  CertificateAuthority other = MakeCa("fed");  // same name, other key
  CertificateInfo a = Issue(ca, "site-a");
  EXPECT_THAT(VerifyCrl("not a crl", ca.cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM X.509 CRL")));
  auto foreign = CreateCrl(other, {{a.serial_hex, kNow, "unspecified"}}, 1, kNow, kWeek);
  EXPECT_THAT(
      VerifyCrl(*foreign, ca.cert_pem),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not signed by the federation CA")));
  // Flip one character in the base64 body: the signature no longer verifies (or it no
  // longer parses) — either way it is refused.
  auto good = CreateCrl(ca, {{a.serial_hex, kNow, "unspecified"}}, 1, kNow, kWeek);
  std::string altered = *good;
  const size_t at = altered.find('\n') + 40;
  altered[at] = altered[at] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyCrl(altered, ca.cert_pem).ok());
  EXPECT_THAT(CreateCrl(ca, {{"xyz", kNow, "unspecified"}}, 1, kNow, kWeek),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hexadecimal")));
  EXPECT_THAT(CreateCrl(ca, {{a.serial_hex, kNow, "stolen"}}, 1, kNow, kWeek),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key-compromise")));
}

TEST(RevocationCrlTest, ListKeepsTheNewestAndNeverGoesBack) {
  CertificateAuthority ca = MakeCa("fed");
  CertificateAuthority other = MakeCa("fed");
  CertificateInfo a = Issue(ca, "site-a");
  CertificateInfo b = Issue(ca, "site-b");
  RevocationList list(ca.cert_pem);
  EXPECT_FALSE(list.Find(a.serial_hex).has_value());
  auto one = CreateCrl(ca, {{a.serial_hex, kNow, "unspecified"}}, 1, kNow, kWeek);
  auto two =
      CreateCrl(ca, {{a.serial_hex, kNow, "unspecified"}, {b.serial_hex, kNow, "superseded"}}, 2,
                kNow, kWeek);
  EXPECT_EQ(list.Offer(*two).value_or(false), true);
  EXPECT_TRUE(list.Find(b.serial_hex).has_value());
  // An older CRL (which does not list b) is not taken: b stays revoked.
  auto older = list.Offer(*one);
  ASSERT_TRUE(older.ok());
  EXPECT_FALSE(*older);
  EXPECT_EQ(list.number(), 2u);
  EXPECT_TRUE(list.Find(b.serial_hex).has_value());
  // A forged "newer" CRL from another CA that un-revokes b changes nothing.
  auto forged = CreateCrl(other, {}, 99, kNow, kWeek);
  EXPECT_FALSE(list.Offer(*forged).ok());
  EXPECT_EQ(list.number(), 2u);
  EXPECT_THAT(DescribeRevocation(b, *list.Find(b.serial_hex)), HasSubstr("revoked"));
}

TEST(RevocationCrlTest, CaDirRevokeByNameOrSerialKeepsEveryEntry) {
  testing::TempDir dir;
  const std::string ca_dir = dir.path() + "/ca";
  ASSERT_TRUE(InitCertificateAuthorityDir(ca_dir, "fed", 3650, absl::Now()).ok());
  auto keys = WriteKeyAndCsr("site-a", dir.path() + "/a");
  ASSERT_TRUE(keys.ok());
  auto first = SignCsrFile(ca_dir, keys->csr, SignOptions{}, dir.path() + "/a1.crt", absl::Now());
  ASSERT_TRUE(first.ok()) << first.status();
  RevokeRequest request;
  request.name_or_serial = "site-a";
  auto revoked = RevokeCertificate(ca_dir, request, absl::Now());
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->entry.serial_hex, first->serial_hex);
  EXPECT_EQ(revoked->crl.number, 1u);
  EXPECT_THAT(RevokeCertificate(ca_dir, request, absl::Now()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already revoked")));
  request.name_or_serial = "nobody";
  EXPECT_THAT(RevokeCertificate(ca_dir, request, absl::Now()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("unknown name 'nobody'")));
  // A renewed site has two certificates: its name is ambiguous, the serials are listed.
  auto second = SignCsrFile(ca_dir, keys->csr, SignOptions{}, dir.path() + "/a2.crt", absl::Now());
  auto third = SignCsrFile(ca_dir, keys->csr, SignOptions{}, dir.path() + "/a3.crt", absl::Now());
  request.name_or_serial = "site-a";
  EXPECT_THAT(
      RevokeCertificate(ca_dir, request, absl::Now()),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               ::testing::AllOf(HasSubstr(second->serial_hex), HasSubstr(third->serial_hex))));
  request.name_or_serial = second->serial_hex;
  ASSERT_TRUE(RevokeCertificate(ca_dir, request, absl::Now()).ok());
  auto reissued = ReissueCrl(ca_dir, kWeek, absl::Now());
  ASSERT_TRUE(reissued.ok()) << reissued.status();
  EXPECT_EQ(reissued->number, 3u);
  ASSERT_EQ(reissued->revoked.size(), 2u);  // every earlier entry kept
  EXPECT_EQ(reissued->revoked.size(), ReadCaDirCrl(ca_dir)->revoked.size());
  // A damaged crl.pem is refused naming the file, and a revoke changes nothing then.
  ASSERT_TRUE(common::WriteFileAtomic(ca_dir + "/crl.pem", "garbage").ok());
  request.name_or_serial = third->serial_hex;
  EXPECT_THAT(RevokeCertificate(ca_dir, request, absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("crl.pem")));
  EXPECT_EQ(*common::ReadFile(ca_dir + "/crl.pem"), "garbage");
}

}  // namespace
}  // namespace tessera::crypto
