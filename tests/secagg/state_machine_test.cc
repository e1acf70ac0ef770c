// Exhaustive state-transition tests of the two secure-aggregation state machines: every
// (client state, server message kind) pair, and every (server round, client message kind)
// pair, plus messages from clients the server does not expect. Only the documented pairs
// are accepted; the client aborts on the others, the server refuses them and changes
// nothing. Also the set-up checks of both sides.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "crypto/quantizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "secagg/client.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using testing::Federation;
using testing::FederationSuite;
using ::testing::HasSubstr;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;

constexpr uint32_t kWords = 32;

// The kinds of server message, by the oneof case (and the round it belongs to).
constexpr v1::SecAggServerMessage::MessageCase kServerKinds[] = {
    v1::SecAggServerMessage::kSetup,
    v1::SecAggServerMessage::kAdvertisements,
    v1::SecAggServerMessage::kShareRelay,
    v1::SecAggServerMessage::kSurvivorList,
    v1::SecAggServerMessage::kUnmaskingRequest,
    v1::SecAggServerMessage::MESSAGE_NOT_SET,
};

v1::SecAggRound RoundOf(v1::SecAggServerMessage::MessageCase kind) {
  switch (kind) {
    case v1::SecAggServerMessage::kSetup:
      return v1::SECAGG_ADVERTISE_KEYS;
    case v1::SecAggServerMessage::kAdvertisements:
      return v1::SECAGG_SHARE_KEYS;
    case v1::SecAggServerMessage::kShareRelay:
      return v1::SECAGG_MASKED_INPUT;
    case v1::SecAggServerMessage::kSurvivorList:
      return v1::SECAGG_CONSISTENCY_CHECK;
    case v1::SecAggServerMessage::kUnmaskingRequest:
      return v1::SECAGG_UNMASKING;
    default:
      return v1::SECAGG_ROUND_UNSPECIFIED;
  }
}

const char* KindName(v1::SecAggServerMessage::MessageCase kind) {
  switch (kind) {
    case v1::SecAggServerMessage::kSetup:
      return "setup";
    case v1::SecAggServerMessage::kAdvertisements:
      return "advertisements";
    case v1::SecAggServerMessage::kShareRelay:
      return "share_relay";
    case v1::SecAggServerMessage::kSurvivorList:
      return "survivor_list";
    case v1::SecAggServerMessage::kUnmaskingRequest:
      return "unmasking_request";
    default:
      return "empty";
  }
}

class StateMachineTest : public FederationSuite<7> {
 protected:
  void SetUp() override {
    const std::vector<std::string>& all = federation_->ids();
    ids_.assign(all.begin(), all.begin() + 5);
    for (size_t i = 0; i < all.size(); ++i) inputs_[all[i]] = TestWords(i + 1, kWords);
  }

  // A session of the first five clients (threshold 4) after `steps` rounds.
  std::unique_ptr<Session> SessionAfter(int steps, const SessionOptions& options = {}) {
    auto session =
        std::make_unique<Session>(*federation_, MakeSetup(ids_, 4, kWords), inputs_, options);
    EXPECT_OK(session->Init());
    for (int i = 0; i < steps; ++i) session->Step();
    return session;
  }

  // A server message of `kind` for `id`: the genuine one if the session made it (already
  // delivered, or about to be), else a plausible one.
  v1::SecAggServerMessage ServerMessage(Session& session, const std::string& id,
                                        v1::SecAggServerMessage::MessageCase kind) {
    const v1::SecAggRound round = RoundOf(kind);
    if (auto it = session.delivered().find(round); it != session.delivered().end()) {
      return it->second.at(id);
    }
    if (session.server().state() == ServerState::kCollecting && session.server().round() == round) {
      return session.server().Outgoing().at(id);
    }
    v1::SecAggServerMessage message;
    message.set_round(round);
    switch (kind) {
      case v1::SecAggServerMessage::kSetup:
        *message.mutable_setup() = session.setup();
        break;
      case v1::SecAggServerMessage::kAdvertisements:
        message.mutable_advertisements()->add_entries()->set_client_id(id);
        break;
      case v1::SecAggServerMessage::kShareRelay:
        message.mutable_share_relay()->mutable_share_holders()->Add(ids_.begin(), ids_.end());
        break;
      case v1::SecAggServerMessage::kSurvivorList:
        message.mutable_survivor_list()->mutable_survivors()->Add(ids_.begin(), ids_.end());
        break;
      case v1::SecAggServerMessage::kUnmaskingRequest:
        message.mutable_unmasking_request()->mutable_survivors()->Add(ids_.begin(), ids_.end());
        break;
      default:
        break;
    }
    return message;
  }

  std::vector<std::string> ids_;
  std::map<std::string, std::vector<uint32_t>> inputs_;
};

// ---- client ----

struct ClientStep {
  ClientState state;
  v1::SecAggServerMessage::MessageCase accepts;  // MESSAGE_NOT_SET: none
  ClientState next;
};
// State after `i + 1` session steps, the one message kind it accepts, and where that leads.
constexpr ClientStep kClientSteps[] = {
    {ClientState::kAdvertised, v1::SecAggServerMessage::kAdvertisements, ClientState::kSharesSent},
    {ClientState::kSharesSent, v1::SecAggServerMessage::kShareRelay, ClientState::kMaskedInputSent},
    {ClientState::kMaskedInputSent, v1::SecAggServerMessage::kSurvivorList,
     ClientState::kConsistencySent},
    {ClientState::kConsistencySent, v1::SecAggServerMessage::kUnmaskingRequest,
     ClientState::kCompleted},
    {ClientState::kCompleted, v1::SecAggServerMessage::MESSAGE_NOT_SET, ClientState::kCompleted},
};

TEST_F(StateMachineTest, ClientAcceptsOnlyTheDocumentedMessageInEachState) {
  for (int step = 0; step < 5; ++step) {
    const ClientStep& expected = kClientSteps[step];
    for (v1::SecAggServerMessage::MessageCase kind : kServerKinds) {
      SCOPED_TRACE(absl::StrCat(ClientStateName(expected.state), " + ", KindName(kind)));
      auto session = SessionAfter(step + 1);
      SecAggClient* client = session->client(ids_[0]);
      ASSERT_NE(client, nullptr);
      ASSERT_EQ(client->state(), expected.state);
      const v1::SecAggServerMessage message = ServerMessage(*session, ids_[0], kind);
      auto reply = client->Handle(message);
      if (expected.state != ClientState::kCompleted && kind == expected.accepts) {
        EXPECT_OK(reply);
        EXPECT_EQ(client->state(), expected.next);
        EXPECT_EQ(client->abort_reason(), v1::SECAGG_CLIENT_ABORT_UNSPECIFIED);
      } else {
        EXPECT_THAT(reply, StatusIs(absl::StatusCode::kFailedPrecondition));
        EXPECT_EQ(client->state(), ClientState::kAborted);
        const v1::SecAggClientAbort want =
            expected.state == ClientState::kCompleted &&
                    kind == v1::SecAggServerMessage::kUnmaskingRequest
                ? v1::SECAGG_SECOND_UNMASKING_REQUEST
                : v1::SECAGG_UNEXPECTED_MESSAGE;
        EXPECT_EQ(client->abort_reason(), want) << client->abort_detail();
      }
    }
  }
}

TEST_F(StateMachineTest, ClientRefusesTheRightMessageUnderAnotherRoundLabel) {
  for (int step = 0; step < 4; ++step) {
    const ClientStep& expected = kClientSteps[step];
    for (int label = v1::SecAggRound_MIN; label <= v1::SecAggRound_MAX; ++label) {
      if (label == RoundOf(expected.accepts)) continue;
      SCOPED_TRACE(absl::StrCat(ClientStateName(expected.state), " with round label ", label));
      auto session = SessionAfter(step + 1);
      SecAggClient* client = session->client(ids_[0]);
      v1::SecAggServerMessage message = ServerMessage(*session, ids_[0], expected.accepts);
      message.set_round(static_cast<v1::SecAggRound>(label));
      EXPECT_THAT(client->Handle(message), StatusIs(absl::StatusCode::kFailedPrecondition));
      EXPECT_EQ(client->abort_reason(), v1::SECAGG_UNEXPECTED_MESSAGE);
    }
  }
}

TEST_F(StateMachineTest, AbortedClientStaysAbortedWhateverComes) {
  auto session = SessionAfter(1);
  SecAggClient* client = session->client(ids_[0]);
  // Abort it with a survivor list while it waits for the advertisement list.
  ASSERT_THAT(
      client->Handle(ServerMessage(*session, ids_[0], v1::SecAggServerMessage::kSurvivorList)),
      StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_EQ(client->abort_reason(), v1::SECAGG_UNEXPECTED_MESSAGE);
  const std::string detail = client->abort_detail();
  for (v1::SecAggServerMessage::MessageCase kind : kServerKinds) {
    SCOPED_TRACE(KindName(kind));
    EXPECT_THAT(client->Handle(ServerMessage(*session, ids_[0], kind)),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(client->state(), ClientState::kAborted);
    EXPECT_EQ(client->abort_reason(), v1::SECAGG_UNEXPECTED_MESSAGE);
    EXPECT_EQ(client->abort_detail(), detail);
  }
}

TEST_F(StateMachineTest, ClientStartChecksTheSetup) {
  const ClientIdentity identity = federation_->Identity(ids_[0]);
  const v1::SecAggSetup good = MakeSetup(ids_, 4, kWords);
  struct Case {
    const char* name;
    std::function<void(v1::SecAggSetup&, ClientPolicy&)> change;
    v1::SecAggClientAbort want;
  };
  const std::vector<Case> cases = {
      {"unknown version", [](auto& s, auto&) { s.set_protocol_version(kProtocolVersion + 1); },
       v1::SECAGG_BAD_SETUP},
      {"short nonce", [](auto& s, auto&) { s.set_session_nonce("short"); },
       v1::SECAGG_MALFORMED_MESSAGE},
      {"unsorted invited", [](auto& s, auto&) { s.mutable_invited()->SwapElements(0, 1); },
       v1::SECAGG_MALFORMED_MESSAGE},
      {"not invited",
       [](auto& s, auto&) { s.mutable_invited()->erase(s.mutable_invited()->begin()); },
       v1::SECAGG_BAD_SETUP},
      {"threshold above the cohort", [](auto& s, auto&) { s.set_threshold(6); },
       v1::SECAGG_BAD_SETUP},
      {"threshold a strict majority but below floor(2n/3) + 1",
       [](auto& s, auto&) { s.set_threshold(3); }, v1::SECAGG_BAD_SETUP},
      {"threshold below the site's minimum", [](auto&, ClientPolicy& p) { p.min_threshold = 5; },
       v1::SECAGG_BAD_SETUP},
      {"threshold below the explicit colluders' rule",
       [](auto&, ClientPolicy& p) { p.assumed_colluders = 4; }, v1::SECAGG_BAD_SETUP},
      {"encoding could overflow",
       [](auto& s, auto&) { s.mutable_encoding()->mutable_segments(0)->set_bits(31); },
       v1::SECAGG_BAD_SETUP},
      {"malformed encoding",
       [](auto& s, auto&) { s.mutable_encoding()->mutable_segments(0)->set_bound(-1); },
       v1::SECAGG_MALFORMED_MESSAGE},
      {"vector_words differs from the encoding",
       [](auto& s, auto&) { s.set_vector_words(kWords + 1); }, v1::SECAGG_MALFORMED_MESSAGE},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::SecAggSetup setup = good;
    ClientPolicy policy;
    c.change(setup, policy);
    v1::SecAggClientMessage reply;
    v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
    EXPECT_THAT(
        SecAggClient::Start(identity, policy, setup, inputs_[ids_[0]], absl::Now(), &reply, &abort),
        StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(abort, c.want);
  }
  // The caller's input must have the setup's length.
  v1::SecAggClientMessage reply;
  EXPECT_THAT(SecAggClient::Start(identity, ClientPolicy(), good, std::vector<uint32_t>(3),
                                  absl::Now(), &reply, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // And the good setup starts.
  v1::SecAggClientAbort abort = v1::SECAGG_BAD_SETUP;
  ASSERT_OK_AND_ASSIGN(auto client,
                       SecAggClient::Start(identity, ClientPolicy(), good, inputs_[ids_[0]],
                                           absl::Now(), &reply, &abort));
  EXPECT_EQ(client->state(), ClientState::kAdvertised);
  EXPECT_EQ(abort, v1::SECAGG_CLIENT_ABORT_UNSPECIFIED);
  EXPECT_TRUE(reply.has_advertisement());
  EXPECT_TRUE(client->session_id().empty());
}

// Invited lists of any size: this client ("site-00") and placeholders (Start checks no
// other client's certificate).
std::vector<std::string> Cohort(uint32_t n) {
  std::vector<std::string> ids;
  for (uint32_t i = 0; i < n; ++i) ids.push_back(absl::StrFormat("site-%02d", i));
  return ids;
}

TEST_F(StateMachineTest, ClientAcceptsExactlyTheThresholdsOfTheTwoThirdsRule) {
  const ClientIdentity identity = federation_->Identity("site-00");
  ClientPolicy policy;
  policy.min_threshold = 1;  // the rule alone
  for (uint32_t n = 1; n <= 40; ++n) {
    const std::vector<std::string> invited = Cohort(n);
    for (uint32_t t = 1; t <= n; ++t) {
      SCOPED_TRACE(absl::StrCat("n = ", n, ", t = ", t));
      v1::SecAggClientMessage reply;
      v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
      auto client = SecAggClient::Start(identity, policy, MakeSetup(invited, t, kWords),
                                        std::vector<uint32_t>(kWords), absl::Now(), &reply, &abort);
      if (t >= 2 * n / 3 + 1) {
        EXPECT_OK(client);
      } else {
        EXPECT_THAT(client,
                    StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("floor(2n/3) + 1")));
        EXPECT_EQ(abort, v1::SECAGG_BAD_SETUP);
      }
    }
  }
}

TEST_F(StateMachineTest, ClientAndServerApplyTheExplicitColludersRule) {
  // With c assumed colluders: t >= floor((n + c)/2) + 1, checked on both sides of the
  // boundary (and beyond n, where no threshold is safe).
  const ClientIdentity identity = federation_->Identity("site-00");
  ServerOptions server_options;
  server_options.ca_cert_pem = federation_->ca_cert_pem();
  server_options.now = absl::Now();
  for (uint32_t n = 1; n <= 40; ++n) {
    const std::vector<std::string> invited = Cohort(n);
    for (uint32_t c = 0; c <= n; ++c) {
      const uint32_t rule = (n + c) / 2 + 1;
      ClientPolicy policy;
      policy.min_threshold = 1;
      policy.assumed_colluders = c;
      server_options.assumed_colluders = c;
      for (uint32_t t : {rule - 1, rule}) {
        if (t < 1 || t > n) continue;
        SCOPED_TRACE(absl::StrCat("n = ", n, ", c = ", c, ", t = ", t));
        const v1::SecAggSetup setup = MakeSetup(invited, t, kWords);
        v1::SecAggClientMessage reply;
        auto client = SecAggClient::Start(identity, policy, setup, std::vector<uint32_t>(kWords),
                                          absl::Now(), &reply, nullptr);
        auto server = SecAggServer::Create(setup, server_options);
        if (t == rule) {
          EXPECT_OK(client);
          EXPECT_OK(server);
        } else {
          EXPECT_THAT(client, StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr(absl::StrCat("with c = ", c))));
          EXPECT_THAT(server, StatusIs(absl::StatusCode::kInvalidArgument));
        }
      }
    }
  }
}

TEST_F(StateMachineTest, ThresholdRefusalNamesTheRuleAndBothNumbers) {
  v1::SecAggClientMessage reply;
  v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  EXPECT_THAT(SecAggClient::Start(federation_->Identity(ids_[0]), ClientPolicy(),
                                  MakeSetup(ids_, 3, kWords), inputs_[ids_[0]], absl::Now(), &reply,
                                  &abort),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("threshold 3"), HasSubstr("safe threshold 4"),
                             HasSubstr("floor(2n/3) + 1"))));
  EXPECT_EQ(abort, v1::SECAGG_BAD_SETUP);
  ClientPolicy strict;
  strict.min_threshold = 5;
  EXPECT_THAT(
      SecAggClient::Start(federation_->Identity(ids_[0]), strict, MakeSetup(ids_, 4, kWords),
                          inputs_[ids_[0]], absl::Now(), &reply, &abort),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr("threshold 4"), HasSubstr("minimum cohort 5"))));
  ServerOptions options;
  options.ca_cert_pem = federation_->ca_cert_pem();
  options.now = absl::Now();
  EXPECT_THAT(SecAggServer::Create(MakeSetup(ids_, 3, kWords), options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("4..5"), HasSubstr("got 3"), HasSubstr("floor(2n/3) + 1"))));
}

// ---- server ----

constexpr v1::SecAggClientMessage::MessageCase kClientKinds[] = {
    v1::SecAggClientMessage::kAdvertisement, v1::SecAggClientMessage::kShareKeys,
    v1::SecAggClientMessage::kMaskedInput,   v1::SecAggClientMessage::kConsistency,
    v1::SecAggClientMessage::kUnmasking,     v1::SecAggClientMessage::MESSAGE_NOT_SET,
};

// What a test can observe of the server; equal before and after a refused message.
std::string Snapshot(const SecAggServer& server) {
  std::string out = absl::StrCat(static_cast<int>(server.state()), "/", server.round(), "/",
                                 server.drops().size(), "/pending:");
  for (const std::string& id : server.Pending()) absl::StrAppend(&out, id, ",");
  for (const auto& [id, message] : server.Outgoing()) {
    absl::StrAppend(&out, "/", id, ":", message.SerializeAsString());
  }
  return out;
}

// A client message of `kind`: `genuine` if it is of that kind, else a plausible one.
v1::SecAggClientMessage ClientMessage(v1::SecAggClientMessage::MessageCase kind,
                                      const v1::SecAggClientMessage& genuine,
                                      const Session& session, const std::string& id) {
  if (genuine.message_case() == kind) return genuine;
  for (const auto& [round, sent] : session.sent()) {
    auto it = sent.find(id);
    if (it != sent.end() && it->second.message_case() == kind) return it->second;
  }
  v1::SecAggClientMessage message;
  switch (kind) {
    case v1::SecAggClientMessage::kAdvertisement:
      message.mutable_advertisement()->set_signature("sig");
      break;
    case v1::SecAggClientMessage::kShareKeys:
      message.mutable_share_keys()->set_self_mask_commitment(std::string(32, 'c'));
      break;
    case v1::SecAggClientMessage::kMaskedInput:
      message.mutable_masked_input()->set_masked_input(std::string(4 * kWords, 'm'));
      break;
    case v1::SecAggClientMessage::kConsistency:
      message.mutable_consistency()->set_signature("sig");
      break;
    case v1::SecAggClientMessage::kUnmasking:
      message.mutable_unmasking()->add_shares()->set_owner(id);
      break;
    default:
      break;
  }
  return message;
}

TEST_F(StateMachineTest, ServerAcceptsOnlyTheCurrentRoundsMessage) {
  for (int r = 0; r < 5; ++r) {
    const v1::SecAggRound round = static_cast<v1::SecAggRound>(v1::SECAGG_ADVERTISE_KEYS + r);
    for (v1::SecAggClientMessage::MessageCase kind : kClientKinds) {
      SCOPED_TRACE(absl::StrCat(v1::SecAggRound_Name(round), " + client message case ", kind));
      auto session = SessionAfter(r);
      ASSERT_EQ(session->server().round(), round);
      session->Deliver({ids_[0]});
      ASSERT_TRUE(session->held().contains(ids_[0]));
      SecAggServer& server = session->server();
      ASSERT_EQ(server.Pending(), std::set<std::string>{ids_[0]});
      const v1::SecAggClientMessage message =
          ClientMessage(kind, session->held().at(ids_[0]), *session, ids_[0]);
      const std::string before = Snapshot(server);
      const absl::Status status = server.Receive(ids_[0], message);
      if (kind == session->held().at(ids_[0]).message_case()) {
        EXPECT_OK(status);
        EXPECT_TRUE(server.Pending().empty());
        EXPECT_TRUE(server.drops().empty());
        EXPECT_EQ(server.CloseRound(), r == 4 ? ServerState::kCompleted : ServerState::kCollecting);
      } else if (kind == v1::SecAggClientMessage::MESSAGE_NOT_SET) {
        // An empty message is malformed: the client is dropped.
        EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
        ASSERT_EQ(server.drops().size(), 1u);
        EXPECT_EQ(server.drops()[0].reason, v1::SECAGG_DROP_MALFORMED);
        EXPECT_TRUE(server.Pending().empty());
      } else {
        // Another step's kind is this client's (one) answer, and a wrong one: the client
        // is dropped at once, so that the step need not wait for it until its deadline.
        EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("SECAGG_DROP_WRONG_ROUND")));
        ASSERT_EQ(server.drops().size(), 1u);
        EXPECT_EQ(server.drops()[0].client_id, ids_[0]);
        EXPECT_EQ(server.drops()[0].reason, v1::SECAGG_DROP_WRONG_ROUND);
        EXPECT_EQ(server.drops()[0].round, round);
        EXPECT_TRUE(server.Pending().empty());
        // Its genuine answer after that is refused: it is out of the session.
        EXPECT_THAT(server.Receive(ids_[0], session->held().at(ids_[0])),
                    StatusIs(absl::StatusCode::kFailedPrecondition));
      }
    }
  }
}

TEST_F(StateMachineTest, ServerRefusesClientsItDoesNotExpect) {
  // ids[4] never answers the setup, so it is dropped when the first round closes.
  SessionOptions options;
  options.stop_at[ids_[4]] = v1::SECAGG_ADVERTISE_KEYS;
  for (int r = 0; r < 5; ++r) {
    SCOPED_TRACE(absl::StrCat("round ", r));
    auto session = SessionAfter(r, options);
    session->Deliver({ids_[0]});
    SecAggServer& server = session->server();
    const std::string before = Snapshot(server);
    const v1::SecAggClientMessage genuine = session->held().at(ids_[0]);
    // Not invited.
    EXPECT_THAT(server.Receive("zz-stranger", genuine),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    // Already answered this round (its genuine answer again, or another client's).
    const v1::SecAggClientMessage answered = session->sent().at(server.round()).at(ids_[1]);
    EXPECT_THAT(server.Receive(ids_[1], answered), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(server.Receive(ids_[2], genuine), StatusIs(absl::StatusCode::kFailedPrecondition));
    // Dropped (or, in the first round, not yet answered: then it is simply pending).
    if (r > 0) {
      EXPECT_THAT(server.Receive(ids_[4], genuine),
                  StatusIs(absl::StatusCode::kFailedPrecondition));
    }
    EXPECT_EQ(Snapshot(server), before);
    // Drop() of a client not expected now changes nothing either.
    server.Drop("zz-stranger", v1::SECAGG_DROP_WRONG_ROUND, "test");
    EXPECT_EQ(Snapshot(server), before);
  }
}

TEST_F(StateMachineTest, ServerRefusesEverythingOnceTheSessionIsOver) {
  auto completed = SessionAfter(5);
  ASSERT_EQ(completed->server().state(), ServerState::kCompleted);
  auto aborted = SessionAfter(1);
  aborted->server().Cancel();
  for (Session* session : {completed.get(), aborted.get()}) {
    SecAggServer& server = session->server();
    const std::string before = Snapshot(server);
    for (const auto& [round, sent] : session->sent()) {
      for (const auto& [id, message] : sent) {
        EXPECT_THAT(server.Receive(id, message), StatusIs(absl::StatusCode::kFailedPrecondition));
      }
    }
    server.Drop(ids_[0], v1::SECAGG_DROP_NO_ANSWER, "late");
    server.Cancel();
    EXPECT_EQ(server.CloseRound(), server.state());
    EXPECT_EQ(Snapshot(server), before);
    EXPECT_TRUE(server.Outgoing().empty());
  }
  EXPECT_EQ(aborted->server().abort_reason(), v1::SECAGG_SERVER_CANCELLED);
  EXPECT_EQ(completed->server().abort_reason(), v1::SECAGG_SERVER_ABORT_UNSPECIFIED);
}

TEST_F(StateMachineTest, ServerRecordsWhoWasDroppedWhenAndWhy) {
  // Seven clients, threshold 5: two may go.
  const std::vector<std::string>& ids = federation_->ids();
  ASSERT_EQ(ids.size(), 7u);
  SessionOptions options;
  options.stop_at[ids_[4]] = v1::SECAGG_SHARE_KEYS;
  auto session =
      std::make_unique<Session>(*federation_, MakeSetup(ids, 5, kWords), inputs_, options);
  ASSERT_OK(session->Init());
  session->Step();
  session->server().Drop(ids_[3], v1::SECAGG_DROP_CLIENT_ABORTED, "declined");
  EXPECT_FALSE(session->server().Pending().contains(ids_[3]));
  ASSERT_EQ(session->Run(), ServerState::kCompleted) << session->server().abort_detail();
  ASSERT_EQ(session->server().drops().size(), 2u);
  EXPECT_EQ(session->server().drops()[0].client_id, ids_[3]);
  EXPECT_EQ(session->server().drops()[0].reason, v1::SECAGG_DROP_CLIENT_ABORTED);
  EXPECT_EQ(session->server().drops()[0].round, v1::SECAGG_SHARE_KEYS);
  EXPECT_EQ(session->server().drops()[1].client_id, ids_[4]);
  EXPECT_EQ(session->server().drops()[1].reason, v1::SECAGG_DROP_NO_ANSWER);
  EXPECT_EQ(session->server().drops()[1].round, v1::SECAGG_SHARE_KEYS);
  EXPECT_EQ(session->server().sum(),
            session->ExpectedSum({ids[0], ids[1], ids[2], ids[5], ids[6]}));
}

TEST_F(StateMachineTest, ServerCreateChecksTheSetup) {
  const v1::SecAggSetup good = MakeSetup(ids_, 4, kWords);
  ServerOptions options;
  options.ca_cert_pem = federation_->ca_cert_pem();
  options.now = absl::Now();
  EXPECT_OK(SecAggServer::Create(good, options));
  struct Case {
    const char* name;
    std::function<void(v1::SecAggSetup&, ServerOptions&)> change;
  };
  const std::vector<Case> cases = {
      {"version", [](auto& s, auto&) { s.set_protocol_version(0); }},
      {"nonce", [](auto& s, auto&) { s.set_session_nonce(std::string(31, 'n')); }},
      {"no one invited", [](auto& s, auto&) { s.clear_invited(); }},
      {"unsorted", [](auto& s, auto&) { s.mutable_invited()->SwapElements(1, 2); }},
      {"repeated", [](auto& s, auto&) { *s.mutable_invited(1) = s.invited(0); }},
      {"not a node id", [](auto& s, auto&) { *s.mutable_invited(4) = "z z"; }},
      {"threshold above n", [](auto& s, auto&) { s.set_threshold(6); }},
      {"threshold below floor(2n/3) + 1", [](auto& s, auto&) { s.set_threshold(3); }},
      {"threshold below the explicit colluders' rule",
       [](auto&, ServerOptions& o) { o.assumed_colluders = 4; }},
      {"overflowing encoding",
       [](auto& s, auto&) { s.mutable_encoding()->mutable_segments(0)->set_bits(30); }},
      {"no segments", [](auto& s, auto&) { s.mutable_encoding()->clear_segments(); }},
      {"vector_words", [](auto& s, auto&) { s.set_vector_words(kWords - 1); }},
      {"threads", [](auto&, ServerOptions& o) { o.unmasking_threads = 0; }},
      {"no CA", [](auto&, ServerOptions& o) { o.ca_cert_pem.clear(); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::SecAggSetup setup = good;
    ServerOptions changed = options;
    c.change(setup, changed);
    EXPECT_THAT(SecAggServer::Create(setup, changed), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace tessera::secagg
