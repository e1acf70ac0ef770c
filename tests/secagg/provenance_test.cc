// Round provenance (secagg/provenance.h): the record a server makes of a completed session
// verifies with the federation CA certificate alone, and every way of tampering with it —
// a signer dropped, the survivor set altered, a signature or an advertisement changed,
// another CA — is refused with an error naming the session, the site and the check.
#include "secagg/provenance.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/labels.h"
#include "proto/provenance.pb.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAreArray;
using testing::Federation;
using testing::FederationSuite;
using ::testing::HasSubstr;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;

constexpr uint32_t kWords = 64;

class ProvenanceTest : public FederationSuite<7> {
 protected:
  // A completed session of the seven sites (threshold 5) in which the sites of `stop_at`
  // stopped answering at the given step; its provenance, labelled as the coordinator labels
  // it.
  static v1::SessionProvenance Completed(const std::map<std::string, v1::SecAggRound>& stop_at,
                                         v1::Stage stage = v1::STAGE_FIT, uint32_t round = 2,
                                         const std::string& model_hash = "") {
    const std::vector<std::string>& ids = federation_->ids();
    v1::SecAggSetup setup = MakeSetup(ids, 5, kWords);
    setup.set_task_id("task-1");
    setup.set_round(round);
    setup.set_stage(stage);
    setup.set_attempt(1);
    if (!model_hash.empty()) setup.set_model_hash(model_hash);
    std::map<std::string, std::vector<uint32_t>> inputs;
    uint64_t seed = 1;
    for (const std::string& id : ids) inputs[id] = TestWords(seed++, kWords);
    SessionOptions options;
    options.stop_at = stop_at;
    Session session(*federation_, setup, inputs, options);
    EXPECT_OK(session.Init());
    EXPECT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
    absl::StatusOr<v1::SessionProvenance> p = session.server().Provenance();
    EXPECT_OK(p.status());
    if (!p.ok()) return {};
    p->set_session(absl::StrCat("task-1/r", round, "/", proto::StageLabel(stage), "/a1"));
    return *p;
  }

  static v1::RoundProvenance Round(const v1::SessionProvenance& session) {
    v1::RoundProvenance round;
    round.set_version(kProvenanceVersion);
    round.set_task_id("task-1");
    round.set_round(2);
    round.set_committed_unix_ms(absl::ToUnixMillis(absl::Now()));
    *round.add_sessions() = session;
    return round;
  }

  static absl::Status Verify(const v1::SessionProvenance& session) {
    return VerifySessionProvenance(session, federation_->ca_cert_pem(), absl::Now());
  }
};

TEST_F(ProvenanceTest, ProvenanceOfACompletedSessionVerifies) {
  const v1::SessionProvenance p = Completed({});
  EXPECT_THAT(p.survivors(), ElementsAreArray(federation_->ids()));
  EXPECT_EQ(p.signatures_size(), 7);
  EXPECT_EQ(p.advertisements_size(), 7);
  EXPECT_EQ(p.threshold(), 5u);
  EXPECT_EQ(p.stage(), v1::STAGE_FIT);
  EXPECT_OK(Verify(p));
  EXPECT_OK(VerifyRoundProvenance(Round(p), federation_->ca_cert_pem()));
}

TEST_F(ProvenanceTest, ProvenanceWithDropoutsNamesOnlyTheSurvivors) {
  // site-01 left before its masked input: not a survivor, but its advertisement is part of
  // the session id. site-03 sent its input and left before signing: a survivor without a
  // signature.
  const v1::SessionProvenance p =
      Completed({{"site-01", v1::SECAGG_MASKED_INPUT}, {"site-03", v1::SECAGG_CONSISTENCY_CHECK}});
  EXPECT_THAT(p.survivors(),
              ElementsAreArray({"site-00", "site-02", "site-03", "site-04", "site-05", "site-06"}));
  EXPECT_EQ(p.signatures_size(), 5);
  for (const v1::ConsistencySignature& s : p.signatures()) EXPECT_NE(s.client_id(), "site-03");
  EXPECT_EQ(p.advertisements_size(), 7);
  EXPECT_OK(Verify(p));
}

TEST_F(ProvenanceTest, ProvenanceWithoutASignerFailsNamingTheCount) {
  v1::SessionProvenance p = Completed({});
  for (int i = 0; i < 3; ++i) p.mutable_signatures()->RemoveLast();
  EXPECT_THAT(Verify(p),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("fit session task-1/r2/fit/a1"),
                             HasSubstr("4 consistency signatures, fewer than the threshold 5"))));
}

TEST_F(ProvenanceTest, ProvenanceWithAnAlteredSurvivorSetFailsNamingTheSigner) {
  v1::SessionProvenance p = Completed({});
  // The coordinator claims site-06's input was not in the sum.
  p.mutable_survivors()->RemoveLast();
  p.mutable_signatures()->RemoveLast();
  EXPECT_THAT(Verify(p), StatusIs(absl::StatusCode::kUnauthenticated,
                                  AllOf(HasSubstr("site-00"),
                                        HasSubstr("the consistency signature does not verify"))));
}

TEST_F(ProvenanceTest, ProvenanceWithAnUnknownSurvivorFails) {
  v1::SessionProvenance p = Completed({});
  p.add_survivors("site-99");
  EXPECT_THAT(Verify(p), StatusIs(absl::StatusCode::kInvalidArgument,
                                  AllOf(HasSubstr("site-99"), HasSubstr("did not advertise"))));
}

TEST_F(ProvenanceTest, ProvenanceWithAForgedSignatureFailsNamingTheSite) {
  v1::SessionProvenance p = Completed({});
  std::string* sig = p.mutable_signatures(2)->mutable_signature();
  (*sig)[sig->size() / 2] ^= 0x01;
  EXPECT_THAT(Verify(p), StatusIs(absl::StatusCode::kUnauthenticated,
                                  AllOf(HasSubstr("site-02"),
                                        HasSubstr("the consistency signature does not verify"))));
}

TEST_F(ProvenanceTest, ProvenanceCheckedWithAnotherCaFails) {
  const v1::SessionProvenance p = Completed({});
  EXPECT_THAT(VerifySessionProvenance(p, federation_->foreign_ca_cert_pem(), absl::Now()),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("site-00"), HasSubstr("certificate"))));
  EXPECT_THAT(VerifyRoundProvenance(Round(p), federation_->foreign_ca_cert_pem()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("task-1 round 2")));
}

TEST_F(ProvenanceTest, ProvenanceWithAnAlteredSetupFails) {
  v1::SessionProvenance p = Completed({});
  p.mutable_setup()->set_spec_hash(std::string(32, 'x'));
  EXPECT_THAT(Verify(p), StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("the setup digest is not the SHA-256 of the setup")));
  p = Completed({});
  p.set_round(3);
  EXPECT_THAT(Verify(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("differ from the setup's")));
}

TEST_F(ProvenanceTest, ProvenanceWithAnAdvertisementLeftOutFails) {
  v1::SessionProvenance p = Completed({});
  // Leaving a site's advertisement out changes the session id every site signed.
  p.mutable_advertisements()->DeleteSubrange(1, 1);
  EXPECT_THAT(Verify(p), StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("the session id does not follow")));
}

TEST_F(ProvenanceTest, ProvenanceWithAnotherSitesCertificateFails) {
  v1::SessionProvenance p = Completed({});
  *p.mutable_advertisements(1)->mutable_advertisement()->mutable_certificate() =
      p.advertisements(0).advertisement().certificate();
  EXPECT_THAT(Verify(p), StatusIs(absl::StatusCode::kUnauthenticated,
                                  AllOf(HasSubstr("site-01"), HasSubstr("the certificate names"))));
}

TEST_F(ProvenanceTest, RoundProvenanceRefusesASessionOfAnotherRound) {
  v1::RoundProvenance round = Round(Completed({}));
  round.set_round(3);
  EXPECT_THAT(VerifyRoundProvenance(round, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is of task-1 round 2")));
  round = Round(Completed({}));
  *round.add_sessions() = round.sessions(0);
  EXPECT_THAT(VerifyRoundProvenance(round, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("two fit sessions")));
  round = Round(Completed({}));
  round.set_version(2);
  EXPECT_THAT(VerifyRoundProvenance(round, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("provenance version 2")));
}

// One session per round: round 2's model is evaluated in round 3's FIT_EVALUATE session,
// which round 2's record holds too; it must have run on round 2's model.
TEST_F(ProvenanceTest, RoundProvenanceTakesTheNextRoundsFitEvaluateSessionOnItsModelOnly) {
  const std::string model(32, '\x2a');
  v1::RoundProvenance round = Round(Completed({}));
  round.set_model_hash(model);
  *round.add_sessions() = Completed({}, v1::STAGE_FIT_EVALUATE, 3, model);
  EXPECT_OK(VerifyRoundProvenance(round, federation_->ca_cert_pem()));

  v1::RoundProvenance other_model = round;
  other_model.set_model_hash(std::string(32, '\x2b'));
  EXPECT_THAT(VerifyRoundProvenance(other_model, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("task-1/r3/fit_evaluate/a1"),
                             HasSubstr("did not run on the round's model"))));
  v1::RoundProvenance twice = round;
  *twice.add_sessions() = round.sessions(1);
  EXPECT_THAT(VerifyRoundProvenance(twice, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("two fit_evaluate sessions")));
  // A FIT_EVALUATE session two rounds on is of another round.
  v1::RoundProvenance later = round;
  *later.mutable_sessions(1) = Completed({}, v1::STAGE_FIT_EVALUATE, 4, model);
  EXPECT_THAT(VerifyRoundProvenance(later, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is of task-1 round 4")));
}

TEST_F(ProvenanceTest, RoundProvenanceWithItsSessionsLeftOutFails) {
  v1::RoundProvenance round = Round(Completed({}));
  round.clear_sessions();
  EXPECT_THAT(VerifyRoundProvenance(round, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("neither a fit, a glm nor an analytics session")));
  round.set_round(0);
  EXPECT_THAT(VerifyRoundProvenance(round, federation_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no statistics session")));
  round.set_statistics_from("task-0");
  EXPECT_OK(VerifyRoundProvenance(round, federation_->ca_cert_pem()));
}

}  // namespace
}  // namespace tessera::secagg
