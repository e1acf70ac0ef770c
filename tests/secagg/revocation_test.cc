// A peer's certificate, once verified, is remembered for the rest of the process
// (crypto/internal/certificate_cache.h: a session verifies a peer it has seen before from
// memory). The memo must never let a revoked peer back in: revocation is checked apart,
// against the site's newest CRL, in every session.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crypto/crl.h"
#include "crypto/internal/certificate_cache.h"
#include "crypto/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg::testing {
namespace {

using ::testing::HasSubstr;

class CachedCertificateTest : public FederationSuite<4> {
 protected:
  std::map<std::string, std::vector<uint32_t>> Inputs() const {
    std::map<std::string, std::vector<uint32_t>> inputs;
    uint64_t seed = 1;
    for (const std::string& id : federation_->ids()) inputs[id] = TestWords(seed++, 16);
    return inputs;
  }
};

TEST_F(CachedCertificateTest, APeerRevokedAfterItsCertificateWasRememberedIsRefused) {
  const std::vector<std::string>& ids = federation_->ids();
  // A first session: every site verifies every other's certificate, which is remembered.
  Session first(*federation_, MakeSetup(ids, 3, 16), Inputs());
  ASSERT_OK(first.Init());
  ASSERT_EQ(first.Run(), ServerState::kCompleted);

  // The CA then revokes site-02, and site-00 holds the new CRL.
  ASSERT_OK_AND_ASSIGN(crypto::CertificateInfo revoked,
                       crypto::ParseCertificate(federation_->party(ids[2]).cert_pem));
  ASSERT_OK_AND_ASSIGN(
      std::string crl_pem,
      crypto::CreateCrl(federation_->ca(), {{revoked.serial_hex, absl::Now(), "key-compromise"}},
                        /*number=*/2, absl::Now(), absl::Hours(24)));
  crypto::RevocationList crl(federation_->ca_cert_pem());
  ASSERT_OK(crl.Offer(crl_pem).status());

  // A second session: site-00 checks site-02's certificate from memory, and refuses it all
  // the same; the other sites, which hold no CRL, go on without site-00.
  SessionOptions options;
  options.edit_identity = [&](const std::string& id, ClientIdentity* identity) {
    if (id == ids[0]) identity->revocations = &crl;
  };
  const uint64_t remembered = crypto::internal::VerifiedCertificates::Instance().hits();
  Session second(*federation_, MakeSetup(ids, 3, 16), Inputs(), options);
  ASSERT_OK(second.Init());
  second.Run();
  EXPECT_GE(crypto::internal::VerifiedCertificates::Instance().hits(), remembered + 3)
      << "the second session verified no certificate from memory: the test would not be "
         "about the memo";
  EXPECT_EQ(second.client_abort(ids[0]), v1::SECAGG_UNTRUSTED_CERTIFICATE);
  ASSERT_NE(second.client(ids[0]), nullptr);
  EXPECT_THAT(second.client(ids[0])->abort_detail(),
              HasSubstr(absl::StrCat("the advertisement of ", ids[2], " is refused")));
  EXPECT_THAT(second.client(ids[0])->abort_detail(), HasSubstr("revoked"));
  // Without the CRL, the same remembered certificate is still accepted: the refusal above
  // is the CRL's, not a memo that forgot.
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(second.client_abort(ids[i]), v1::SECAGG_CLIENT_ABORT_UNSPECIFIED) << ids[i];
  }
}

}  // namespace
}  // namespace tessera::secagg::testing
