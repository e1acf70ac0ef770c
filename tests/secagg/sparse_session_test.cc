// SecAgg+ sessions (a setup with `sparse`) between the real state machines, in process: the
// sum is exact with and without dropouts while every site shares with, masks against and
// releases shares of its k neighbours only; the graph comes from every listed site's coin,
// so a coin missing or altered stops the session before any share leaves; shares from
// outside a site's neighbourhood, a k too small for the cohort or for the list, and a
// setup below the site's policy are refused; the survivor set still needs `threshold`
// valid signatures, non-neighbours' included; and sessions survive restarts at every step.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/provenance.pb.h"
#include "proto/secagg_state.pb.h"
#include "secagg/client.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "secagg/provenance.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAreArray;
using testing::FederationSuite;
using ::testing::HasSubstr;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;

constexpr int kSites = 24;
constexpr uint32_t kWords = 300;
// Small security parameters, so that 24 sites get a sparse graph (k well below n - 1).
constexpr double kGamma = 0.1;
constexpr double kDelta = 0.1;
constexpr uint32_t kBits = 4;

class SparseSessionTest : public FederationSuite<kSites> {
 protected:
  void SetUp() override {
    ids_ = federation_->ids();
    for (size_t i = 0; i < ids_.size(); ++i) inputs_[ids_[i]] = TestWords(i + 11, kWords);
    ASSERT_OK_AND_ASSIGN(std::optional<v1::SecAggSparse> sparse,
                         SparseSetup(kSites, kGamma, kDelta, kBits, kBits));
    ASSERT_TRUE(sparse.has_value());
    sparse_ = *sparse;
    k_ = sparse_.neighbours();
    // Sparse enough to show neighbours-only work, dense enough that three drops leave
    // every neighbourhood its t_k.
    ASSERT_GE(k_, 10u);
    ASSERT_LE(k_, kSites - 6u);
    options_.policy.sparse_min_colluding_fraction = kGamma;
    options_.policy.sparse_min_security_bits = kBits;
  }

  v1::SecAggSetup Setup() const {
    v1::SecAggSetup setup = MakeSetup(ids_, DefaultThreshold(kSites), kWords);
    *setup.mutable_sparse() = sparse_;
    return setup;
  }

  std::vector<std::string> Without(const std::set<std::string>& gone) const {
    std::vector<std::string> kept;
    for (const std::string& id : ids_) {
      if (!gone.contains(id)) kept.push_back(id);
    }
    return kept;
  }

  // The graph every site draws, from the coins the server posted.
  static NeighbourGraph GraphOf(Session& session) {
    const auto& posted = session.delivered().at(v1::SECAGG_SHARE_KEYS);
    const v1::CoinList& coins = posted.begin()->second.coins();
    std::vector<std::string> ids;
    for (const v1::ListedCoin& coin : coins.coins()) ids.push_back(coin.client_id());
    const std::vector<v1::ListedCoin> listed(coins.coins().begin(), coins.coins().end());
    auto graph = NeighbourGraph::Create(GraphSeed(session.client(ids[0])->session_id(), listed),
                                        ids, session.setup().sparse().neighbours());
    EXPECT_OK(graph);
    return *std::move(graph);
  }

  // The ids `field` names in `shares`, sorted.
  static std::vector<std::string> SortedIds(
      const google::protobuf::RepeatedPtrField<v1::EncryptedShare>& shares,
      const std::string& (v1::EncryptedShare::*field)() const) {
    std::vector<std::string> ids;
    for (const v1::EncryptedShare& share : shares) ids.push_back((share.*field)());
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::vector<std::string> ids_;
  std::map<std::string, std::vector<uint32_t>> inputs_;
  v1::SecAggSparse sparse_;
  uint32_t k_ = 0;
  SessionOptions options_;
};

TEST_F(SparseSessionTest, SumsEveryInputWhileEachSiteWorksWithItsNeighboursOnly) {
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids_));
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(ids_));

  const NeighbourGraph graph = GraphOf(session);
  for (const std::string& id : ids_) {
    const std::vector<std::string> neighbours = graph.Neighbours(id);
    ASSERT_EQ(neighbours.size(), k_) << id;
    // Shares to its k neighbours, and from them.
    const auto& sent = session.sent().at(v1::SECAGG_SHARE_KEYS).at(id).share_keys().shares();
    const auto& relayed =
        session.delivered().at(v1::SECAGG_MASKED_INPUT).at(id).share_relay().shares();
    EXPECT_EQ(SortedIds(sent, &v1::EncryptedShare::receiver), neighbours) << id;
    EXPECT_EQ(SortedIds(relayed, &v1::EncryptedShare::sender), neighbours) << id;
    // It releases the seed shares of itself and its neighbours, nobody else's.
    std::set<std::string> owners;
    for (const auto& share : session.sent().at(v1::SECAGG_UNMASKING).at(id).unmasking().shares()) {
      EXPECT_EQ(share.kind(), v1::UnmaskingShare::SELF_MASK_SEED);
      owners.insert(share.owner());
    }
    std::set<std::string> closed(neighbours.begin(), neighbours.end());
    closed.insert(id);
    EXPECT_EQ(owners, closed) << id;
    EXPECT_EQ(session.client(id)->session_id(), session.client(ids_[0])->session_id());
  }
  // k < threshold: the survivor set gathered its threshold of signatures only because
  // non-neighbours' signatures counted.
  EXPECT_LT(k_ + 1, session.setup().threshold());
}

class SparseDropoutTest : public SparseSessionTest,
                          public ::testing::WithParamInterface<v1::SecAggRound> {};

TEST_P(SparseDropoutTest, SumIsExactOverTheSurvivors) {
  const v1::SecAggRound step = GetParam();
  const std::set<std::string> gone = {ids_[1], ids_[9], ids_[17]};
  for (const std::string& id : gone) options_.stop_at[id] = step;
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  // Gone after their masked input: still in the sum.
  const bool input_sent = StepIndex(step) > StepIndex(v1::SECAGG_MASKED_INPUT);
  const std::vector<std::string> in_sum = input_sent ? ids_ : Without(gone);
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(in_sum));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(in_sum));
}

INSTANTIATE_TEST_SUITE_P(Steps, SparseDropoutTest,
                         ::testing::Values(v1::SECAGG_SHARE_KEYS, v1::SECAGG_MASKED_INPUT,
                                           v1::SECAGG_CONSISTENCY_CHECK, v1::SECAGG_UNMASKING),
                         [](const auto& info) { return v1::SecAggRound_Name(info.param); });

TEST_F(SparseSessionTest, ACoinNotRevealedStopsTheSessionBeforeAnyShareLeaves) {
  options_.stop_at[ids_[5]] = v1::SECAGG_REVEAL_COINS;
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kAborted);
  EXPECT_EQ(session.server().abort_reason(), v1::SECAGG_SERVER_COIN_MISSING);
  EXPECT_THAT(session.server().abort_detail(), HasSubstr(ids_[5]));
  EXPECT_FALSE(session.sent().contains(v1::SECAGG_SHARE_KEYS));
}

TEST_F(SparseSessionTest, AnAlteredCoinIsRefusedByEverySiteBeforeAnyShareLeaves) {
  // A coordinator grinding the graph would have to change a coin after seeing the others.
  options_.to_client = [&](v1::SecAggRound round, const std::string&,
                           v1::SecAggServerMessage& message) {
    if (round != v1::SECAGG_SHARE_KEYS) return;
    std::string* coin = message.mutable_coins()->mutable_coins(3)->mutable_coin();
    (*coin)[0] = static_cast<char>((*coin)[0] ^ 1);
  };
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  session.Run();
  for (const std::string& id : ids_) {
    EXPECT_EQ(session.client_abort(id), v1::SECAGG_WRONG_COIN) << id;
    EXPECT_THAT(session.client(id)->abort_detail(), HasSubstr(ids_[3]));
  }
  EXPECT_FALSE(session.sent().contains(v1::SECAGG_SHARE_KEYS));
}

TEST_F(SparseSessionTest, ACoinListInAnotherOrderOrShortIsRefused) {
  for (int variant = 0; variant < 2; ++variant) {
    options_.to_client = [&](v1::SecAggRound round, const std::string&,
                             v1::SecAggServerMessage& message) {
      if (round != v1::SECAGG_SHARE_KEYS) return;
      auto* coins = message.mutable_coins()->mutable_coins();
      if (variant == 0) {
        coins->SwapElements(0, 1);
      } else {
        coins->RemoveLast();
      }
    };
    Session session(*federation_, Setup(), inputs_, options_);
    ASSERT_OK(session.Init());
    session.Run();
    EXPECT_EQ(session.client_abort(ids_[7]), v1::SECAGG_WRONG_COIN) << variant;
    EXPECT_FALSE(session.sent().contains(v1::SECAGG_SHARE_KEYS)) << variant;
  }
}

TEST_F(SparseSessionTest, AShareFromOutsideTheNeighbourhoodIsRefusedBeforeTheMaskedInput) {
  // The coordinator relays to `target` a share another site made for someone else,
  // relabelled to `target` and claiming a sender that is not its neighbour.
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  session.Step();  // ADVERTISE_KEYS
  session.Step();  // REVEAL_COINS
  session.Step();  // SHARE_KEYS
  ASSERT_EQ(session.server().round(), v1::SECAGG_MASKED_INPUT);
  const NeighbourGraph graph = GraphOf(session);
  const std::string& target = ids_[0];
  std::string outsider;
  for (const std::string& id : ids_) {
    if (id != target && !graph.AreNeighbors(id, target)) outsider = id;
  }
  ASSERT_FALSE(outsider.empty());
  v1::SecAggServerMessage message = session.server().Outgoing().at(target);
  v1::EncryptedShare forged =
      session.sent().at(v1::SECAGG_SHARE_KEYS).at(outsider).share_keys().shares(0);
  forged.set_receiver(target);
  *message.mutable_share_relay()->add_shares() = forged;
  EXPECT_THAT(session.client(target)->Handle(message),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a neighbour")));
  EXPECT_EQ(session.client(target)->abort_reason(), v1::SECAGG_MALFORMED_MESSAGE);
}

TEST_F(SparseSessionTest, TheServerDropsASiteSendingSharesOutsideItsNeighbourhood) {
  options_.to_server = [&](v1::SecAggRound round, const std::string& sender,
                           v1::SecAggClientMessage& message) {
    if (round != v1::SECAGG_SHARE_KEYS || sender != ids_[2]) return;
    // Its last share, readdressed to a site it is not joined to.
    auto* shares = message.mutable_share_keys()->mutable_shares();
    std::set<std::string> joined = {ids_[2]};
    for (const auto& share : *shares) joined.insert(share.receiver());
    for (const std::string& id : ids_) {
      if (!joined.contains(id)) {
        shares->Mutable(shares->size() - 1)->set_receiver(id);
        return;
      }
    }
  };
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  ASSERT_FALSE(session.server().drops().empty());
  EXPECT_EQ(session.server().drops()[0].client_id, ids_[2]);
  EXPECT_EQ(session.server().drops()[0].reason, v1::SECAGG_DROP_MALFORMED);
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(Without({ids_[2]})));
}

TEST_F(SparseSessionTest, ASetupBelowWhatTheCohortOrThePolicyNeedsIsRefused) {
  struct Case {
    const char* name;
    std::function<void(v1::SecAggSetup&, ClientPolicy&)> change;
    v1::SecAggClientAbort reason;
    const char* detail;
  };
  const std::vector<Case> cases = {
      {"k too small",
       [](v1::SecAggSetup& s, ClientPolicy&) {
         const uint32_t k = s.sparse().neighbours() - 2;
         s.mutable_sparse()->set_neighbours(k);
         s.mutable_sparse()->set_neighbour_threshold(NeighbourhoodThreshold(k));
       },
       v1::SECAGG_BAD_SETUP, "is below what"},
      {"wrong t_k",
       [](v1::SecAggSetup& s, ClientPolicy&) {
         s.mutable_sparse()->set_neighbour_threshold(s.sparse().neighbour_threshold() - 1);
       },
       v1::SECAGG_MALFORMED_MESSAGE, "floor(2k/3) + 1"},
      {"odd k",
       [](v1::SecAggSetup& s, ClientPolicy&) {
         s.mutable_sparse()->set_neighbours(s.sparse().neighbours() + 1);
       },
       v1::SECAGG_MALFORMED_MESSAGE, "even"},
      {"gamma below the site's",
       [](v1::SecAggSetup&, ClientPolicy& p) { p.sparse_min_colluding_fraction = 0.2; },
       v1::SECAGG_BAD_SETUP, "requires gamma >= 0.2"},
      {"sigma below the site's",
       [](v1::SecAggSetup&, ClientPolicy& p) { p.sparse_min_security_bits = 40; },
       v1::SECAGG_BAD_SETUP, "sigma >= 40"},
      {"group below the site's minimum cohort",
       [](v1::SecAggSetup&, ClientPolicy& p) { p.min_threshold = 15; }, v1::SECAGG_BAD_SETUP,
       "minimum cohort 15"},
  };
  for (const Case& c : cases) {
    v1::SecAggSetup setup = Setup();
    ClientPolicy policy = options_.policy;
    c.change(setup, policy);
    v1::SecAggClientMessage reply;
    v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
    auto client = SecAggClient::Start(federation_->Identity(ids_[0]), policy, setup,
                                      inputs_.at(ids_[0]), absl::Now(), &reply, &abort);
    EXPECT_THAT(client.status(),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(c.detail)))
        << c.name;
    EXPECT_EQ(abort, c.reason) << c.name;
  }
  // The server refuses a k below what the cohort needs too.
  v1::SecAggSetup setup = Setup();
  setup.mutable_sparse()->set_neighbours(k_ - 2);
  setup.mutable_sparse()->set_neighbour_threshold(NeighbourhoodThreshold(k_ - 2));
  ServerOptions server_options;
  server_options.ca_cert_pem = federation_->ca_cert_pem();
  server_options.now = absl::Now();
  EXPECT_THAT(SecAggServer::Create(setup, server_options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is below what")));
}

TEST_F(SparseSessionTest, AListShorterThanKWasChosenForIsRefusedBeforeTheCoin) {
  // A set-up that holds for the 24 invited sites (a quarter colluding, k = 20) and a
  // coordinator that lists only the threshold's 17: the 6 colluders are then more than a
  // third of the list. Sites whose policy accepts the set-up refuse the list.
  v1::SecAggSetup setup = Setup();
  v1::SecAggSparse* sparse = setup.mutable_sparse();
  sparse->set_colluding_fraction(0.25);
  sparse->set_dropout_fraction(0.0001);
  sparse->set_security_bits(1);
  sparse->set_correctness_bits(1);
  sparse->set_neighbours(20);
  sparse->set_neighbour_threshold(NeighbourhoodThreshold(20));
  ASSERT_OK(ValidateSparse(*sparse, kSites, kSites));
  options_.policy.sparse_min_colluding_fraction = 0.25;
  options_.policy.sparse_min_security_bits = 1;
  const uint32_t listed = DefaultThreshold(kSites);
  for (size_t i = listed; i < ids_.size(); ++i)
    options_.stop_at[ids_[i]] = v1::SECAGG_ADVERTISE_KEYS;
  Session session(*federation_, setup, inputs_, options_);
  ASSERT_OK(session.Init());
  session.Run();
  for (size_t i = 0; i < listed; ++i) {
    EXPECT_EQ(session.client_abort(ids_[i]), v1::SECAGG_TOO_FEW_CLIENTS) << ids_[i];
    EXPECT_THAT(session.client(ids_[i])->abort_detail(), HasSubstr("too many for 17 listed"));
  }
  EXPECT_FALSE(session.sent().contains(v1::SECAGG_REVEAL_COINS)) << "no coin left a site";
}

TEST_F(SparseSessionTest, TooFewValidSignaturesOnTheSurvivorSetReleaseNothing) {
  // The global consistency check holds in SecAgg+: the coordinator shows the survivor set
  // with fewer than `threshold` signatures (all of them from the site's neighbours and
  // more than t_k), and the site releases nothing.
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  while (session.server().round() != v1::SECAGG_UNMASKING) session.Step();
  const std::string& target = ids_[0];
  v1::SecAggServerMessage message = session.server().Outgoing().at(target);
  const NeighbourGraph graph = GraphOf(session);
  auto* signatures = message.mutable_unmasking_request()->mutable_signatures();
  for (int i = signatures->size() - 1; i >= 0; --i) {
    const std::string& signer = signatures->Get(i).client_id();
    if (signer != target && !graph.AreNeighbors(signer, target)) signatures->DeleteSubrange(i, 1);
  }
  ASSERT_GE(static_cast<uint32_t>(signatures->size()),
            session.setup().sparse().neighbour_threshold());
  ASSERT_LT(static_cast<uint32_t>(signatures->size()), session.setup().threshold());
  EXPECT_THAT(session.client(target)->Handle(message),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(session.client(target)->abort_reason(), v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES);
}

// Each site verifies a random sample of the consistency signatures (ConsistencySampleSize:
// 11 of the 24 here), drawn once the list is in hand. One forged signature among 24: a site
// aborts naming it when its sample drew it (probability 11/24) and goes on otherwise — no
// site at all would abort only with probability (13/24)^24 ~ 4e-7, every site only with
// (11/24)^24 ~ 8e-9. Forging more than 24 - 11 of them leaves no sample without one: every
// site aborts. (A coordinator that splits the sites' views needs about a third of the
// signatures forged in one group's set: ConsistencySampleSize.)
TEST_F(SparseSessionTest, SitesCheckARandomSampleOfTheConsistencySignatures) {
  for (int forged : {1, 14}) {
    SCOPED_TRACE(forged);
    Session session(*federation_, Setup(), inputs_, options_);
    ASSERT_OK(session.Init());
    while (session.server().round() != v1::SECAGG_UNMASKING) session.Step();
    const uint32_t sample =
        ConsistencySampleSize(sparse_, kSites, kSites, session.setup().threshold());
    ASSERT_EQ(sample, 11U);
    int aborted = 0, went_on = 0;
    for (const std::string& id : ids_) {
      v1::SecAggServerMessage message = session.server().Outgoing().at(id);
      auto* signatures = message.mutable_unmasking_request()->mutable_signatures();
      ASSERT_EQ(signatures->size(), kSites);
      for (int i = 0; i < forged; ++i) {
        std::string* bytes = signatures->Mutable(i)->mutable_signature();
        (*bytes)[bytes->size() / 2] ^= 0x01;
      }
      if (session.client(id)->Handle(message).ok()) {
        ++went_on;
        continue;
      }
      ++aborted;
      EXPECT_EQ(session.client(id)->abort_reason(), v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES);
      EXPECT_THAT(session.client(id)->abort_detail(),
                  HasSubstr("does not verify over the survivor set"));
    }
    if (forged == 1) {
      EXPECT_GT(aborted, 0) << "no sample drew the forged signature";
      EXPECT_GT(went_on, 0) << "every site checked every signature";
    } else {
      EXPECT_EQ(aborted, kSites);
    }
  }
}

TEST_F(SparseSessionTest, ItsProvenanceVerifiesAndBindsTheCoinCommitments) {
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  ASSERT_OK_AND_ASSIGN(v1::SessionProvenance p, session.server().Provenance());
  p.set_session("task/r1/fit/a1");
  EXPECT_TRUE(p.setup().has_sparse());
  EXPECT_OK(VerifySessionProvenance(p, federation_->ca_cert_pem(), absl::Now()));
  // A commitment is signed: changing one breaks that site's advertisement signature.
  v1::SessionProvenance altered = p;
  std::string* commitment =
      altered.mutable_advertisements(2)->mutable_advertisement()->mutable_coin_commitment();
  (*commitment)[0] = static_cast<char>((*commitment)[0] ^ 1);
  EXPECT_THAT(VerifySessionProvenance(altered, federation_->ca_cert_pem(), absl::Now()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr(ids_[2])));
}

TEST_F(SparseSessionTest, EveryStepButTheRelayIsOneMessageForAll) {
  options_.stop_at[ids_[6]] = v1::SECAGG_CONSISTENCY_CHECK;
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  int steps = 0;
  while (session.server().state() == ServerState::kCollecting) {
    const SecAggServer& server = session.server();
    const std::map<std::string, v1::SecAggServerMessage> outgoing = server.Outgoing();
    std::vector<std::string> keys;
    for (const auto& [id, message] : outgoing) keys.push_back(id);
    EXPECT_EQ(server.Recipients(), keys);
    const std::optional<v1::SecAggServerMessage> common = server.Broadcast();
    EXPECT_EQ(common.has_value(), server.round() != v1::SECAGG_MASKED_INPUT);
    if (common.has_value()) {
      for (const auto& [id, message] : outgoing) {
        EXPECT_EQ(message.SerializeAsString(), common->SerializeAsString()) << id;
      }
    }
    session.Step();
    ++steps;
  }
  EXPECT_EQ(steps, 6);
  EXPECT_EQ(session.server().state(), ServerState::kCompleted);
  EXPECT_FALSE(session.server().Broadcast().has_value());
  EXPECT_TRUE(session.server().Recipients().empty());
}

TEST_F(SparseSessionTest, ASessionSurvivesRestartsAtEveryStep) {
  options_.stop_at[ids_[4]] = v1::SECAGG_MASKED_INPUT;  // its mask key is rebuilt
  Session session(*federation_, Setup(), inputs_, options_);
  ASSERT_OK(session.Init());
  while (session.server().state() == ServerState::kCollecting) {
    ASSERT_OK(session.RestartServer()) << v1::SecAggRound_Name(session.server().round());
    for (const std::string& id : session.started_clients()) {
      if (session.client(id)->state() == ClientState::kAborted) continue;
      ASSERT_OK(session.RestartClient(id)) << id;
    }
    session.Step();
  }
  ASSERT_EQ(session.server().state(), ServerState::kCompleted) << session.server().abort_detail();
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(Without({ids_[4]})));
}

}  // namespace
}  // namespace tessera::secagg
