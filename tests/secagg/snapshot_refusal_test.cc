// Snapshots that are not what was taken: a client's or the server's snapshot corrupted,
// truncated or from another session is refused with DATA_LOSS (nothing restored), and a
// client snapshot taken without its input needs back the very input it was taken with.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/secagg_state.pb.h"
#include "secagg/client.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/secagg/snapshot_fixture.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using testing::Deterministic;
using testing::kWords;
using testing::MakeSetup;
using testing::ParseClient;
using testing::SerializeClient;
using testing::Session;
using testing::SessionOptions;

class SnapshotRefusalTest : public testing::SnapshotTest {};

TEST_F(SnapshotRefusalTest, ClientRefusesCorruptedOrMismatchedSnapshots) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(session.Init());
  session.Step();
  const v1::SecAggClientSnapshot advertised = ParseClient(session.client(ids[0])->Snapshot());
  session.Step();
  session.Step();
  const v1::SecAggClientSnapshot relayed = ParseClient(session.client(ids[0])->Snapshot());
  ASSERT_EQ(relayed.state(), v1::SECAGG_CLIENT_MASKED_INPUT_SENT);
  const ClientIdentity identity = federation_->Identity(ids[0]);
  EXPECT_OK(SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(advertised)));
  EXPECT_OK(SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(relayed)));

  using Change = std::function<void(v1::SecAggClientSnapshot&)>;
  const std::vector<std::pair<const char*, Change>> changes = {
      {"version", [](auto& s) { s.set_version(2); }},
      {"client id", [](auto& s) { s.set_client_id("site-99"); }},
      {"state", [](auto& s) { s.set_state(v1::SECAGG_CLIENT_STATE_UNSPECIFIED); }},
      {"abort reason while running",
       [](auto& s) { s.set_abort_reason(v1::SECAGG_CORRUPTED_SHARE); }},
      {"setup threshold", [](auto& s) { s.mutable_setup()->set_threshold(3); }},
      {"setup nonce", [](auto& s) { (*s.mutable_setup()->mutable_session_nonce())[0] ^= 1; }},
      {"short key", [](auto& s) { s.mutable_mask_private_key()->pop_back(); }},
      {"another key", [](auto& s) { (*s.mutable_channel_private_key())[9] ^= 1; }},
      {"seed missing", [](auto& s) { s.clear_self_mask_seed(); }},
      {"input left", [](auto& s) { s.set_input(std::string(4 * kWords, 'i')); }},
      {"session id", [](auto& s) { (*s.mutable_session_id())[0] ^= 1; }},
      {"list entry", [](auto& s) { s.mutable_advertisement_entries()->RemoveLast(); }},
      {"own entry",
       [](auto& s) {
         (*s.mutable_advertisement_entries(0)->mutable_advertisement()->mutable_signature())[5] ^=
             1;
       }},
      {"held share missing", [](auto& s) { s.mutable_held_shares()->RemoveLast(); }},
      {"held share at another point",
       [](auto& s) { (*s.mutable_held_shares(1)->mutable_seed_share())[0] ^= 3; }},
      {"share holders", [](auto& s) { s.mutable_share_holders()->RemoveLast(); }},
      {"signed survivors before signing", [](auto& s) { s.add_signed_survivors("site-00"); }},
      {"wiped secrets", [](auto& s) { s.set_state(v1::SECAGG_CLIENT_COMPLETED); }},
  };
  for (const auto& [name, change] : changes) {
    SCOPED_TRACE(name);
    v1::SecAggClientSnapshot changed = relayed;
    change(changed);
    EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(changed)),
                StatusIs(absl::StatusCode::kDataLoss));
  }
  // In ADVERTISED: the input is due, the list is not.
  for (const auto& [name, change] : std::vector<std::pair<const char*, Change>>{
           {"input short", [](auto& s) { s.mutable_input()->resize(4 * kWords - 4); }},
           {"list early",
            [&](auto& s) { *s.mutable_advertisement_entries() = relayed.advertisement_entries(); }},
       }) {
    SCOPED_TRACE(name);
    v1::SecAggClientSnapshot changed = advertised;
    change(changed);
    EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(changed)),
                StatusIs(absl::StatusCode::kDataLoss));
  }
  // Bytes that do not parse, another client, a policy that now refuses the setup.
  EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(),
                                    crypto::SecretBytes::CopyFrom("\x0a\xff\xff")),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(SecAggClient::Restore(federation_->Identity(ids[1]), ClientPolicy(),
                                    SerializeClient(relayed)),
              StatusIs(absl::StatusCode::kDataLoss));
  ClientPolicy strict;
  strict.min_threshold = 5;
  EXPECT_THAT(SecAggClient::Restore(identity, strict, SerializeClient(relayed)),
              StatusIs(absl::StatusCode::kDataLoss));
}

// A snapshot taken without its input (the bulk of it until the masked input, and the
// same at every step before it) names the input by digest: restored with the input given
// back it answers like the original; without it, or with another input, DATA_LOSS. Once
// the masked input is sent there is no input to keep apart.
TEST_F(SnapshotRefusalTest, AnInputKeptApartIsNeededBackAndMustBeTheOneTakenWith) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(session.Init());
  session.Step();  // the advertisements: the clients hold their inputs
  SecAggClient* original = session.client(ids[0]);
  const ClientIdentity identity = federation_->Identity(ids[0]);
  const crypto::SecretBytes input = original->InputBytes();
  ASSERT_EQ(input.size(), 4 * kWords);
  const crypto::SecretBytes apart = original->SnapshotWithoutInput();
  const v1::SecAggClientSnapshot parsed = ParseClient(apart);
  EXPECT_TRUE(parsed.input().empty());
  EXPECT_EQ(parsed.input_sha256(), crypto::Sha256(input.view()));
  EXPECT_EQ(ParseClient(original->Snapshot()).input(), std::string(input.view()));
  // The input's words are what the snapshot leaves out (less the digest naming them).
  EXPECT_GT(original->Snapshot().size(), apart.size() + 4 * kWords - 64);

  EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(), apart),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("kept apart")));
  std::string other(input.view());
  other[7] ^= 1;
  const crypto::SecretBytes wrong(std::move(other));
  EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(), apart, &wrong),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("not the one")));
  v1::SecAggClientSnapshot both = parsed;
  both.set_input(std::string(input.view()));
  EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(both), &input),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("both")));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SecAggClient> copy,
                       SecAggClient::Restore(identity, ClientPolicy(), apart, &input));
  EXPECT_TRUE(copy->Snapshot().Equals(original->Snapshot()));
  EXPECT_TRUE(copy->SnapshotWithoutInput().Equals(apart));
  // On to the masked input: the copy's is the original's.
  session.Step();
  ASSERT_EQ(session.server().round(), v1::SECAGG_MASKED_INPUT);
  SecAggClient* advanced = session.client(ids[0]);
  const v1::SecAggClientSnapshot shared = ParseClient(advanced->SnapshotWithoutInput());
  ASSERT_FALSE(shared.input_sha256().empty());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<SecAggClient> restored,
      SecAggClient::Restore(identity, ClientPolicy(), advanced->SnapshotWithoutInput(), &input));
  const v1::SecAggServerMessage request = session.server().Outgoing().at(ids[0]);
  ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage a, advanced->Handle(request));
  ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage b, restored->Handle(request));
  EXPECT_EQ(Deterministic(a), Deterministic(b));
  EXPECT_TRUE(advanced->InputBytes().empty());
  const v1::SecAggClientSnapshot sent = ParseClient(advanced->SnapshotWithoutInput());
  EXPECT_TRUE(sent.input().empty());
  EXPECT_TRUE(sent.input_sha256().empty());
  EXPECT_TRUE(advanced->SnapshotWithoutInput().Equals(advanced->Snapshot()));
}

TEST_F(SnapshotRefusalTest, ServerRefusesCorruptedOrMismatchedSnapshots) {
  const auto ids = Ids(5);
  SessionOptions options;
  options.stop_at[ids[4]] = v1::SECAGG_MASKED_INPUT;
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids), options);
  ASSERT_OK(session.Init());
  std::map<v1::SecAggRound, v1::SecAggServerSnapshot> at;
  while (session.server().state() == ServerState::kCollecting) {
    ASSERT_OK_AND_ASSIGN(at[session.server().round()], session.server().Snapshot());
    session.Step();
  }
  ASSERT_EQ(session.server().state(), ServerState::kCompleted);
  const ServerOptions& server_options = session.server_options();
  for (const auto& [round, snapshot] : at) {
    EXPECT_OK(SecAggServer::Restore(snapshot, server_options)) << v1::SecAggRound_Name(round);
  }

  using Change = std::function<void(v1::SecAggServerSnapshot&)>;
  struct Case {
    const char* name;
    v1::SecAggRound round;
    Change change;
  };
  const std::vector<Case> cases = {
      {"version", v1::SECAGG_SHARE_KEYS, [](auto& s) { s.set_version(0); }},
      {"threshold", v1::SECAGG_SHARE_KEYS, [](auto& s) { s.mutable_setup()->set_threshold(3); }},
      {"completed", v1::SECAGG_UNMASKING,
       [](auto& s) { s.set_state(v1::SECAGG_SERVER_COMPLETED); }},
      {"no round", v1::SECAGG_SHARE_KEYS,
       [](auto& s) { s.set_round(v1::SECAGG_ROUND_UNSPECIFIED); }},
      {"abort reason while collecting", v1::SECAGG_SHARE_KEYS,
       [](auto& s) { s.set_abort_reason(v1::SECAGG_SERVER_CANCELLED); }},
      {"uninvited expected", v1::SECAGG_ADVERTISE_KEYS, [](auto& s) { s.add_expected("zz"); }},
      {"advertisements mid-step", v1::SECAGG_ADVERTISE_KEYS,
       [&](auto& s) { *s.mutable_clients() = at.at(v1::SECAGG_SHARE_KEYS).clients(); }},
      {"session id", v1::SECAGG_SHARE_KEYS, [](auto& s) { (*s.mutable_session_id())[3] ^= 1; }},
      {"advertisement", v1::SECAGG_SHARE_KEYS,
       [](auto& s) {
         (*s.mutable_clients(2)->mutable_advertisement()->mutable_mask_public_key())[0] ^= 1;
       }},
      {"point", v1::SECAGG_SHARE_KEYS, [](auto& s) { s.mutable_clients(1)->set_point(7); }},
      {"relay missing", v1::SECAGG_MASKED_INPUT, [](auto& s) { s.mutable_relays()->RemoveLast(); }},
      {"sum size", v1::SECAGG_CONSISTENCY_CHECK,
       [](auto& s) { s.mutable_masked_sum()->pop_back(); }},
      {"sum of another size at the masked-input boundary", v1::SECAGG_MASKED_INPUT,
       [](auto& s) { s.set_masked_sum(std::string(4, '\0')); }},
      {"share holder without commitment", v1::SECAGG_MASKED_INPUT,
       [](auto& s) { s.mutable_clients(0)->clear_self_mask_commitment(); }},
      {"survivors", v1::SECAGG_CONSISTENCY_CHECK,
       [](auto& s) { s.mutable_survivors()->RemoveLast(); }},
      {"survivor also dropped", v1::SECAGG_CONSISTENCY_CHECK,
       [](auto& s) { s.add_dropped_holders(s.survivors(0)); }},
      {"request for another set", v1::SECAGG_UNMASKING,
       [](auto& s) { s.mutable_unmasking_request()->mutable_survivors()->RemoveLast(); }},
      {"too few signatures", v1::SECAGG_UNMASKING,
       [](auto& s) { s.mutable_unmasking_request()->mutable_signatures()->RemoveLast(); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::SecAggServerSnapshot changed = at.at(c.round);
    c.change(changed);
    EXPECT_THAT(SecAggServer::Restore(changed, server_options),
                StatusIs(absl::StatusCode::kDataLoss));
  }
}

}  // namespace
}  // namespace tessera::secagg
