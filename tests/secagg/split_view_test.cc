// The split-view attack of a cheating coordinator with one colluding site, played against
// the real client state machine: five sites, target A, colluder C. After every masked input
// is in, the coordinator tells {A, B} that the survivors are {A, B, C} and {D, E} that they
// are {C, D, E}; C signs both. At the old threshold (a strict majority, t = 3) A and B
// release A's self-mask seed shares (A "survived") and D and E its mask-key shares (A
// "dropped"), and the coordinator unmasks A's input exactly. At the rule's threshold
// (floor(2n/3) + 1 = 4) no split gathers t signatures twice: every honest site aborts
// before releasing a share. secagg/protocol.h has the bound: a split needs n + c >= 2t.
#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/shamir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "secagg/client.h"
#include "secagg/protocol.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using testing::Federation;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;

constexpr uint32_t kWords = 64;

class SplitViewTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto federation = Federation::Create(5);
    ASSERT_TRUE(federation.ok()) << federation.status();
    federation_ = federation->release();
  }
  static void TearDownTestSuite() {
    delete federation_;
    federation_ = nullptr;
  }

  void SetUp() override {
    ids_ = federation_->ids();
    a_ = ids_[0], b_ = ids_[1], c_ = ids_[2], d_ = ids_[3], e_ = ids_[4];
    for (size_t i = 0; i < ids_.size(); ++i) inputs_[ids_[i]] = TestWords(i + 7, kWords);
  }

  // An honest session of the five sites up to the consistency check: every masked input
  // is in the server's sum.
  std::unique_ptr<Session> UpToConsistency(uint32_t threshold, const SessionOptions& options) {
    auto session = std::make_unique<Session>(*federation_, MakeSetup(ids_, threshold, kWords),
                                             inputs_, options);
    EXPECT_OK(session->Init());
    for (int i = 0; i < 3; ++i) session->Step();
    EXPECT_EQ(session->server().round(), v1::SECAGG_CONSISTENCY_CHECK);
    return session;
  }

  static v1::SecAggServerMessage SurvivorList(const std::vector<std::string>& survivors) {
    v1::SecAggServerMessage message;
    message.set_round(v1::SECAGG_CONSISTENCY_CHECK);
    message.mutable_survivor_list()->mutable_survivors()->Add(survivors.begin(), survivors.end());
    return message;
  }

  static v1::SecAggServerMessage Unmasking(const std::vector<std::string>& survivors,
                                           const std::vector<std::string>& dropped,
                                           const std::map<std::string, std::string>& signatures) {
    v1::SecAggServerMessage message;
    message.set_round(v1::SECAGG_UNMASKING);
    v1::UnmaskingRequest* request = message.mutable_unmasking_request();
    request->mutable_survivors()->Add(survivors.begin(), survivors.end());
    request->mutable_dropped()->Add(dropped.begin(), dropped.end());
    for (const auto& [id, signature] : signatures) {
      v1::ConsistencySignature* entry = request->add_signatures();
      entry->set_client_id(id);
      entry->set_signature(signature);
    }
    return message;
  }

  // The colluder answers both views: two copies of its own state machine.
  std::pair<std::unique_ptr<SecAggClient>, std::unique_ptr<SecAggClient>> Colluder(
      Session& session, const ClientPolicy& policy) {
    const crypto::SecretBytes state = session.client(c_)->Snapshot();
    auto first = SecAggClient::Restore(federation_->Identity(c_), policy, state);
    auto second = SecAggClient::Restore(federation_->Identity(c_), policy, state);
    EXPECT_OK(first);
    EXPECT_OK(second);
    return {*std::move(first), *std::move(second)};
  }

  static Federation* federation_;
  std::vector<std::string> ids_;
  std::string a_, b_, c_, d_, e_;
  std::map<std::string, std::vector<uint32_t>> inputs_;
};

Federation* SplitViewTest::federation_ = nullptr;

// The shares of `owner`'s secret of `kind` in the unmasking answers.
std::vector<crypto::ShamirShare> SharesOf(const std::vector<v1::SecAggClientMessage>& answers,
                                          const std::string& owner, v1::UnmaskingShare::Kind kind) {
  std::vector<crypto::ShamirShare> shares;
  for (const v1::SecAggClientMessage& answer : answers) {
    for (const v1::UnmaskingShare& share : answer.unmasking().shares()) {
      if (share.owner() != owner || share.kind() != kind) continue;
      auto parsed = crypto::ShamirShare::Parse(share.share());
      EXPECT_OK(parsed);
      if (parsed.ok()) shares.push_back(*parsed);
    }
  }
  return shares;
}

TEST_F(SplitViewTest, SplitViewAttackUnmasksTheTargetAtAStrictMajority) {
  // The old rule, t = floor(n/2) + 1 = 3: what c = 0 colluders would allow.
  SessionOptions options;
  options.policy.assumed_colluders = 0;
  auto session = UpToConsistency(3, options);
  auto [c1, c2] = Colluder(*session, options.policy);
  const std::vector<std::string> s1 = {a_, b_, c_}, s2 = {c_, d_, e_};

  std::map<std::string, std::string> on_s1, on_s2;
  for (const auto& [id, client] : std::map<std::string, SecAggClient*>{
           {a_, session->client(a_)}, {b_, session->client(b_)}, {c_, c1.get()}}) {
    ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage signed_s1, client->Handle(SurvivorList(s1)));
    on_s1[id] = signed_s1.consistency().signature();
  }
  for (const auto& [id, client] : std::map<std::string, SecAggClient*>{
           {c_, c2.get()}, {d_, session->client(d_)}, {e_, session->client(e_)}}) {
    ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage signed_s2, client->Handle(SurvivorList(s2)));
    on_s2[id] = signed_s2.consistency().signature();
  }
  // Each group gets t valid signatures on the set it signed, and releases its shares.
  std::vector<v1::SecAggClientMessage> view1, view2;
  for (SecAggClient* client : {session->client(a_), session->client(b_), c1.get()}) {
    ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage answer,
                         client->Handle(Unmasking(s1, {d_, e_}, on_s1)));
    view1.push_back(answer);
  }
  for (SecAggClient* client : {c2.get(), session->client(d_), session->client(e_)}) {
    ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage answer,
                         client->Handle(Unmasking(s2, {a_, b_}, on_s2)));
    view2.push_back(answer);
  }

  // A's seed from view 1, A's mask key from view 2.
  ASSERT_OK_AND_ASSIGN(
      crypto::SecretBytes seed,
      crypto::ShamirCombine(SharesOf(view1, a_, v1::UnmaskingShare::SELF_MASK_SEED), 3));
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes key_bytes,
                       crypto::ShamirCombine(SharesOf(view2, a_, v1::UnmaskingShare::MASK_KEY), 3));
  ASSERT_OK_AND_ASSIGN(crypto::X25519PrivateKey mask_key,
                       crypto::X25519PrivateKey::FromBytes(key_bytes));

  // Remove A's masks from its masked input: its exact input comes out.
  const std::string& session_id = session->client(a_)->session_id();
  const std::string& y =
      session->sent().at(v1::SECAGG_MASKED_INPUT).at(a_).masked_input().masked_input();
  ASSERT_EQ(y.size(), 4 * kWords);
  std::vector<uint32_t> x(kWords);
  for (size_t i = 0; i < kWords; ++i) {
    for (int b = 0; b < 4; ++b) x[i] |= uint32_t{static_cast<uint8_t>(y[4 * i + b])} << (8 * b);
  }
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes self_key, SelfMaskKey(seed, session_id, a_));
  ASSERT_OK_AND_ASSIGN(crypto::MaskGenerator self_mask, crypto::MaskGenerator::Create(self_key));
  self_mask.SubtractFrom(0, x);
  const v1::AdvertisementList& list =
      session->delivered().at(v1::SECAGG_SHARE_KEYS).at(a_).advertisements();
  for (const v1::AdvertisementEntry& entry : list.entries()) {
    if (entry.client_id() == a_) continue;
    ASSERT_OK_AND_ASSIGN(
        crypto::X25519PublicKey peer,
        crypto::X25519PublicKey::FromBytes(entry.advertisement().mask_public_key()));
    ASSERT_OK_AND_ASSIGN(crypto::SecretBytes shared, mask_key.Agree(peer));
    ASSERT_OK_AND_ASSIGN(crypto::SecretBytes pair_key,
                         PairwiseMaskKey(shared, session_id, a_, entry.client_id()));
    ASSERT_OK_AND_ASSIGN(crypto::MaskGenerator pair_mask, crypto::MaskGenerator::Create(pair_key));
    if (PairwiseMaskSign(a_, entry.client_id()) > 0) {
      pair_mask.SubtractFrom(0, x);
    } else {
      pair_mask.AddTo(0, x);
    }
  }
  EXPECT_EQ(x, inputs_.at(a_)) << "the split view should have unmasked A at t = 3";
}

TEST_F(SplitViewTest, SplitViewAttackFailsAtTwoThirdsPlusOne) {
  // The rule's threshold for five sites is 4; the old one is refused outright.
  v1::SecAggClientMessage reply;
  v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  EXPECT_THAT(
      SecAggClient::Start(federation_->Identity(a_), ClientPolicy(), MakeSetup(ids_, 3, kWords),
                          inputs_.at(a_), absl::Now(), &reply, &abort),
      StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(abort, v1::SECAGG_BAD_SETUP);

  // The same split at t = 4: three survivors are below the threshold.
  {
    auto session = UpToConsistency(4, SessionOptions());
    for (const std::string& id : {a_, b_}) {
      EXPECT_THAT(session->client(id)->Handle(SurvivorList({a_, b_, c_})),
                  StatusIs(absl::StatusCode::kFailedPrecondition));
      EXPECT_EQ(session->client(id)->abort_reason(), v1::SECAGG_TOO_FEW_CLIENTS);
    }
  }
  // Padded to four survivors per view, {A, B, C, D} and {B, C, D, E}: each honest site
  // signs one set, so each set has only three valid signatures (two honest, the colluder's)
  // and no honest site releases anything.
  auto session = UpToConsistency(4, SessionOptions());
  auto [c1, c2] = Colluder(*session, ClientPolicy());
  const std::vector<std::string> s1 = {a_, b_, c_, d_}, s2 = {b_, c_, d_, e_};
  std::map<std::string, std::string> on_s1, on_s2;
  for (const auto& [id, client] : std::map<std::string, SecAggClient*>{
           {a_, session->client(a_)}, {b_, session->client(b_)}, {c_, c1.get()}}) {
    ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage signed_s1, client->Handle(SurvivorList(s1)));
    on_s1[id] = signed_s1.consistency().signature();
  }
  for (const auto& [id, client] : std::map<std::string, SecAggClient*>{
           {c_, c2.get()}, {d_, session->client(d_)}, {e_, session->client(e_)}}) {
    ASSERT_OK_AND_ASSIGN(v1::SecAggClientMessage signed_s2, client->Handle(SurvivorList(s2)));
    on_s2[id] = signed_s2.consistency().signature();
  }
  // The coordinator adds every signature it has to both requests; only those on the very
  // set a site signed count.
  std::map<std::string, std::string> all = on_s1;
  all[d_] = on_s2[d_];
  all[e_] = on_s2[e_];
  std::map<std::string, std::string> all2 = on_s2;
  all2[a_] = on_s1[a_];
  all2[b_] = on_s1[b_];
  for (const std::string& id : {a_, b_}) {
    EXPECT_THAT(session->client(id)->Handle(Unmasking(s1, {e_}, all)),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(session->client(id)->abort_reason(), v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES);
  }
  for (const std::string& id : {d_, e_}) {
    EXPECT_THAT(session->client(id)->Handle(Unmasking(s2, {a_}, all2)),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(session->client(id)->abort_reason(), v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES);
  }
}

}  // namespace
}  // namespace tessera::secagg
