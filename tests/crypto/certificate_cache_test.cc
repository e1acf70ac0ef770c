// The per-process memo of certificate verifications, parsed certificates and public keys
// (crypto/internal/certificate_cache.h): a remembered answer must be the answer a full
// verification gives, at every time, for every CA; refusals are always computed.
#include "crypto/internal/certificate_cache.h"

#include <string>
#include <thread>
#include <vector>

#include "crypto/internal/x509_util.h"
#include "crypto/pki.h"
#include "crypto/signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::crypto {
namespace {

using internal::ParsedCertificates;
using internal::PublicKeys;
using internal::VerifiedCertificates;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1900000000);

struct Issued {
  std::string cert_pem;
  SecretBytes key_pem;
};

Issued Issue(const CertificateAuthority& ca, const std::string& node_id, int validity_days,
             absl::Time now) {
  Issued out;
  auto key = GeneratePrivateKey();
  EXPECT_OK(key);
  auto csr = CreateCsr(*key, node_id);
  EXPECT_OK(csr);
  SignOptions options;
  options.validity_days = validity_days;
  auto cert = SignCsr(ca, *csr, options, now);
  EXPECT_OK(cert);
  out.cert_pem = *cert;
  out.key_pem = *std::move(key);
  return out;
}

// What a verification says, in a form two answers can be compared by.
std::string Outcome(const absl::StatusOr<CertificateInfo>& info) {
  if (!info.ok()) return info.status().ToString();
  return info->node_id + "|" + info->fingerprint_hex + "|" + info->serial_hex;
}

TEST(CertificateCacheTest, ASecondVerificationIsAnsweredFromMemoryWithTheSameInfo) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  const Issued site = Issue(ca, "hospital-a", 30, kNow);
  const uint64_t hits = VerifiedCertificates::Instance().hits();
  ASSERT_OK_AND_ASSIGN(CertificateInfo first, VerifyCertificate(site.cert_pem, ca.cert_pem, kNow));
  EXPECT_EQ(VerifiedCertificates::Instance().hits(), hits);
  ASSERT_OK_AND_ASSIGN(CertificateInfo second,
                       VerifyCertificate(site.cert_pem, ca.cert_pem, kNow + absl::Hours(1)));
  EXPECT_EQ(VerifiedCertificates::Instance().hits(), hits + 1);
  EXPECT_EQ(second.node_id, "hospital-a");
  EXPECT_EQ(second.fingerprint_hex, first.fingerprint_hex);
  EXPECT_EQ(second.serial_hex, first.serial_hex);
  EXPECT_EQ(second.not_after, first.not_after);
}

// At each boundary of both validity periods, the answer after the certificate was
// remembered equals the answer OpenSSL gave before it was.
TEST(CertificateCacheTest, RememberedAnswersEqualFullVerificationAtEveryBoundary) {
  // The CA starts earlier and ends earlier than the certificate.
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca,
                       CreateCertificateAuthority("Fed", 2, kNow - absl::Hours(1)));
  const Issued site = Issue(ca, "hospital-b", 30, kNow);
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(site.cert_pem));
  ASSERT_OK_AND_ASSIGN(internal::UniqueX509 ca_cert, internal::ParseX509(ca.cert_pem, "CA"));
  const absl::Time ca_not_after = internal::Asn1TimeToAbsl(X509_get0_notAfter(ca_cert.get()));
  ASSERT_LT(ca_not_after, info.not_after);
  const std::vector<absl::Time> times = {info.not_before - absl::Seconds(1),
                                         info.not_before,
                                         info.not_before + absl::Seconds(1),
                                         ca_not_after - absl::Seconds(1),
                                         ca_not_after,
                                         ca_not_after + absl::Seconds(1),
                                         info.not_after,
                                         kNow - absl::Minutes(30),
                                         ca_not_after - absl::Milliseconds(1)};
  // Before anything is remembered: a fresh CA and certificate, so no entry exists yet.
  std::vector<std::string> full;
  full.reserve(times.size());
  for (absl::Time t : times)
    full.push_back(Outcome(VerifyCertificate(site.cert_pem, ca.cert_pem, t)));
  // Some of those succeeded, so the certificate is now remembered.
  const uint64_t hits = VerifiedCertificates::Instance().hits();
  for (size_t i = 0; i < times.size(); ++i) {
    EXPECT_EQ(Outcome(VerifyCertificate(site.cert_pem, ca.cert_pem, times[i])), full[i])
        << "at " << times[i];
  }
  EXPECT_GT(VerifiedCertificates::Instance().hits(), hits);
  // The expected shape of those answers, so that the comparison above is not vacuous.
  EXPECT_THAT(full[0], HasSubstr("not yet valid"));
  EXPECT_EQ(full[1].find("UNAUTHENTICATED"), std::string::npos) << full[1];
  EXPECT_EQ(full[3].find("UNAUTHENTICATED"), std::string::npos) << full[3];
  EXPECT_THAT(full[4], HasSubstr("federation CA certificate has expired"));
  EXPECT_THAT(full[6], HasSubstr("federation CA certificate has expired"));
}

TEST(CertificateCacheTest, ACertificateRememberedForOneCaIsNotAcceptedForAnother) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  ASSERT_OK_AND_ASSIGN(CertificateAuthority other, CreateCertificateAuthority("Fed", 365, kNow));
  const Issued site = Issue(ca, "hospital-c", 30, kNow);
  ASSERT_OK(VerifyCertificate(site.cert_pem, ca.cert_pem, kNow));
  ASSERT_OK(VerifyCertificate(site.cert_pem, ca.cert_pem, kNow));
  EXPECT_THAT(VerifyCertificate(site.cert_pem, other.cert_pem, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not signed")));
}

TEST(CertificateCacheTest, RefusalsAreNeverRemembered) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  ASSERT_OK_AND_ASSIGN(CertificateAuthority other, CreateCertificateAuthority("Fed", 365, kNow));
  const Issued site = Issue(other, "intruder", 30, kNow);
  const size_t size = VerifiedCertificates::Instance().size();
  const uint64_t hits = VerifiedCertificates::Instance().hits();
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(VerifyCertificate(site.cert_pem, ca.cert_pem, kNow),
                StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not signed")));
  }
  EXPECT_EQ(VerifiedCertificates::Instance().hits(), hits);
  EXPECT_EQ(VerifiedCertificates::Instance().size(), size);
}

// A caller's identity is read from its certificate on every call (PeerIdentity): the second
// parse of the same PEM is answered from memory, equal to the first; a different byte is a
// different certificate, and a malformed one is refused every time, never remembered.
TEST(CertificateCacheTest, AParsedCertificateIsRememberedAndAMalformedOneIsNot) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  const Issued site = Issue(ca, "hospital-d", 30, kNow);
  const Issued other = Issue(ca, "hospital-e", 30, kNow);
  const uint64_t hits = ParsedCertificates::Instance().hits();
  ASSERT_OK_AND_ASSIGN(CertificateInfo first, ParseCertificate(site.cert_pem));
  EXPECT_EQ(ParsedCertificates::Instance().hits(), hits);
  ASSERT_OK_AND_ASSIGN(CertificateInfo second, ParseCertificate(site.cert_pem));
  EXPECT_EQ(ParsedCertificates::Instance().hits(), hits + 1);
  EXPECT_EQ(second.node_id, "hospital-d");
  EXPECT_EQ(second.role, first.role);
  EXPECT_EQ(second.federation, first.federation);
  EXPECT_EQ(second.fingerprint_hex, first.fingerprint_hex);
  EXPECT_EQ(second.serial_hex, first.serial_hex);
  EXPECT_EQ(second.not_before, first.not_before);
  EXPECT_EQ(second.not_after, first.not_after);

  ASSERT_OK_AND_ASSIGN(CertificateInfo e, ParseCertificate(other.cert_pem));
  EXPECT_EQ(e.node_id, "hospital-e");
  EXPECT_EQ(ParsedCertificates::Instance().hits(), hits + 1);

  std::string broken = site.cert_pem;
  broken[broken.size() / 2] = broken[broken.size() / 2] == 'A' ? 'B' : 'A';
  absl::StatusOr<CertificateInfo> changed = ParseCertificate(broken);
  if (changed.ok()) {
    EXPECT_NE(changed->fingerprint_hex, first.fingerprint_hex);
  }
  EXPECT_EQ(ParsedCertificates::Instance().hits(), hits + 1);

  EXPECT_THAT(ParseCertificate("not a certificate"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCertificate("not a certificate"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ParsedCertificates::Instance().hits(), hits + 1);
}

TEST(CertificateCacheTest, TheMemoryIsBounded) {
  VerifiedCertificates& cache = VerifiedCertificates::Instance();
  CertificateInfo info;
  info.node_id = "filler";
  for (size_t i = 0; i < internal::kMaxEntries + 50; ++i) {
    cache.Insert(VerifiedCertificates::Key("cert " + std::to_string(i), "ca"), info,
                 absl::InfinitePast(), absl::InfiniteFuture());
  }
  EXPECT_EQ(cache.size(), internal::kMaxEntries);
  // Whatever was dropped, a real certificate still verifies (again remembered).
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  const Issued site = Issue(ca, "hospital-d", 30, kNow);
  EXPECT_OK(VerifyCertificate(site.cert_pem, ca.cert_pem, kNow));
  EXPECT_OK(VerifyCertificate(site.cert_pem, ca.cert_pem, kNow));
  EXPECT_EQ(cache.size(), internal::kMaxEntries);
}

TEST(CertificateCacheTest, ManyThreadsVerifyTheSamePeersAtOnce) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  ASSERT_OK_AND_ASSIGN(CertificateAuthority other, CreateCertificateAuthority("Fed", 365, kNow));
  std::vector<Issued> sites;
  sites.reserve(4);
  for (int i = 0; i < 4; ++i) sites.push_back(Issue(ca, "site-" + std::to_string(i), 30, kNow));
  const Issued intruder = Issue(other, "intruder", 30, kNow);
  std::vector<int> failures(8, 0);
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const Issued& site = sites[(t + i) % sites.size()];
        auto info = VerifyCertificate(site.cert_pem, ca.cert_pem, kNow);
        if (!info.ok() || info->node_id != "site-" + std::to_string((t + i) % sites.size())) {
          ++failures[t];
        }
        if (VerifyCertificate(intruder.cert_pem, ca.cert_pem, kNow).ok()) ++failures[t];
        auto verifier = Verifier::Create(site.cert_pem);
        if (!verifier.ok()) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

TEST(PublicKeyCacheTest, ARememberedKeyIsTheCertificatesKey) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  const Issued a = Issue(ca, "hospital-a", 30, kNow);
  const Issued b = Issue(ca, "hospital-b", 30, kNow);
  ASSERT_OK_AND_ASSIGN(Signer signer_a, Signer::Create(a.key_pem));
  ASSERT_OK_AND_ASSIGN(std::string signature, signer_a.Sign("message"));
  const uint64_t hits = PublicKeys::Instance().hits();
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(Verifier verifier_a, Verifier::Create(a.cert_pem));
    ASSERT_OK_AND_ASSIGN(Verifier verifier_b, Verifier::Create(b.cert_pem));
    EXPECT_OK(verifier_a.Verify("message", signature));
    EXPECT_THAT(verifier_b.Verify("message", signature),
                StatusIs(absl::StatusCode::kUnauthenticated));
    EXPECT_THAT(verifier_a.Verify("other message", signature),
                StatusIs(absl::StatusCode::kUnauthenticated));
  }
  EXPECT_EQ(PublicKeys::Instance().hits(), hits + 2);
}

TEST(PublicKeyCacheTest, AVerifierOutlivesItsKeyBeingDropped) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority ca, CreateCertificateAuthority("Fed", 365, kNow));
  const Issued a = Issue(ca, "hospital-e", 30, kNow);
  ASSERT_OK_AND_ASSIGN(Signer signer, Signer::Create(a.key_pem));
  ASSERT_OK_AND_ASSIGN(std::string signature, signer.Sign("message"));
  ASSERT_OK_AND_ASSIGN(Verifier verifier, Verifier::Create(a.cert_pem));
  // Fill the memory with other certificates' keys until this one is certainly dropped.
  std::vector<Issued> others;
  others.reserve(3);
  for (int i = 0; i < 3; ++i) others.push_back(Issue(ca, "filler-" + std::to_string(i), 30, kNow));
  for (size_t i = 0; i < internal::kMaxEntries + 10; ++i) {
    ASSERT_OK(Verifier::Create(others[i % 3].cert_pem + std::string(i, '\n')));
  }
  EXPECT_OK(verifier.Verify("message", signature));
}

}  // namespace
}  // namespace tessera::crypto
