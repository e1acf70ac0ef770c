// Culprit naming (SecAggClient::culprit(), "Quarantine" in every name): a site whose
// encrypted shares are garbage is named by every peer it sent them to, before any masked
// input leaves; a coordinator that relabels, drops or repeats shares gets nobody named (only
// it can have done that); and a restored client names the same culprit as the original.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "secagg/client.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using testing::FederationSuite;
using ::testing::HasSubstr;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;

constexpr uint32_t kWords = 16;

class QuarantineCulpritTest : public FederationSuite<5> {
 protected:
  void SetUp() override {
    ids_ = federation_->ids();
    for (size_t i = 0; i < ids_.size(); ++i) inputs_[ids_[i]] = TestWords(i + 1, kWords);
  }

  std::unique_ptr<Session> Run(SessionOptions options) {
    auto session = std::make_unique<Session>(*federation_, MakeSetup(ids_, 4, kWords), inputs_,
                                             std::move(options));
    EXPECT_OK(session->Init());
    session->Run();
    return session;
  }

  std::vector<std::string> ids_;
  std::map<std::string, std::vector<uint32_t>> inputs_;
};

TEST_F(QuarantineCulpritTest, GarbageSharesNameTheirSenderAtEveryPeer) {
  const std::string culprit = ids_[3];
  SessionOptions options;
  options.to_server = [&](v1::SecAggRound round, const std::string& sender,
                          v1::SecAggClientMessage& message) {
    if (round != v1::SECAGG_SHARE_KEYS || sender != culprit) return;
    for (v1::EncryptedShare& share : *message.mutable_share_keys()->mutable_shares()) {
      for (char& c : *share.mutable_ciphertext()) c = static_cast<char>(c ^ 0x5a);
    }
  };
  auto session = Run(std::move(options));
  EXPECT_EQ(session->server().state(), ServerState::kAborted);
  for (const std::string& id : ids_) {
    SecAggClient* client = session->client(id);
    ASSERT_NE(client, nullptr) << id;
    if (id == culprit) {
      // Its peers' shares to it were genuine: it aborts nothing, and blames nobody.
      EXPECT_NE(client->state(), ClientState::kAborted);
      EXPECT_EQ(client->culprit(), "");
      continue;
    }
    EXPECT_EQ(client->state(), ClientState::kAborted) << id;
    EXPECT_EQ(client->abort_reason(), v1::SECAGG_CORRUPTED_SHARE) << id;
    EXPECT_THAT(client->abort_detail(), HasSubstr("the share from " + culprit));
    EXPECT_EQ(client->culprit(), culprit) << id;
    // No honest site's masked input left.
    auto sent = session->sent().find(v1::SECAGG_MASKED_INPUT);
    if (sent != session->sent().end()) {
      EXPECT_FALSE(sent->second.contains(id)) << id;
    }
  }
}

TEST_F(QuarantineCulpritTest, SharesTheCoordinatorRelabelsDropsOrRepeatsNameNobody) {
  const std::string victim = ids_[0];
  using Tamper = std::function<void(v1::ShareRelay&)>;
  const std::vector<std::pair<std::string, Tamper>> tampers = {
      {"swapped senders",
       [](v1::ShareRelay& relay) {
         const std::string first = relay.shares(0).sender();
         relay.mutable_shares(0)->set_sender(relay.shares(1).sender());
         relay.mutable_shares(1)->set_sender(first);
       }},
      {"another receiver",
       [&](v1::ShareRelay& relay) { relay.mutable_shares(0)->set_receiver(ids_[2]); }},
      {"a share missing", [](v1::ShareRelay& relay) { relay.mutable_shares()->RemoveLast(); }},
      {"a share repeated", [](v1::ShareRelay& relay) { *relay.add_shares() = relay.shares(0); }},
  };
  for (const auto& [name, tamper] : tampers) {
    SCOPED_TRACE(name);
    SessionOptions options;
    options.to_client = [&, tamper = tamper](v1::SecAggRound round, const std::string& recipient,
                                             v1::SecAggServerMessage& message) {
      if (round == v1::SECAGG_MASKED_INPUT && recipient == victim) {
        tamper(*message.mutable_share_relay());
      }
    };
    auto session = Run(std::move(options));
    SecAggClient* client = session->client(victim);
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->state(), ClientState::kAborted);
    EXPECT_NE(client->abort_reason(), v1::SECAGG_CORRUPTED_SHARE) << client->abort_detail();
    EXPECT_EQ(client->culprit(), "") << client->abort_detail();
  }
}

TEST_F(QuarantineCulpritTest, RestoredAbortedClientNamesTheSameCulprit) {
  const std::string culprit = ids_[2];
  const std::string victim = ids_[0];
  SessionOptions options;
  options.to_client = [&](v1::SecAggRound round, const std::string& recipient,
                          v1::SecAggServerMessage& message) {
    if (round != v1::SECAGG_MASKED_INPUT || recipient != victim) return;
    for (v1::EncryptedShare& share : *message.mutable_share_relay()->mutable_shares()) {
      if (share.sender() == culprit) (*share.mutable_ciphertext())[20] ^= 0x01;
    }
  };
  auto session = Run(std::move(options));
  SecAggClient* original = session->client(victim);
  ASSERT_NE(original, nullptr);
  ASSERT_EQ(original->culprit(), culprit);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<SecAggClient> copy,
      SecAggClient::Restore(federation_->Identity(victim), ClientPolicy(), original->Snapshot()));
  EXPECT_EQ(copy->state(), ClientState::kAborted);
  EXPECT_EQ(copy->culprit(), culprit);
}

}  // namespace
}  // namespace tessera::secagg
