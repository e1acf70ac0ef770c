// Protocol version 2: the advertisement list names each certificate by its SHA-256
// (KeyAdvertisement.certificate_sha256) instead of carrying it, and a site completes the
// list from the certificates it holds or fetches (SecAggServer::ListedCertificates behind
// Federation.FetchCertificates). Shown here: the list the server posts carries no
// certificate, full and SecAgg+ sessions complete with the exact sum, the session id is
// the one the certificates give, the server hands a list's certificates to its listed
// clients only, and a client refuses a certificate that is not the one the digest names
// (a coordinator handing different sites different certificates for one entry), its own
// entry naming another certificate, and an entry with neither. Version 1 (certificates in the list)
// still runs.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "crypto/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using testing::FederationSuite;
using ::testing::HasSubstr;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;

constexpr int kSites = 24;
constexpr uint32_t kWords = 64;

class CertificateDigestTest : public FederationSuite<kSites> {
 protected:
  void SetUp() override {
    ids_ = federation_->ids();
    for (size_t i = 0; i < ids_.size(); ++i) inputs_[ids_[i]] = TestWords(i + 3, kWords);
  }

  v1::SecAggSetup VersionedSetup(uint32_t version) const {
    v1::SecAggSetup setup = MakeSetup(ids_, DefaultThreshold(kSites), kWords);
    setup.set_protocol_version(version);
    return setup;
  }

  // Runs a version 2 session in which the coordinator applies `edit` to the list it posts
  // to ids_[0] (before that site completes it); returns that site's abort.
  struct Abort {
    v1::SecAggClientAbort reason = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
    std::string detail;
    v1::SecAggClientAbort other_site = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;  // ids_[2]'s
  };
  Abort WithListEdited(const std::function<void(v1::AdvertisementList&)>& edit) {
    SessionOptions options;
    options.to_client = [&](v1::SecAggRound round, const std::string& recipient,
                            v1::SecAggServerMessage& message) {
      if (round == v1::SECAGG_SHARE_KEYS && recipient == ids_[0]) {
        edit(*message.mutable_advertisements());
      }
    };
    Session session(*federation_, VersionedSetup(2), inputs_, options);
    Abort out;
    if (!session.Init().ok()) return out;
    session.Run();
    out.reason = session.client_abort(ids_[0]);
    if (session.client(ids_[0]) != nullptr) out.detail = session.client(ids_[0])->abort_detail();
    out.other_site = session.client_abort(ids_[2]);
    return out;
  }

  // The list the server posted, as it went on the wire (before any site completed it).
  static const v1::AdvertisementList& PostedList(const Session& session, v1::SecAggRound round) {
    return session.delivered().at(round).begin()->second.advertisements();
  }

  std::vector<std::string> ids_;
  std::map<std::string, std::vector<uint32_t>> inputs_;
};

TEST_F(CertificateDigestTest, Version2ListCarriesDigestsAndTheSessionSumsExactly) {
  Session session(*federation_, VersionedSetup(2), inputs_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted);
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids_));
  const v1::AdvertisementList& list = PostedList(session, v1::SECAGG_SHARE_KEYS);
  ASSERT_EQ(list.entries_size(), kSites);
  for (const v1::AdvertisementEntry& entry : list.entries()) {
    EXPECT_TRUE(entry.advertisement().certificate().empty()) << entry.client_id();
    EXPECT_EQ(entry.advertisement().certificate_sha256(),
              crypto::Sha256(federation_->party(entry.client_id()).cert_pem));
  }
  // A certificate is about 730 bytes of PEM; an entry is now its keys, signature and
  // digests (about 225 bytes).
  EXPECT_LT(list.ByteSizeLong(), kSites * 400u);
}

TEST_F(CertificateDigestTest, Version1ListStillCarriesTheCertificates) {
  Session session(*federation_, VersionedSetup(1), inputs_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted);
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids_));
  for (const v1::AdvertisementEntry& entry : PostedList(session, v1::SECAGG_SHARE_KEYS).entries()) {
    EXPECT_EQ(entry.advertisement().certificate(), federation_->party(entry.client_id()).cert_pem);
  }
}

TEST_F(CertificateDigestTest, SecAggPlusVersion2SessionSumsExactly) {
  ASSERT_OK_AND_ASSIGN(std::optional<v1::SecAggSparse> sparse, SparseSetup(kSites, 0.1, 0.1, 4, 4));
  ASSERT_TRUE(sparse.has_value());
  v1::SecAggSetup setup = VersionedSetup(2);
  *setup.mutable_sparse() = *sparse;
  SessionOptions options;
  options.policy.sparse_min_colluding_fraction = 0.1;
  options.policy.sparse_min_security_bits = 4;
  Session session(*federation_, setup, inputs_, options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted);
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids_));
  for (const v1::AdvertisementEntry& entry :
       PostedList(session, v1::SECAGG_REVEAL_COINS).entries()) {
    EXPECT_TRUE(entry.advertisement().certificate().empty()) << entry.client_id();
  }
}

TEST_F(CertificateDigestTest, SessionIdIsTheSameWithTheCertificatesOrTheirDigests) {
  Session session(*federation_, VersionedSetup(2), inputs_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Step(), ServerState::kCollecting);  // the list is fixed
  const v1::AdvertisementList digests = session.server().Broadcast()->advertisements();
  std::vector<v1::AdvertisementEntry> with_digests(digests.entries().begin(),
                                                   digests.entries().end());
  std::vector<v1::AdvertisementEntry> with_certificates = with_digests;
  for (v1::AdvertisementEntry& entry : with_certificates) {
    entry.mutable_advertisement()->set_certificate(federation_->party(entry.client_id()).cert_pem);
    entry.mutable_advertisement()->clear_certificate_sha256();
  }
  const std::string setup_digest = with_digests.front().advertisement().setup_digest();
  EXPECT_EQ(SessionId(setup_digest, with_digests), SessionId(setup_digest, with_certificates));
}

TEST_F(CertificateDigestTest, ServerHandsTheListsCertificatesToItsListedClientsOnly) {
  SessionOptions options;
  options.stop_at[ids_[5]] = v1::SECAGG_ADVERTISE_KEYS;  // invited, never listed
  Session session(*federation_, VersionedSetup(2), inputs_, options);
  ASSERT_OK(session.Init());
  const std::string digest0 = crypto::Sha256(federation_->party(ids_[0]).cert_pem);
  const std::string digest1 = crypto::Sha256(federation_->party(ids_[1]).cert_pem);
  EXPECT_THAT(session.server().ListedCertificates(ids_[0], {&digest0, 1}),
              StatusIs(absl::StatusCode::kPermissionDenied));  // nothing advertised yet
  session.Deliver();  // the advertisements accepted, the step still open
  EXPECT_THAT(session.server().ListedCertificates(ids_[0], {&digest0, 1}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not fixed yet")));
  ASSERT_EQ(session.server().CloseRound(), ServerState::kCollecting);

  const std::vector<std::string> wanted = {digest1, digest0};
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> pems,
                       session.server().ListedCertificates(ids_[2], wanted));
  EXPECT_EQ(pems, (std::vector<std::string>{federation_->party(ids_[1]).cert_pem,
                                            federation_->party(ids_[0]).cert_pem}));
  EXPECT_THAT(session.server().ListedCertificates(ids_[5], wanted),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not listed")));
  EXPECT_THAT(session.server().ListedCertificates("outsider", wanted),
              StatusIs(absl::StatusCode::kPermissionDenied));
  const std::string unlisted = crypto::Sha256(federation_->party(ids_[5]).cert_pem);
  EXPECT_THAT(session.server().ListedCertificates(ids_[2], {&unlisted, 1}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no listed certificate")));
}

// The attack: the coordinator names one certificate in the list (it is in the session id
// every site signs) and hands a site another — here a second certificate the CA issued for
// the same site and key, which passes every check of the CA, the name and the signature.
// Sites would then have checked one entry against different certificates while agreeing
// on one session id. The site refuses it.
TEST_F(CertificateDigestTest, ClientRefusesACertificateOtherThanTheOneTheDigestNames) {
  const std::string& victim = ids_[1];  // ids_[0] gets another certificate for it
  ASSERT_OK_AND_ASSIGN(std::string csr,
                       crypto::CreateCsr(federation_->party(victim).key_pem, victim));
  crypto::SignOptions sign;
  sign.validity_days = 30;
  ASSERT_OK_AND_ASSIGN(std::string other,
                       crypto::SignCsr(federation_->ca(), csr, sign, absl::Now()));
  ASSERT_NE(other, federation_->party(victim).cert_pem);

  const Abort abort = WithListEdited([&](v1::AdvertisementList& list) {
    for (v1::AdvertisementEntry& entry : *list.mutable_entries()) {
      if (entry.client_id() == victim) entry.mutable_advertisement()->set_certificate(other);
    }
  });
  EXPECT_EQ(abort.reason, v1::SECAGG_UNTRUSTED_CERTIFICATE);
  EXPECT_THAT(abort.detail, HasSubstr(victim));
  EXPECT_THAT(abort.detail, HasSubstr("digest"));
  EXPECT_EQ(abort.other_site, v1::SECAGG_CLIENT_ABORT_UNSPECIFIED);
}

TEST_F(CertificateDigestTest, ClientRefusesItsOwnEntryNamingAnotherCertificate) {
  const Abort abort = WithListEdited([&](v1::AdvertisementList& list) {
    list.mutable_entries(0)->mutable_advertisement()->set_certificate_sha256(
        crypto::Sha256(federation_->party(ids_[1]).cert_pem));
  });
  EXPECT_EQ(abort.reason, v1::SECAGG_OWN_ADVERTISEMENT_ALTERED);
}

TEST_F(CertificateDigestTest, ClientRefusesAnEntryWithNeitherCertificateNorDigest) {
  const Abort abort = WithListEdited([](v1::AdvertisementList& list) {
    list.mutable_entries(3)->mutable_advertisement()->clear_certificate_sha256();
  });
  EXPECT_EQ(abort.reason, v1::SECAGG_MALFORMED_MESSAGE);
  EXPECT_THAT(abort.detail, HasSubstr("neither a certificate nor its digest"));
}

TEST_F(CertificateDigestTest, ClientAcceptsOnlyProtocolVersionsOneAndTwo) {
  for (uint32_t version : {0u, 3u}) {
    Session session(*federation_, VersionedSetup(version), inputs_);
    // The server refuses to open such a session; the client's own check is what counts here.
    v1::SecAggClientMessage reply;
    v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
    auto client =
        SecAggClient::Start(federation_->Identity(ids_[0]), ClientPolicy{}, VersionedSetup(version),
                            inputs_.at(ids_[0]), absl::Now(), &reply, &abort);
    EXPECT_FALSE(client.ok()) << version;
    EXPECT_EQ(abort, v1::SECAGG_BAD_SETUP) << version;
    EXPECT_THAT(session.Init(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("protocol_version")));
  }
}

}  // namespace
}  // namespace tessera::secagg
