#include "crypto/signature.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/files.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::crypto {
namespace {

using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::tessera::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::Not;

// An Ed25519 key as PKCS#8 PEM, and a self-signed certificate for it: well-formed, but not
// the P-256 keys a federation uses.
std::pair<std::string, std::string> Ed25519KeyAndCert() {
  internal::UniqueEvpPkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  internal::UniqueBio key_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PKCS8PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  internal::UniqueX509 cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ed"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), key.get());
  X509_sign(cert.get(), key.get(), nullptr);
  internal::UniqueBio cert_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cert_bio.get(), cert.get());
  return {internal::BioContents(key_bio.get()), internal::BioContents(cert_bio.get())};
}

class SignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(dir_.path()));
    ASSERT_OK_AND_ASSIGN(v1::TlsFiles a, pki_->IssueNode("hospital-a", Role::kInstitution));
    ASSERT_OK_AND_ASSIGN(v1::TlsFiles b, pki_->IssueNode("hospital-b", Role::kInstitution));
    ASSERT_OK_AND_ASSIGN(std::string key_a, common::ReadFile(a.key()));
    ASSERT_OK_AND_ASSIGN(std::string key_b, common::ReadFile(b.key()));
    ASSERT_OK_AND_ASSIGN(cert_a_, common::ReadFile(a.cert()));
    ASSERT_OK_AND_ASSIGN(cert_b_, common::ReadFile(b.cert()));
    key_a_text_ = key_a;
    // The Signer takes the key files tessera's PKI writes, as they are on disk.
    ASSERT_OK_AND_ASSIGN(Signer signer_a, Signer::Create(SecretBytes(std::move(key_a))));
    ASSERT_OK_AND_ASSIGN(Signer signer_b, Signer::Create(SecretBytes(std::move(key_b))));
    ASSERT_OK_AND_ASSIGN(Verifier verifier_a, Verifier::Create(cert_a_));
    ASSERT_OK_AND_ASSIGN(Verifier verifier_b, Verifier::Create(cert_b_));
    signer_a_.emplace(std::move(signer_a));
    signer_b_.emplace(std::move(signer_b));
    verifier_a_.emplace(std::move(verifier_a));
    verifier_b_.emplace(std::move(verifier_b));
  }

  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::string cert_a_;
  std::string cert_b_;
  std::string key_a_text_;
  std::optional<Signer> signer_a_;
  std::optional<Signer> signer_b_;
  std::optional<Verifier> verifier_a_;
  std::optional<Verifier> verifier_b_;
};

TEST_F(SignatureTest, SignAndVerifyRoundTrip) {
  for (const std::string& message :
       {std::string(), std::string("advertise: session 7, keys c||s"), std::string(10000, 'm')}) {
    ASSERT_OK_AND_ASSIGN(std::string signature, signer_a_->Sign(message));
    // DER ECDSA-Sig-Value over P-256: a SEQUENCE of two INTEGERs, at most 72 bytes.
    EXPECT_EQ(signature[0], 0x30);
    EXPECT_LE(signature.size(), 72u);
    EXPECT_OK(verifier_a_->Verify(message, signature));
  }
}

TEST_F(SignatureTest, SignaturesAreFreshButAllVerify) {
  std::set<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string signature, signer_a_->Sign("same message"));
    EXPECT_OK(verifier_a_->Verify("same message", signature));
    seen.insert(signature);
  }
  EXPECT_EQ(seen.size(), 5u);  // ECDSA draws a fresh nonce per signature
}

TEST_F(SignatureTest, EveryTamperedSignatureByteIsRejected) {
  const std::string message = "survivors: 1,2,3,5,8";
  ASSERT_OK_AND_ASSIGN(std::string signature, signer_a_->Sign(message));
  for (size_t i = 0; i < signature.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80}) {
      std::string tampered = signature;
      tampered[i] = static_cast<char>(tampered[i] ^ flip);
      EXPECT_THAT(verifier_a_->Verify(message, tampered),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "byte " << i << " flip " << int{flip};
    }
  }
  for (size_t size = 0; size < signature.size(); ++size) {
    EXPECT_THAT(verifier_a_->Verify(message, signature.substr(0, size)),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << size;
  }
  EXPECT_THAT(verifier_a_->Verify(message, signature + '\0'),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_OK(verifier_a_->Verify(message, signature));
}

TEST_F(SignatureTest, EveryTamperedMessageByteIsRejected) {
  const std::string message = "advertise: session 7, client 3, keys ...";
  ASSERT_OK_AND_ASSIGN(std::string signature, signer_a_->Sign(message));
  for (size_t i = 0; i < message.size(); ++i) {
    std::string tampered = message;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_THAT(verifier_a_->Verify(tampered, signature),
                StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("does not verify")))
        << i;
  }
  EXPECT_THAT(verifier_a_->Verify(message + " ", signature),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(verifier_a_->Verify(message.substr(1), signature),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(SignatureTest, AnotherKeysSignatureIsRejected) {
  ASSERT_OK_AND_ASSIGN(std::string by_b, signer_b_->Sign("I am hospital-a"));
  EXPECT_THAT(verifier_a_->Verify("I am hospital-a", by_b),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_OK(verifier_b_->Verify("I am hospital-a", by_b));
  // A freshly generated key that was never certified, too.
  ASSERT_OK_AND_ASSIGN(SecretBytes stranger_key, GeneratePrivateKey());
  ASSERT_OK_AND_ASSIGN(Signer stranger, Signer::Create(stranger_key));
  ASSERT_OK_AND_ASSIGN(std::string by_stranger, stranger.Sign("I am hospital-a"));
  EXPECT_THAT(verifier_a_->Verify("I am hospital-a", by_stranger),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(SignatureTest, MalformedKeysAndCertificatesAreRejected) {
  EXPECT_THAT(Signer::Create(SecretBytes()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Signer::Create(SecretBytes(std::string("not a key"))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PEM private key")));
  // A certificate is not a private key.
  EXPECT_THAT(Signer::Create(SecretBytes::CopyFrom(cert_a_)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A truncated key.
  absl::StatusOr<Signer> truncated =
      Signer::Create(SecretBytes(key_a_text_.substr(0, key_a_text_.size() / 2)));
  EXPECT_THAT(truncated, StatusIs(absl::StatusCode::kInvalidArgument));
  // The error never quotes the key.
  const std::string body_line = key_a_text_.substr(key_a_text_.find('\n') + 1, 20);
  EXPECT_THAT(std::string(truncated.status().message()), Not(HasSubstr(body_line)));

  const auto [ed_key, ed_cert] = Ed25519KeyAndCert();
  EXPECT_THAT(Signer::Create(SecretBytes::CopyFrom(ed_key)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  EXPECT_THAT(Verifier::Create(ed_cert),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  EXPECT_THAT(Verifier::Create(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Verifier::Create("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Verifier::Create(key_a_text_), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SignatureTest, MovedSignerAndVerifierKeepWorking) {
  Signer moved = std::move(*signer_a_);
  Verifier moved_verifier = std::move(*verifier_a_);
  ASSERT_OK_AND_ASSIGN(std::string signature, moved.Sign("m"));
  EXPECT_OK(moved_verifier.Verify("m", signature));
}

}  // namespace
}  // namespace tessera::crypto
