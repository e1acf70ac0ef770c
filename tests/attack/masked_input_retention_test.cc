// How long a site keeps its masked input (client/secure_sessions.h): in its session record
// until the session moves past that step, then only its digest. The coordinator records a
// step's end before it posts the next step's items, so a site asked for its consistency
// signature will never be asked for its masked input again by an honest coordinator; the
// record, rewritten at every later step, then no longer carries a model-sized vector.
//
// Against the real site agent and the real secure-aggregation server, in process. (The
// audit's digest of the masked input, from such a record: AuditE2eTest, with real daemons.)
#include <memory>
#include <string>

#include "client/site_store.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "proto/site_state.pb.h"
#include "secagg/server.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

using ::testing::HasSubstr;

// The session record `site` keeps for `label` (its store opened read-only beside its agent).
v1::SiteSessionRecord StoredRecord(AttackFederation& federation, const std::string& site,
                                   const std::string& label) {
  absl::StatusOr<std::unique_ptr<client::SiteStore>> store =
      client::OpenSiteStoreReadOnly(federation.config(site).data_dir());
  EXPECT_OK(store.status());
  if (!store.ok()) return {};
  absl::StatusOr<v1::SiteSessionRecord> record = (*store)->GetSession(label);
  EXPECT_OK(record.status());
  return record.ok() ? *record : v1::SiteSessionRecord();
}

// The answer to the masked-input step in `record` (null if none).
const v1::StepAnswer* MaskedInputAnswer(const v1::SiteSessionRecord& record) {
  for (const v1::StepAnswer& a : record.answers()) {
    if (a.step() == static_cast<uint32_t>(v1::SECAGG_MASKED_INPUT)) return &a;
  }
  return nullptr;
}

TEST(MaskedInputRetentionTest, TheVectorIsKeptUntilTheSessionMovesPastItThenOnlyItsDigest) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AttackFederation> federation, AttackFederation::Create(3));
  StagePlan plan;
  plan.stage = v1::STAGE_FIT;
  plan.cohort = federation->ids();
  ASSERT_OK_AND_ASSIGN(plan.spec, AttackFederation::ExampleSpec());
  ASSERT_OK_AND_ASSIGN(plan.standardization, federation->PooledStandardization(plan.spec));
  ASSERT_OK_AND_ASSIGN(plan.model,
                       proto::InitialParameters(plan.spec.model(), 30, plan.spec.seed()));
  const std::string site = "site-1";

  secagg::ServerOptions options;
  options.ca_cert_pem = federation->ca_cert_pem();
  options.now = absl::Now();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::SecAggServer> server,
                       secagg::SecAggServer::Create(SetupFor(plan), options));
  v1::WorkItem masked_item;  // the masked-input step's item for `site`
  v1::PushResultRequest sent;
  for (int step = 0; server->state() == secagg::ServerState::kCollecting; ++step) {
    for (auto& [client, message] : server->Outgoing()) {
      const v1::WorkItem item = StepItem(plan, step, message);
      const auto ask = [&, who = client](const v1::WorkItem& asked) {
        return federation->Ask(who, asked, [&](const std::vector<std::string>& sha256s) {
          return server->ListedCertificates(who, sha256s);
        });
      };
      const v1::PushResultRequest answer = ask(item);
      ASSERT_FALSE(answer.has_decline()) << client << ": " << answer.decline().detail();
      if (client == site && message.round() == v1::SECAGG_MASKED_INPUT) {
        masked_item = item;
        sent = answer;
        ASSERT_TRUE(sent.secagg().has_masked_input());
        ASSERT_FALSE(sent.secagg().masked_input().masked_input().empty());
        // Asked again in the same step (its answer lost, a coordinator restarted before it
        // closed the step): the same bytes, from the record, which holds the words.
        EXPECT_EQ(crypto::HashMessage(ask(item)), crypto::HashMessage(sent));
        const v1::SiteSessionRecord record = StoredRecord(*federation, site, item.secagg_session());
        const v1::StepAnswer* kept = MaskedInputAnswer(record);
        ASSERT_NE(kept, nullptr);
        EXPECT_EQ(crypto::HashMessage(kept->answer()), crypto::HashMessage(sent));
        EXPECT_EQ(kept->sent_sha256(), crypto::HashMessage(sent));
      }
      ASSERT_OK(server->Receive(client, answer.secagg()));
    }
    server->CloseRound();
  }
  ASSERT_EQ(server->state(), secagg::ServerState::kCompleted) << server->abort_detail();
  ASSERT_FALSE(sent.secagg().masked_input().masked_input().empty());

  // Past the masked input: the record keeps its digest, not its words.
  const std::string label = masked_item.secagg_session();
  const v1::SiteSessionRecord record = StoredRecord(*federation, site, label);
  const v1::StepAnswer* kept = MaskedInputAnswer(record);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->sent_sha256(), crypto::HashMessage(sent));
  EXPECT_TRUE(kept->answer().secagg().has_masked_input());
  EXPECT_TRUE(kept->answer().secagg().masked_input().masked_input().empty());
  EXPECT_EQ(record.SerializeAsString().find(sent.secagg().masked_input().masked_input()),
            std::string::npos)
      << "the record still holds the masked input's words";

  // A coordinator that goes back (restored from an old backup) and asks again gets a
  // decline that carries nothing of the vector.
  const v1::PushResultRequest again = federation->Ask(site, masked_item);
  ASSERT_TRUE(again.has_decline());
  EXPECT_EQ(again.decline().reason(), v1::Decline::SECURE_AGGREGATION_ABORTED);
  EXPECT_THAT(again.decline().detail(), HasSubstr("no longer kept"));
  EXPECT_LT(again.ByteSizeLong(), 512u);
}

}  // namespace
}  // namespace tessera::attack
