// Durable sessions: both state machines snapshotted at every step boundary, serialised,
// destroyed and restored continue the same session to the same sum; restored clients
// answer like the originals; the server's snapshots never hold an unmasking share, a seed
// or a key; dropouts and aborts survive. (Corrupted or mismatched snapshots:
// snapshot_refusal_test.cc.)
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/signature.h"
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
using ::testing::ElementsAreArray;
using testing::HasSecrets;
using ::testing::IsEmpty;
using testing::kWords;
using testing::MakeSetup;
using testing::OutgoingBytes;
using testing::ParseClient;
using testing::SerializeClient;
using testing::Session;
using testing::SessionOptions;
using testing::SnapshotTest;

// ---- restarts at each step boundary ----

// The boundary: 0 = right after Create, k = right after the k-th CloseRound.
class BoundaryTest : public SnapshotTest, public ::testing::WithParamInterface<int> {};

TEST_P(BoundaryTest, BothSidesRestartedContinueToTheSameSum) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(session.Init());
  for (int k = 0; k < GetParam(); ++k) ASSERT_EQ(session.Step(), ServerState::kCollecting);
  RestartEverything(session);
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(ids));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids));
  for (const std::string& id : ids) {
    EXPECT_EQ(session.client(id)->state(), ClientState::kCompleted) << id;
  }
}

TEST_P(BoundaryTest, DropoutsSurviveARestart) {
  // Seven clients, threshold 5: one gone after advertising, one after its masked input.
  const auto ids = Ids(7);
  SessionOptions options;
  options.stop_at[ids[1]] = v1::SECAGG_SHARE_KEYS;
  options.stop_at[ids[4]] = v1::SECAGG_CONSISTENCY_CHECK;
  Session session(*federation_, MakeSetup(ids, 5, kWords), Inputs(ids), options);
  ASSERT_OK(session.Init());
  for (int k = 0; k < GetParam(); ++k) ASSERT_EQ(session.Step(), ServerState::kCollecting);
  RestartEverything(session);
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  const std::vector<std::string> survivors = {ids[0], ids[2], ids[3], ids[4], ids[5], ids[6]};
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(survivors));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(survivors));
  ASSERT_EQ(session.server().drops().size(), 2u);
  EXPECT_EQ(session.server().drops()[0].client_id, ids[1]);
  EXPECT_EQ(session.server().drops()[0].round, v1::SECAGG_SHARE_KEYS);
  EXPECT_EQ(session.server().drops()[0].reason, v1::SECAGG_DROP_NO_ANSWER);
  EXPECT_EQ(session.server().drops()[1].client_id, ids[4]);
  EXPECT_EQ(session.server().drops()[1].round, v1::SECAGG_CONSISTENCY_CHECK);
}

std::string BoundaryName(const ::testing::TestParamInfo<int>& info) {
  static const char* const kNames[] = {"AfterCreate", "BeforeShareKeys", "BeforeMaskedInput",
                                       "BeforeConsistencyCheck", "BeforeUnmasking"};
  return kNames[info.param];
}

INSTANTIATE_TEST_SUITE_P(Boundaries, BoundaryTest, ::testing::Range(0, 5), BoundaryName);

TEST_F(SnapshotTest, RestartsAtEveryBoundaryOfOneSession) {
  const auto ids = Ids(7);
  SessionOptions options;
  options.stop_at[ids[6]] = v1::SECAGG_MASKED_INPUT;  // a dropped share holder
  Session session(*federation_, MakeSetup(ids, 5, kWords), Inputs(ids), options);
  ASSERT_OK(session.Init());
  while (session.server().state() == ServerState::kCollecting) {
    RestartEverything(session);
    session.Step();
  }
  ASSERT_EQ(session.server().state(), ServerState::kCompleted) << session.server().abort_detail();
  const auto survivors = Ids(6);
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(survivors));
  EXPECT_THAT(session.server().Snapshot(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// At the masked-input boundary the running sum is zero by construction: the snapshot does
// not carry vector_words zero words (4 MB for a model of 10^6 parameters, written to the
// coordinator's store and kept in memory through the step). A snapshot as earlier versions
// wrote it, with the zeros, still restores.
TEST_F(SnapshotTest, TheMaskedInputBoundaryHoldsNoRunningSum) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(session.Init());
  for (int k = 0; k < 2; ++k) ASSERT_EQ(session.Step(), ServerState::kCollecting);
  ASSERT_EQ(session.server().round(), v1::SECAGG_MASKED_INPUT);
  ASSERT_OK_AND_ASSIGN(v1::SecAggServerSnapshot snapshot, session.server().Snapshot());
  EXPECT_THAT(snapshot.masked_sum(), IsEmpty());
  EXPECT_EQ(snapshot.relays_size(), 5);

  snapshot.set_masked_sum(std::string(size_t{kWords} * 4, '\0'));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SecAggServer> restored,
                       SecAggServer::Restore(snapshot, session.server_options()));
  session.ReplaceServer(std::move(restored));
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids));
}

// ---- restored clients answer like the originals ----

TEST_F(SnapshotTest, RestoredClientsAnswerLikeTheOriginals) {
  const auto ids = Ids(5);
  for (int step = 1; step <= 4; ++step) {
    SCOPED_TRACE(absl::StrCat("after step ", step));
    Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
    ASSERT_OK(session.Init());
    for (int k = 0; k < step; ++k) session.Step();
    const v1::SecAggRound round = session.server().round();
    const auto outgoing = session.server().Outgoing();
    for (const std::string& id : ids) {
      SCOPED_TRACE(id);
      SecAggClient* original = session.client(id);
      const crypto::SecretBytes snapshot = original->Snapshot();
      ASSERT_OK_AND_ASSIGN(
          std::unique_ptr<SecAggClient> copy,
          SecAggClient::Restore(federation_->Identity(id), ClientPolicy(), snapshot));
      EXPECT_EQ(copy->state(), original->state());
      EXPECT_EQ(copy->session_id(), original->session_id());
      ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage a, original->Handle(outgoing.at(id)));
      ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage b, copy->Handle(outgoing.at(id)));
      EXPECT_EQ(copy->state(), original->state());
      switch (round) {
        case v1::SECAGG_SHARE_KEYS: {
          // Fresh Shamir coefficients and GCM nonces: the same shape, other ciphertexts.
          EXPECT_EQ(a.share_keys().self_mask_commitment(), b.share_keys().self_mask_commitment());
          ASSERT_EQ(a.share_keys().shares_size(), b.share_keys().shares_size());
          for (int i = 0; i < a.share_keys().shares_size(); ++i) {
            const v1::EncryptedShare& x = a.share_keys().shares(i);
            const v1::EncryptedShare& y = b.share_keys().shares(i);
            EXPECT_EQ(x.receiver(), y.receiver());
            EXPECT_EQ(x.ciphertext().size(), y.ciphertext().size());
            EXPECT_NE(x.ciphertext(), y.ciphertext());
          }
          break;
        }
        case v1::SECAGG_CONSISTENCY_CHECK: {
          // ECDSA is randomised: two valid signatures over the same survivor set.
          ASSERT_OK_AND_ASSIGN(crypto::Verifier verifier,
                               crypto::Verifier::Create(federation_->party(id).cert_pem));
          const std::vector<std::string> survivors(
              outgoing.at(id).survivor_list().survivors().begin(),
              outgoing.at(id).survivor_list().survivors().end());
          const std::string input = ConsistencySigningInput(original->session_id(), survivors);
          EXPECT_OK(verifier.Verify(input, a.consistency().signature()));
          EXPECT_OK(verifier.Verify(input, b.consistency().signature()));
          break;
        }
        default:
          EXPECT_EQ(Deterministic(a), Deterministic(b));
          // And the states they are left in are the same, secrets and all.
          EXPECT_TRUE(original->Snapshot().Equals(copy->Snapshot()));
          break;
      }
    }
  }
}

// The share channel's key with each peer is agreed once, in share_keys, and kept until the
// masked input: a snapshot in SHARES_SENT holds one per peer, later ones none; a snapshot
// without them (taken before they were kept) agrees them again and answers the same.
TEST_F(SnapshotTest, ShareChannelKeysAreKeptOnlyUntilTheSharesAreOpened) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(session.Init());
  session.Step();
  session.Step();
  const ClientIdentity identity = federation_->Identity(ids[0]);
  const v1::SecAggClientSnapshot shared = ParseClient(session.client(ids[0])->Snapshot());
  ASSERT_EQ(shared.state(), v1::SECAGG_CLIENT_SHARES_SENT);
  ASSERT_EQ(shared.channel_keys_size(), static_cast<int>(ids.size()) - 1);
  for (int i = 0; i < shared.channel_keys_size(); ++i) {
    EXPECT_EQ(shared.channel_keys(i).client_id(), ids[i + 1]);
    EXPECT_EQ(shared.channel_keys(i).key().size(), 32u);
  }

  // With and without the kept keys, the relay gets the same masked input.
  v1::SecAggClientSnapshot without = shared;
  without.clear_channel_keys();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SecAggClient> kept,
                       SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(shared)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SecAggClient> agreed,
                       SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(without)));
  const v1::SecAggServerMessage relay = session.server().Outgoing().at(ids[0]);
  ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage a, kept->Handle(relay));
  ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage b, agreed->Handle(relay));
  ASSERT_TRUE(a.has_masked_input());
  EXPECT_EQ(Deterministic(a), Deterministic(b));
  EXPECT_EQ(ParseClient(kept->Snapshot()).channel_keys_size(), 0);

  // Kept keys that do not fit are refused.
  using Change = std::function<void(v1::SecAggClientSnapshot&)>;
  for (const auto& [name, change] : std::vector<std::pair<const char*, Change>>{
           {"short key", [](auto& s) { s.mutable_channel_keys(0)->mutable_key()->pop_back(); }},
           {"own key", [&](auto& s) { s.mutable_channel_keys(0)->set_client_id(ids[0]); }},
           {"unlisted peer", [](auto& s) { s.mutable_channel_keys(0)->set_client_id("site-99"); }},
           {"repeated peer", [](auto& s) { *s.add_channel_keys() = s.channel_keys(0); }},
       }) {
    SCOPED_TRACE(name);
    v1::SecAggClientSnapshot changed = shared;
    change(changed);
    EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(changed)),
                StatusIs(absl::StatusCode::kDataLoss));
  }
  session.Step();
  v1::SecAggClientSnapshot relayed = ParseClient(session.client(ids[0])->Snapshot());
  ASSERT_EQ(relayed.state(), v1::SECAGG_CLIENT_MASKED_INPUT_SENT);
  EXPECT_EQ(relayed.channel_keys_size(), 0);
  *relayed.mutable_channel_keys() = shared.channel_keys();
  EXPECT_THAT(SecAggClient::Restore(identity, ClientPolicy(), SerializeClient(relayed)),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(SnapshotTest, RestoredClientsAbortLikeTheOriginals) {
  const auto ids = Ids(5);
  for (int step = 1; step <= 4; ++step) {
    SCOPED_TRACE(absl::StrCat("after step ", step));
    Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
    ASSERT_OK(session.Init());
    for (int k = 0; k < step; ++k) session.Step();
    const auto outgoing = session.server().Outgoing();
    // ids[0] a message under another round label, ids[1] an emptied message, ids[2] its
    // own message but for another client's view (what ids[3] was sent).
    std::map<std::string, v1::SecAggServerMessage> tampered;
    tampered[ids[0]] = outgoing.at(ids[0]);
    tampered[ids[0]].set_round(v1::SECAGG_ADVERTISE_KEYS);
    tampered[ids[1]].set_round(outgoing.at(ids[1]).round());
    tampered[ids[2]] = outgoing.at(ids[3]);
    for (const auto& [id, message] : tampered) {
      SCOPED_TRACE(id);
      SecAggClient* original = session.client(id);
      ASSERT_OK_AND_ASSIGN(
          std::unique_ptr<SecAggClient> copy,
          SecAggClient::Restore(federation_->Identity(id), ClientPolicy(), original->Snapshot()));
      const absl::Status a = original->Handle(message).status();
      const absl::Status b = copy->Handle(message).status();
      EXPECT_EQ(a, b);
      EXPECT_EQ(copy->state(), original->state());
      EXPECT_EQ(copy->abort_reason(), original->abort_reason());
      EXPECT_EQ(copy->abort_detail(), original->abort_detail());
    }
  }
}

TEST_F(SnapshotTest, RestoredCompletedClientRefusesASecondUnmaskingRequest) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted);
  ASSERT_OK_AND_ASSIGN(std::string bytes, session.RestartClient(ids[2]));
  EXPECT_FALSE(HasSecrets(ParseClient(crypto::SecretBytes(std::move(bytes)))));
  SecAggClient* client = session.client(ids[2]);
  ASSERT_EQ(client->state(), ClientState::kCompleted);
  EXPECT_THAT(client->Handle(session.delivered().at(v1::SECAGG_UNMASKING).at(ids[2])),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(client->abort_reason(), v1::SECAGG_SECOND_UNMASKING_REQUEST);
}

// ---- the server's snapshots hold nothing secret ----

TEST_F(SnapshotTest, ServerSnapshotsNeverHoldAShareASeedOrAKey) {
  // Seven clients, threshold 5, one dropped after sharing its keys: the unmasking
  // releases shares of every survivor's seed and of the dropped client's mask key.
  const auto ids = Ids(7);
  SessionOptions options;
  options.stop_at[ids[3]] = v1::SECAGG_MASKED_INPUT;
  Session session(*federation_, MakeSetup(ids, 5, kWords), Inputs(ids), options);
  ASSERT_OK(session.Init());
  std::vector<std::string> server_snapshots;
  std::set<std::string> secrets;
  while (session.server().state() == ServerState::kCollecting) {
    ASSERT_OK_AND_ASSIGN(std::string bytes, session.RestartServer());
    server_snapshots.push_back(std::move(bytes));
    for (const std::string& id : session.started_clients()) {
      const v1::SecAggClientSnapshot client = ParseClient(session.client(id)->Snapshot());
      for (const std::string& secret : {client.input(), client.channel_private_key(),
                                        client.mask_private_key(), client.self_mask_seed()}) {
        if (!secret.empty()) secrets.insert(secret);
      }
      for (const v1::SecAggHeldShares& held : client.held_shares()) {
        secrets.insert(held.mask_key_share());
        secrets.insert(held.seed_share());
      }
    }
    session.Step();
  }
  ASSERT_EQ(session.server().state(), ServerState::kCompleted) << session.server().abort_detail();
  size_t released = 0;
  for (const auto& [id, message] : session.sent().at(v1::SECAGG_UNMASKING)) {
    for (const v1::UnmaskingShare& share : message.unmasking().shares()) {
      secrets.insert(share.share());
      ++released;
    }
  }
  EXPECT_EQ(released, 6u * 7u);  // six releasers: six seeds and one mask key each
  ASSERT_EQ(server_snapshots.size(), 5u);
  for (const std::string& secret : secrets) {
    ASSERT_GE(secret.size(), 32u);
    for (size_t i = 0; i < server_snapshots.size(); ++i) {
      EXPECT_EQ(server_snapshots[i].find(secret), std::string::npos) << "snapshot " << i;
    }
  }
}

TEST_F(SnapshotTest, ServerSnapshotsOnlyAtAStepBoundary) {
  const auto ids = Ids(5);
  for (int step = 0; step < 5; ++step) {
    SCOPED_TRACE(absl::StrCat("round after step ", step));
    Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
    ASSERT_OK(session.Init());
    for (int k = 0; k < step; ++k) session.Step();
    // Answers held back and a client dropped: still a boundary.
    session.Deliver({ids.begin(), ids.end()});
    session.server().Drop(ids[4], v1::SECAGG_DROP_CLIENT_ABORTED, "declined");
    ASSERT_OK(session.RestartServer());
    EXPECT_FALSE(session.server().Pending().contains(ids[4]));
    EXPECT_EQ(session.server().drops().size(), 1u);
    // One answer accepted: mid-step (in UNMASKING it holds plaintext shares).
    ASSERT_OK(session.server().Receive(ids[0], session.held().at(ids[0])));
    EXPECT_THAT(session.server().Snapshot(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(session.server().SnapshotBytes(), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(session.server().SnapshotInPieces(),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    for (const std::string& id : {ids[1], ids[2], ids[3]}) {
      ASSERT_OK(session.server().Receive(id, session.held().at(id)));
    }
    EXPECT_NE(session.server().CloseRound(), ServerState::kAborted);
  }
}

// SnapshotBytes and OutgoingBytes, which write the share relays from the bytes the server
// keeps them in, parse as the messages Snapshot() and Outgoing() return, at every
// boundary; SnapshotInPieces is SnapshotBytes with the relays and the sum viewed where the
// server keeps them (the relays OutgoingBytes shares), not copied; both are refused with
// Snapshot.
TEST_F(SnapshotTest, SerializedSnapshotsAndMessagesParseAsTheMessages) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(session.Init());
  bool relays = false;
  bool sum = false;
  while (session.server().state() == ServerState::kCollecting) {
    SCOPED_TRACE(v1::SecAggRound_Name(session.server().round()));
    ASSERT_OK_AND_ASSIGN(const v1::SecAggServerSnapshot snapshot, session.server().Snapshot());
    ASSERT_OK_AND_ASSIGN(const std::string bytes, session.server().SnapshotBytes());
    v1::SecAggServerSnapshot parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    EXPECT_EQ(Deterministic(parsed), Deterministic(snapshot));
    // Each field once (a bytes field written twice would parse as its last).
    EXPECT_EQ(bytes.size(), snapshot.ByteSizeLong());
    relays |= snapshot.relays_size() > 0;
    sum |= !snapshot.masked_sum().empty();
    ASSERT_OK_AND_ASSIGN(const SecAggServer::SnapshotPieces pieces,
                         session.server().SnapshotInPieces());
    EXPECT_EQ(pieces.Joined(), bytes);
    EXPECT_EQ(pieces.size(), bytes.size());
    std::set<const char*> viewed;
    for (std::string_view piece : pieces.pieces()) viewed.insert(piece.data());
    const std::map<std::string, SecAggServer::OutgoingMessage> messages =
        session.server().OutgoingBytes();
    std::map<std::string, std::string> reparsed;
    for (const auto& [id, message_bytes] : messages) {
      v1::SecAggServerMessage message;
      ASSERT_TRUE(message.ParseFromString(message_bytes.Joined())) << id;
      reparsed[id] = Deterministic(message);
      EXPECT_EQ(message_bytes.relay != nullptr, message.has_share_relay()) << id;
      if (message_bytes.relay != nullptr) {
        EXPECT_TRUE(viewed.contains(message_bytes.relay->data()))
            << id << ": the snapshot views the relay the message shares";
        EXPECT_EQ(message_bytes.relay, session.server().OutgoingBytes().at(id).relay)
            << id << ": one relay, shared, not copied";
      }
    }
    EXPECT_EQ(reparsed, OutgoingBytes(session.server()));
    session.Step();
  }
  EXPECT_TRUE(relays) << "no boundary had share relays";
  EXPECT_TRUE(sum) << "no boundary had a running sum";
  ASSERT_EQ(session.server().state(), ServerState::kCompleted);
  EXPECT_THAT(session.server().SnapshotBytes(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(session.server().SnapshotInPieces(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// ---- aborts survive ----

TEST_F(SnapshotTest, AbortedServerStaysAbortedAfterARestart) {
  const auto ids = Ids(5);
  SessionOptions options;
  options.stop_at[ids[0]] = v1::SECAGG_MASKED_INPUT;
  options.stop_at[ids[1]] = v1::SECAGG_MASKED_INPUT;
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kAborted);
  const std::string detail = session.server().abort_detail();
  const size_t drops = session.server().drops().size();
  ASSERT_OK(session.RestartServer());
  SecAggServer& server = session.server();
  EXPECT_EQ(server.state(), ServerState::kAborted);
  EXPECT_EQ(server.abort_reason(), v1::SECAGG_SERVER_TOO_FEW_CLIENTS);
  EXPECT_EQ(server.abort_detail(), detail);
  EXPECT_EQ(server.drops().size(), drops);
  EXPECT_THAT(server.Outgoing(), IsEmpty());
  EXPECT_THAT(server.sum(), IsEmpty());
  EXPECT_THAT(server.Receive(ids[2], session.sent().at(v1::SECAGG_MASKED_INPUT).at(ids[2])),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  // A cancelled session too.
  Session cancelled(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids));
  ASSERT_OK(cancelled.Init());
  cancelled.Step();
  cancelled.server().Cancel();
  ASSERT_OK(cancelled.RestartServer());
  EXPECT_EQ(cancelled.server().abort_reason(), v1::SECAGG_SERVER_CANCELLED);
}

TEST_F(SnapshotTest, AbortedClientStaysAbortedAfterARestart) {
  const auto ids = Ids(5);
  SessionOptions options;
  options.to_client = [&](v1::SecAggRound round, const std::string& recipient,
                          v1::SecAggServerMessage& message) {
    if (round == v1::SECAGG_MASKED_INPUT && recipient == ids[0]) {
      message.mutable_share_relay()->add_share_holders("zz-stranger");
    }
  };
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids), options);
  ASSERT_OK(session.Init());
  session.Run();
  SecAggClient* victim = session.client(ids[0]);
  ASSERT_EQ(victim->abort_reason(), v1::SECAGG_NOT_A_SUBSET);
  const std::string detail = victim->abort_detail();
  ASSERT_OK_AND_ASSIGN(std::string bytes, session.RestartClient(ids[0]));
  EXPECT_FALSE(HasSecrets(ParseClient(crypto::SecretBytes(std::move(bytes)))));
  victim = session.client(ids[0]);
  EXPECT_EQ(victim->state(), ClientState::kAborted);
  EXPECT_EQ(victim->abort_reason(), v1::SECAGG_NOT_A_SUBSET);
  EXPECT_EQ(victim->abort_detail(), detail);
  EXPECT_THAT(victim->Handle(session.delivered().at(v1::SECAGG_MASKED_INPUT).at(ids[0])),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(victim->abort_reason(), v1::SECAGG_NOT_A_SUBSET);
}

// ---- corrupted and mismatched snapshots ----

}  // namespace
}  // namespace tessera::secagg
