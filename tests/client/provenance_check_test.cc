// The site's check of a round's provenance against its own ledger (client/provenance_check.h):
// a record that agrees with what the site sent passes; a survivor set without the site, a
// signature other than the one it sent, or a claimed input it has no record of sending is a
// mismatch naming the session; a session of the round it sent in but the record leaves out
// is a note.
#include "client/provenance_check.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/provenance.pb.h"
#include "proto/site_ledger.pb.h"

namespace tessera::client {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Outcome = v1::ProvenanceSessionCheck;

constexpr char kSite[] = "hospital-b";
constexpr char kFit[] = "task-1/r1/fit/a1";

class ProvenanceCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    round_.set_version(1);
    round_.set_task_id("task-1");
    round_.set_round(1);
    v1::SessionProvenance* fit = round_.add_sessions();
    fit->set_task_id("task-1");
    fit->set_round(1);
    fit->set_stage(v1::STAGE_FIT);
    fit->set_session(kFit);
    for (const char* site : {"hospital-a", "hospital-b", "hospital-c"}) {
      fit->add_survivors(site);
      v1::ConsistencySignature* s = fit->add_signatures();
      s->set_client_id(site);
      s->set_signature(std::string("sig of ") + site);
    }
    v1::AuditTask* task = summary_.add_tasks();
    task->set_task_id("task-1");
    AddMine(kFit, /*round=*/1, "sig of hospital-b");
  }

  v1::AuditSession* AddMine(const std::string& label, uint32_t round,
                            const std::string& signature) {
    v1::AuditSession* s = summary_.mutable_tasks(0)->add_sessions();
    s->set_session(label);
    s->set_round(round);
    s->set_stage(v1::STAGE_FIT);
    s->set_last_step(v1::SECAGG_UNMASKING);
    s->set_sent_masked_input(true);
    s->set_state("SITE_SESSION_COMPLETED");
    s->set_masked_input_request_sha256(std::string(32, 'm'));
    s->set_consistency_signature(signature);
    return s;
  }

  // The record without hospital-b: survivors and signers hospital-a and hospital-c.
  void LeaveOutThisSite() {
    v1::SessionProvenance* fit = round_.mutable_sessions(0);
    fit->clear_survivors();
    fit->add_survivors("hospital-a");
    fit->add_survivors("hospital-c");
    fit->mutable_signatures()->DeleteSubrange(1, 1);
  }

  v1::ProvenanceCheck Check() const { return CheckRoundProvenance(round_, kSite, summary_); }

  v1::RoundProvenance round_;
  v1::AuditSummary summary_;
};

TEST_F(ProvenanceCheckTest, MatchingRecordIsOk) {
  const v1::ProvenanceCheck check = Check();
  EXPECT_TRUE(check.ok());
  EXPECT_EQ(check.site_id(), kSite);
  ASSERT_EQ(check.sessions_size(), 1);
  EXPECT_EQ(check.sessions(0).session(), kFit);
  EXPECT_EQ(check.sessions(0).outcome(), Outcome::OK);
  EXPECT_THAT(check.sessions(0).detail(), HasSubstr("signature is the one this site sent"));
}

TEST_F(ProvenanceCheckTest, SiteMissingFromSurvivorsIsAMismatch) {
  LeaveOutThisSite();
  const v1::ProvenanceCheck check = Check();
  EXPECT_FALSE(check.ok());
  ASSERT_EQ(check.sessions_size(), 1);
  EXPECT_EQ(check.sessions(0).outcome(), Outcome::MISMATCH);
  EXPECT_THAT(check.sessions(0).detail(),
              AllOf(HasSubstr("hospital-b signed the survivor set of task-1/r1/fit/a1"),
                    HasSubstr("does not list it among the survivors")));
}

TEST_F(ProvenanceCheckTest, SignatureOtherThanTheOneSentIsAMismatch) {
  round_.mutable_sessions(0)->mutable_signatures(1)->set_signature("sig of hospital-a");
  const v1::ProvenanceCheck check = Check();
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(check.sessions(0).outcome(), Outcome::MISMATCH);
  EXPECT_THAT(check.sessions(0).detail(),
              HasSubstr("the signature the coordinator holds for hospital-b in task-1/r1/fit/a1 "
                        "is not the one this site sent"));
}

TEST_F(ProvenanceCheckTest, ListedWithoutARecordOfSendingIsAMismatch) {
  summary_.mutable_tasks(0)->clear_sessions();
  const v1::ProvenanceCheck check = Check();
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(check.sessions(0).outcome(), Outcome::MISMATCH);
  EXPECT_EQ(check.sessions(0).detail(),
            "the coordinator lists hospital-b among the survivors of task-1/r1/fit/a1, but this "
            "site's ledger has no masked input in that session");

  // A session the site declined (or left before its masked input) is no record either.
  v1::AuditSession* declined = AddMine(kFit, 1, "");
  declined->set_sent_masked_input(false);
  declined->clear_masked_input_request_sha256();
  declined->set_declined(true);
  EXPECT_FALSE(Check().ok());
}

TEST_F(ProvenanceCheckTest, SiteThatTookNoPartAndIsNotListedIsOk) {
  summary_.mutable_tasks(0)->clear_sessions();
  LeaveOutThisSite();
  const v1::ProvenanceCheck check = Check();
  EXPECT_TRUE(check.ok());
  EXPECT_EQ(check.sessions(0).outcome(), Outcome::OK);
  EXPECT_THAT(check.sessions(0).detail(), HasSubstr("took no part"));
}

TEST_F(ProvenanceCheckTest, SessionOfTheRoundNotInTheRecordIsANote) {
  AddMine("task-1/r1/fit/a0", /*round=*/1, "an earlier signature");
  AddMine("task-1/r2/fit/a1", /*round=*/2, "a later round");  // another round: not reported
  const v1::ProvenanceCheck check = Check();
  EXPECT_TRUE(check.ok());
  ASSERT_EQ(check.sessions_size(), 2);
  EXPECT_EQ(check.sessions(1).session(), "task-1/r1/fit/a0");
  EXPECT_EQ(check.sessions(1).outcome(), Outcome::NOTE);
  EXPECT_THAT(check.sessions(1).detail(),
              HasSubstr("which the round's provenance does not list (a failed attempt?)"));
}

TEST_F(ProvenanceCheckTest, SignatureNotComparedWhenTheSessionRecordIsGone) {
  // The ledger still says the masked input left; the record (and the signature) expired.
  v1::AuditSession* mine = summary_.mutable_tasks(0)->mutable_sessions(0);
  mine->clear_state();
  mine->clear_consistency_signature();
  mine->clear_masked_input_request_sha256();
  const v1::ProvenanceCheck check = Check();
  EXPECT_TRUE(check.ok());
  EXPECT_EQ(check.sessions(0).outcome(), Outcome::OK);
  EXPECT_THAT(check.sessions(0).detail(), HasSubstr("not compared"));

  // With the record kept, a signature the site never sent is a mismatch.
  mine->set_state("SITE_SESSION_ABORTED");
  EXPECT_FALSE(Check().ok());
}

TEST_F(ProvenanceCheckTest, MaskedInputSentButDroppedBeforeSigningIsANote) {
  LeaveOutThisSite();
  summary_.mutable_tasks(0)->mutable_sessions(0)->clear_consistency_signature();
  const v1::ProvenanceCheck check = Check();
  EXPECT_TRUE(check.ok());
  EXPECT_EQ(check.sessions(0).outcome(), Outcome::NOTE);
  EXPECT_THAT(check.sessions(0).detail(), HasSubstr("its input is not in this sum"));
}

}  // namespace
}  // namespace tessera::client
