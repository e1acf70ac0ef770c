#include "crypto/aead.h"

#include <openssl/evp.h>

#include <optional>
#include <set>
#include <string>
#include <utility>

#include "crypto/hash.h"
#include "crypto/internal/openssl_util.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/test_hex.h"
#include "tests/testing/status_matchers.h"

namespace tessera::crypto {
namespace {

using ::tessera::crypto::testing::FromHex;
using ::tessera::crypto::testing::SecretFromHex;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// Test cases 13-16 of McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)"
// (revised 2005), appendix B: the AES-256 ones with a 96-bit IV. (The same vectors appear
// in NIST's GCM test set.)
struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

constexpr char kKey1516[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";

const GcmVector kVectors[] = {
    {"test case 13 (empty)", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"test case 14 (one zero block)",
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"test case 15 (64 bytes, no AD)", kKey1516, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"test case 16 (60 bytes, 20 bytes AD)", kKey1516, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

// AES-256-GCM with a chosen nonce, straight from OpenSSL's EVP API, in AesGcm256's format
// (nonce || ciphertext || tag). AesGcm256 makes its own nonces and has no such entry
// point, so the known-answer test checks this reference against the published vectors
// and AesGcm256's output against this reference at the nonce AesGcm256 chose.
std::string ReferenceSeal(std::string_view key, std::string_view nonce, std::string_view plaintext,
                          std::string_view aad) {
  const internal::UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
  const auto u = [](std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
  };
  std::string ciphertext(plaintext.size() + 16, '\0');
  auto* out = reinterpret_cast<unsigned char*>(ciphertext.data());
  int len = 0;
  int final_len = 0;
  const bool ok =
      ctx != nullptr && key.size() == 32 && nonce.size() == 12 &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u(key), u(nonce)) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, u(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), out, &len, u(plaintext), static_cast<int>(plaintext.size())) ==
          1 &&
      EVP_EncryptFinal_ex(ctx.get(), out + len, &final_len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out + plaintext.size()) == 1;
  if (!ok) ADD_FAILURE() << "the reference AES-256-GCM failed";
  return std::string(nonce) + ciphertext;
}

TEST(AesGcm256Test, McGrewViegaKnownAnswers) {
  for (const GcmVector& v : kVectors) {
    SCOPED_TRACE(v.name);
    const std::string published = std::string(v.iv) + v.ciphertext + v.tag;
    // nonce || ciphertext || tag
    ASSERT_EQ(
        ToHex(ReferenceSeal(FromHex(v.key), FromHex(v.iv), FromHex(v.plaintext), FromHex(v.aad))),
        published);
    ASSERT_OK_AND_ASSIGN(AesGcm256 aead, AesGcm256::Create(SecretFromHex(v.key)));
    // The published ciphertext decrypts.
    ASSERT_OK_AND_ASSIGN(SecretBytes opened, aead.Decrypt(FromHex(published), FromHex(v.aad)));
    EXPECT_EQ(ToHex(opened.view()), v.plaintext);
    // What we produce is AES-256-GCM at the nonce we chose, and decrypts.
    ASSERT_OK_AND_ASSIGN(std::string sealed, aead.Encrypt(FromHex(v.plaintext), FromHex(v.aad)));
    EXPECT_EQ(ToHex(sealed),
              ToHex(ReferenceSeal(FromHex(v.key), sealed.substr(0, AesGcm256::kNonceBytes),
                                  FromHex(v.plaintext), FromHex(v.aad))));
    ASSERT_OK_AND_ASSIGN(SecretBytes opened2, aead.Decrypt(sealed, FromHex(v.aad)));
    EXPECT_EQ(ToHex(opened2.view()), v.plaintext);
  }
}

class AesGcm256Fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(SecretBytes key, RandomBytes(32));
    ASSERT_OK_AND_ASSIGN(AesGcm256 aead, AesGcm256::Create(std::move(key)));
    aead_.emplace(std::move(aead));
  }
  std::optional<AesGcm256> aead_;
};

TEST_F(AesGcm256Fixture, RoundTripsEverySize) {
  for (size_t size : {0, 1, 15, 16, 17, 44, 1000, 70000}) {
    std::string plaintext(size, '\0');
    for (size_t i = 0; i < size; ++i) plaintext[i] = static_cast<char>(i * 31 + 7);
    ASSERT_OK_AND_ASSIGN(std::string sealed, aead_->Encrypt(plaintext, "ad"));
    EXPECT_EQ(sealed.size(), size + AesGcm256::kNonceBytes + AesGcm256::kTagBytes);
    ASSERT_OK_AND_ASSIGN(SecretBytes opened, aead_->Decrypt(sealed, "ad"));
    EXPECT_EQ(opened.view(), plaintext) << size;
  }
}

TEST_F(AesGcm256Fixture, EveryTamperedByteIsRejected) {
  const std::string plaintext = "a Shamir share of a client's mask key, 44 bytes";
  const std::string ad = "session=7 from=3 to=5";
  ASSERT_OK_AND_ASSIGN(std::string sealed, aead_->Encrypt(plaintext, ad));
  // Nonce, ciphertext and tag: every byte, with a low and a high bit flipped.
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80}) {
      std::string tampered = sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ flip);
      EXPECT_THAT(aead_->Decrypt(tampered, ad), StatusIs(absl::StatusCode::kUnauthenticated))
          << "byte " << i << " flip " << int{flip};
    }
  }
  // Every byte of the associated data, too.
  for (size_t i = 0; i < ad.size(); ++i) {
    std::string wrong_ad = ad;
    wrong_ad[i] = static_cast<char>(wrong_ad[i] ^ 0x01);
    EXPECT_THAT(aead_->Decrypt(sealed, wrong_ad), StatusIs(absl::StatusCode::kUnauthenticated));
  }
  ASSERT_OK_AND_ASSIGN(SecretBytes opened, aead_->Decrypt(sealed, ad));
  EXPECT_EQ(opened.view(), plaintext);
}

TEST_F(AesGcm256Fixture, WrongAssociatedDataIsRejected) {
  ASSERT_OK_AND_ASSIGN(std::string sealed, aead_->Encrypt("share", "to=5"));
  EXPECT_THAT(aead_->Decrypt(sealed, "to=6"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("authenticate")));
  EXPECT_THAT(aead_->Decrypt(sealed, ""), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(aead_->Decrypt(sealed, "to=5 "), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AesGcm256Fixture, WrongKeyIsRejected) {
  ASSERT_OK_AND_ASSIGN(std::string sealed, aead_->Encrypt("share", "ad"));
  ASSERT_OK_AND_ASSIGN(SecretBytes other_key, RandomBytes(32));
  ASSERT_OK_AND_ASSIGN(AesGcm256 other, AesGcm256::Create(std::move(other_key)));
  EXPECT_THAT(other.Decrypt(sealed, "ad"), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AesGcm256Fixture, TruncatedAndExtendedCiphertexts) {
  ASSERT_OK_AND_ASSIGN(std::string sealed, aead_->Encrypt("payload", "ad"));
  // Shorter than nonce + tag: malformed.
  for (size_t size = 0; size < AesGcm256::kNonceBytes + AesGcm256::kTagBytes; ++size) {
    EXPECT_THAT(aead_->Decrypt(sealed.substr(0, size), "ad"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 28 bytes")))
        << size;
  }
  // Long enough but cut or extended: it does not authenticate.
  for (size_t size = AesGcm256::kNonceBytes + AesGcm256::kTagBytes; size < sealed.size(); ++size) {
    EXPECT_THAT(aead_->Decrypt(sealed.substr(0, size), "ad"),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << size;
  }
  EXPECT_THAT(aead_->Decrypt(sealed + '\0', "ad"), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(aead_->Decrypt(sealed.substr(1), "ad"), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AesGcm256Fixture, EveryEncryptionUsesAFreshNonce) {
  std::set<std::string> nonces;
  std::set<std::string> ciphertexts;
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string sealed, aead_->Encrypt("same plaintext", "same ad"));
    nonces.insert(sealed.substr(0, AesGcm256::kNonceBytes));
    ciphertexts.insert(sealed.substr(AesGcm256::kNonceBytes));
  }
  EXPECT_EQ(nonces.size(), 200u);
  EXPECT_EQ(ciphertexts.size(), 200u);
}

TEST(AesGcm256Test, WrongKeySizesAreRejected) {
  for (size_t size : {0, 16, 24, 31, 33}) {
    const std::string key(size, 'K');
    absl::StatusOr<AesGcm256> aead = AesGcm256::Create(SecretBytes::CopyFrom(key));
    EXPECT_THAT(aead, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
    if (size > 0) {
      EXPECT_THAT(std::string(aead.status().message()), Not(HasSubstr(key)));
      EXPECT_THAT(std::string(aead.status().message()), Not(HasSubstr(ToHex(key))));
    }
  }
}

TEST(AesGcm256Test, ErrorsNeverContainKeyOrPlaintext) {
  const std::string key(32, 'K');
  ASSERT_OK_AND_ASSIGN(AesGcm256 aead, AesGcm256::Create(SecretBytes::CopyFrom(key)));
  const std::string plaintext = "PLAINTEXT-SECRET";
  ASSERT_OK_AND_ASSIGN(std::string sealed, aead.Encrypt(plaintext, "ad"));
  for (const absl::Status& status :
       {aead.Decrypt(sealed, "wrong").status(), aead.Decrypt(sealed.substr(0, 5), "ad").status()}) {
    ASSERT_FALSE(status.ok());
    const std::string message(status.message());
    EXPECT_THAT(message, Not(HasSubstr("KKKK")));
    EXPECT_THAT(message, Not(HasSubstr(ToHex(key).substr(0, 8))));
    EXPECT_THAT(message, Not(HasSubstr("PLAINTEXT")));
  }
}

}  // namespace
}  // namespace tessera::crypto
