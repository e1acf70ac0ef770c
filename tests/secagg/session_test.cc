// Whole secure-aggregation sessions between an honest server and honest clients, in
// process: the unmasked sum is exactly the sum of the survivors' inputs whatever drops out
// and when; below the threshold the session aborts; the server drops misbehaving clients
// with a recorded reason; corrupted unmasking shares are survived when spare shares allow;
// and what the server receives is indistinguishable from uniform words.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/splitmix64.h"
#include "crypto/quantizer.h"
#include "crypto/shamir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "secagg/client.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "secagg/vector_codec.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/secagg/session_suite.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {

using crypto::kShamirPrime;
using crypto::MaxBitsForParties;
using crypto::QuantizationSpec;
using crypto::QuantizationStep;
using crypto::Role;
using crypto::ShamirShare;
namespace {

using ::testing::ElementsAreArray;
using testing::Federation;
using testing::FederationSuite;
using ::testing::IsEmpty;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;
using ::testing::UnorderedElementsAreArray;

constexpr uint32_t kWords = 1000;

// SecAggSessionTest: tests/secagg/session_suite.h.

std::vector<std::string> Without(std::vector<std::string> ids,
                                 const std::vector<std::string>& gone) {
  std::erase_if(ids, [&](const std::string& id) {
    return std::find(gone.begin(), gone.end(), id) != gone.end();
  });
  return ids;
}

TEST_F(SecAggSessionTest, SumsEveryInputWithoutDropouts) {
  const auto ids = Ids(5);
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids, kWords));
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(ids));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids));
  EXPECT_THAT(session.server().drops(), IsEmpty());
  for (const std::string& id : ids) {
    EXPECT_EQ(session.client(id)->state(), ClientState::kCompleted) << id;
    EXPECT_EQ(session.client(id)->session_id().size(), 32u);
    EXPECT_EQ(session.client(id)->session_id(), session.client(ids[0])->session_id());
  }
}

TEST_F(SecAggSessionTest, SumsWithUnmaskingSpreadOverThreads) {
  // Long enough for several expansion blocks per thread, with a dropped client's pairwise
  // masks to remove too.
  const auto ids = Ids(4);
  const uint32_t words = (1u << 18) + 12345;
  SessionOptions options;
  options.unmasking_threads = 3;
  options.stop_at[ids[1]] = v1::SECAGG_MASKED_INPUT;
  Session session(*federation_, MakeSetup(ids, 3, words), Inputs(ids, words), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(Without(ids, {ids[1]})));
}

// Two of seven clients (threshold 5) stop answering at the given round.
class DropoutAtEachStageTest : public SecAggSessionTest,
                               public ::testing::WithParamInterface<v1::SecAggRound> {};

TEST_P(DropoutAtEachStageTest, SumIsExactOverTheSurvivors) {
  const v1::SecAggRound stage = GetParam();
  const auto ids = Ids(7);
  const std::vector<std::string> gone = {ids[2], ids[5]};
  SessionOptions options;
  for (const std::string& id : gone) options.stop_at[id] = stage;
  Session session(*federation_, MakeSetup(ids, 5, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();

  // Before their masked input the dropped clients' inputs are not in the sum; after it
  // they are (their masks removed with the others' shares).
  const bool input_sent = stage > v1::SECAGG_MASKED_INPUT;
  const std::vector<std::string> survivors = input_sent ? ids : Without(ids, gone);
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(survivors));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(survivors));
  ASSERT_EQ(session.server().drops().size(), gone.size());
  for (const ClientDrop& drop : session.server().drops()) {
    EXPECT_EQ(drop.reason, v1::SECAGG_DROP_NO_ANSWER);
    EXPECT_EQ(drop.round, stage);
  }
  for (const std::string& id : Without(ids, gone)) {
    EXPECT_EQ(session.client(id)->state(), ClientState::kCompleted) << id;
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, DropoutAtEachStageTest,
                         ::testing::Values(v1::SECAGG_ADVERTISE_KEYS, v1::SECAGG_SHARE_KEYS,
                                           v1::SECAGG_MASKED_INPUT, v1::SECAGG_CONSISTENCY_CHECK,
                                           v1::SECAGG_UNMASKING),
                         [](const auto& info) { return v1::SecAggRound_Name(info.param); });

TEST_F(SecAggSessionTest, DropoutsAtSeveralStagesDownToExactlyThreshold) {
  // Thirteen invited, threshold 9: one leaves before advertising, one after, two after
  // sharing keys: exactly nine masked inputs, consistency signatures and unmasking answers.
  const auto ids = Ids(13);
  SessionOptions options;
  options.stop_at[ids[0]] = v1::SECAGG_ADVERTISE_KEYS;
  options.stop_at[ids[3]] = v1::SECAGG_SHARE_KEYS;
  options.stop_at[ids[4]] = v1::SECAGG_MASKED_INPUT;
  options.stop_at[ids[8]] = v1::SECAGG_MASKED_INPUT;
  Session session(*federation_, MakeSetup(ids, 9, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  const auto survivors = Without(ids, {ids[0], ids[3], ids[4], ids[8]});
  ASSERT_EQ(survivors.size(), 9u);
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(survivors));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(survivors));
}

TEST_F(SecAggSessionTest, DropoutsAfterMaskedInputDownToExactlyThreshold) {
  // Ten invited, threshold 7: nine masked inputs, eight signatures, seven unmasking answers.
  const auto ids = Ids(10);
  SessionOptions options;
  options.stop_at[ids[6]] = v1::SECAGG_MASKED_INPUT;
  options.stop_at[ids[1]] = v1::SECAGG_CONSISTENCY_CHECK;
  options.stop_at[ids[2]] = v1::SECAGG_UNMASKING;
  Session session(*federation_, MakeSetup(ids, 7, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  const auto survivors = Without(ids, {ids[6]});
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(survivors));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(survivors));
}

// Two of five clients (threshold 4) stop at the given round: the round ends with three.
class AbortBelowThresholdTest : public SecAggSessionTest,
                                public ::testing::WithParamInterface<v1::SecAggRound> {};

TEST_P(AbortBelowThresholdTest, ServerAbortsWithTooFewClients) {
  const v1::SecAggRound stage = GetParam();
  const auto ids = Ids(5);
  SessionOptions options;
  for (int i : {0, 2}) options.stop_at[ids[i]] = stage;
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  EXPECT_EQ(session.Run(), ServerState::kAborted);
  EXPECT_EQ(session.server().abort_reason(), v1::SECAGG_SERVER_TOO_FEW_CLIENTS);
  EXPECT_THAT(session.server().sum(), IsEmpty());
  // The session ended in the round that fell short; no later round was posted.
  EXPECT_FALSE(session.delivered().contains(static_cast<v1::SecAggRound>(stage + 1)));
  EXPECT_THAT(session.server().Outgoing(), IsEmpty());
  EXPECT_THAT(session.server().Pending(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Stages, AbortBelowThresholdTest,
                         ::testing::Values(v1::SECAGG_ADVERTISE_KEYS, v1::SECAGG_SHARE_KEYS,
                                           v1::SECAGG_MASKED_INPUT, v1::SECAGG_CONSISTENCY_CHECK,
                                           v1::SECAGG_UNMASKING),
                         [](const auto& info) { return v1::SecAggRound_Name(info.param); });

TEST_F(SecAggSessionTest, CancelEndsTheSession) {
  const auto ids = Ids(4);
  Session session(*federation_, MakeSetup(ids, 3, kWords), Inputs(ids, kWords));
  ASSERT_OK(session.Init());
  session.Step();
  session.server().Cancel();
  EXPECT_EQ(session.server().state(), ServerState::kAborted);
  EXPECT_EQ(session.server().abort_reason(), v1::SECAGG_SERVER_CANCELLED);
  EXPECT_EQ(session.server().CloseRound(), ServerState::kAborted);
}

TEST_F(SecAggSessionTest, RealVectorsSumThroughTheCodec) {
  const auto ids = Ids(6);
  v1::SecAggEncoding encoding;
  v1::SecAggSegment* bounded = encoding.add_segments();
  bounded->set_kind(v1::SecAggSegment::BOUNDED);
  bounded->set_length(400);
  bounded->set_bits(MaxBitsForParties(6));
  bounded->set_bound(2.0);
  v1::SecAggSegment* wide = encoding.add_segments();
  wide->set_kind(v1::SecAggSegment::WIDE);
  wide->set_length(30);
  wide->set_bits(MaxBitsForParties(6));
  wide->set_fraction_bits(16);
  wide->set_limbs(3);

  std::map<std::string, std::vector<double>> values;
  std::map<std::string, std::vector<uint32_t>> inputs;
  common::SplitMix64 rng(7);
  for (const std::string& id : ids) {
    std::vector<double>& v = values[id];
    for (int i = 0; i < 400; ++i) v.push_back(4.0 * rng.NextUnit() - 2.0);
    // WIDE values on the 2^-16 grid, up to 2^29 (feature sums) and negative; their sums
    // stay exact in a double, so the decoded sum can be compared with ==.
    for (int i = 0; i < 30; ++i) {
      const double integer = static_cast<double>(static_cast<int64_t>(rng.Below(1u << 30))) -
                             static_cast<double>(1 << 29);
      v.push_back(integer + static_cast<double>(rng.Below(1u << 16)) / 65536.0);
    }
    ASSERT_OK_AND_ASSIGN(inputs[id], EncodeVector(v, encoding));
  }
  SessionOptions options;
  options.stop_at[ids[4]] = v1::SECAGG_MASKED_INPUT;
  Session session(*federation_, MakeSetup(ids, 5, encoding), inputs, options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  const auto survivors = Without(ids, {ids[4]});
  ASSERT_EQ(session.server().sum(), session.ExpectedSum(survivors));

  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(session.server().sum(), encoding));
  QuantizationSpec spec;
  spec.bits = bounded->bits();
  spec.bound = 2.0;
  const double step = QuantizationStep(spec);
  for (size_t i = 0; i < decoded.size(); ++i) {
    double want = 0;
    for (const std::string& id : survivors) want += values[id][i];
    if (i < 400) {
      // Each party's stochastic rounding is off by less than one step.
      EXPECT_NEAR(decoded[i], want, survivors.size() * step) << i;
    } else {
      EXPECT_EQ(decoded[i], want) << i;  // WIDE sums are exact
    }
  }
}

// ---- the server drops misbehaving clients and goes on ----

TEST_F(SecAggSessionTest, ServerDropsClientsWithMalformedAnswersAndGoesOn) {
  // Twenty-one clients, threshold 15: six misbehave, one per check, and fifteen remain.
  const auto ids = Ids(21);
  SessionOptions options;
  options.to_server = [&](v1::SecAggRound round, const std::string& sender,
                          v1::SecAggClientMessage& message) {
    if (round == v1::SECAGG_SHARE_KEYS && sender == ids[1]) {
      message.mutable_share_keys()->mutable_shares()->RemoveLast();
    }
    if (round == v1::SECAGG_SHARE_KEYS && sender == ids[2]) {
      message.mutable_share_keys()->mutable_shares(0)->set_receiver(ids[2]);
    }
    if (round == v1::SECAGG_SHARE_KEYS && sender == ids[3]) {
      message.mutable_share_keys()->mutable_shares(1)->mutable_ciphertext()->pop_back();
    }
    if (round == v1::SECAGG_MASKED_INPUT && sender == ids[4]) {
      message.mutable_masked_input()->mutable_masked_input()->append("xxxx");
    }
    if (round == v1::SECAGG_CONSISTENCY_CHECK && sender == ids[5]) {
      (*message.mutable_consistency()->mutable_signature())[10] ^= 1;
    }
    if (round == v1::SECAGG_UNMASKING && sender == ids[6]) {
      message.mutable_unmasking()->mutable_shares()->RemoveLast();
    }
  };
  Session session(*federation_, MakeSetup(ids, 15, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();

  std::map<std::string, std::pair<v1::SecAggRound, v1::SecAggDropReason>> drops;
  for (const ClientDrop& drop : session.server().drops()) {
    drops[drop.client_id] = {drop.round, drop.reason};
  }
  using Entry = std::pair<const std::string, std::pair<v1::SecAggRound, v1::SecAggDropReason>>;
  EXPECT_THAT(drops, UnorderedElementsAreArray(std::vector<Entry>{
                         {ids[1], {v1::SECAGG_SHARE_KEYS, v1::SECAGG_DROP_MALFORMED}},
                         {ids[2], {v1::SECAGG_SHARE_KEYS, v1::SECAGG_DROP_MALFORMED}},
                         {ids[3], {v1::SECAGG_SHARE_KEYS, v1::SECAGG_DROP_MALFORMED}},
                         {ids[4], {v1::SECAGG_MASKED_INPUT, v1::SECAGG_DROP_MALFORMED}},
                         {ids[5], {v1::SECAGG_CONSISTENCY_CHECK, v1::SECAGG_DROP_BAD_SIGNATURE}},
                         {ids[6], {v1::SECAGG_UNMASKING, v1::SECAGG_DROP_MALFORMED}},
                     }));
  EXPECT_THAT(session.receive_status().at(ids[5]),
              tessera::testing::StatusIs(absl::StatusCode::kUnauthenticated));
  // ids[5] and ids[6] sent their masked inputs: they are in the sum.
  const auto survivors = Without(ids, {ids[1], ids[2], ids[3], ids[4]});
  EXPECT_THAT(session.server().survivors(), ElementsAreArray(survivors));
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(survivors));
}

class ServerAdvertisementCheckTest : public SecAggSessionTest {
 protected:
  void SetUp() override {
    ids_ = Ids(4);
    setup_ = MakeSetup(ids_, 3, 16);
    ServerOptions options;
    options.ca_cert_pem = federation_->ca_cert_pem();
    options.now = absl::Now();
    ASSERT_OK_AND_ASSIGN(server_, SecAggServer::Create(setup_, options));
  }

  // A genuine advertisement of `identity` for `setup`.
  static v1::KeyAdvertisement Advertise(const ClientIdentity& identity,
                                        const v1::SecAggSetup& setup) {
    v1::SecAggClientMessage reply;
    ClientPolicy policy;
    auto client =
        SecAggClient::Start(identity, policy, setup, std::vector<uint32_t>(setup.vector_words()),
                            absl::Now(), &reply, nullptr);
    EXPECT_TRUE(client.ok()) << client.status();
    return reply.advertisement();
  }

  static v1::SecAggClientMessage Wrap(const v1::KeyAdvertisement& ad) {
    v1::SecAggClientMessage message;
    *message.mutable_advertisement() = ad;
    return message;
  }

  void ExpectDropped(const std::string& id, const v1::KeyAdvertisement& ad, absl::StatusCode code,
                     v1::SecAggDropReason reason) {
    EXPECT_THAT(server_->Receive(id, Wrap(ad)), tessera::testing::StatusIs(code));
    ASSERT_FALSE(server_->drops().empty());
    EXPECT_EQ(server_->drops().back().client_id, id);
    EXPECT_EQ(server_->drops().back().reason, reason);
    EXPECT_EQ(server_->drops().back().round, v1::SECAGG_ADVERTISE_KEYS);
    EXPECT_FALSE(server_->Pending().contains(id));
  }

  std::vector<std::string> ids_;
  v1::SecAggSetup setup_;
  std::unique_ptr<SecAggServer> server_;
};

TEST_F(ServerAdvertisementCheckTest, AcceptsAGenuineAdvertisement) {
  EXPECT_OK(server_->Receive(ids_[0], Wrap(Advertise(federation_->Identity(ids_[0]), setup_))));
  EXPECT_FALSE(server_->Pending().contains(ids_[0]));
  EXPECT_THAT(server_->drops(), IsEmpty());
}

TEST_F(ServerAdvertisementCheckTest, DropsAForeignCertificate) {
  ASSERT_OK_AND_ASSIGN(testing::Party foreign,
                       federation_->Issue("foreign-site", Role::kInstitution, /*foreign=*/true));
  ClientIdentity identity = foreign.Identity(federation_->ca_cert_pem());
  identity.client_id = ids_[1];  // it claims to be an invited site
  ExpectDropped(ids_[1], Advertise(identity, setup_), absl::StatusCode::kUnauthenticated,
                v1::SECAGG_DROP_BAD_CERTIFICATE);
}

TEST_F(ServerAdvertisementCheckTest, DropsACertificateForAnotherClient) {
  ExpectDropped(ids_[1], Advertise(federation_->Identity(ids_[2]), setup_),
                absl::StatusCode::kUnauthenticated, v1::SECAGG_DROP_BAD_CERTIFICATE);
}

TEST_F(ServerAdvertisementCheckTest, DropsACertificateWithoutTheInstitutionRole) {
  ASSERT_OK_AND_ASSIGN(testing::Party op, federation_->Issue("console-op", Role::kOperator));
  std::vector<std::string> ids = ids_;
  ids.push_back("console-op");
  std::sort(ids.begin(), ids.end());
  setup_ = MakeSetup(ids, 4, 16);
  ServerOptions options;
  options.ca_cert_pem = federation_->ca_cert_pem();
  options.now = absl::Now();
  ASSERT_OK_AND_ASSIGN(server_, SecAggServer::Create(setup_, options));
  ExpectDropped("console-op", Advertise(op.Identity(federation_->ca_cert_pem()), setup_),
                absl::StatusCode::kUnauthenticated, v1::SECAGG_DROP_BAD_CERTIFICATE);
}

TEST_F(ServerAdvertisementCheckTest, DropsABadSignature) {
  v1::KeyAdvertisement ad = Advertise(federation_->Identity(ids_[0]), setup_);
  (*ad.mutable_mask_public_key())[0] ^= 1;
  ExpectDropped(ids_[0], ad, absl::StatusCode::kUnauthenticated, v1::SECAGG_DROP_BAD_SIGNATURE);
}

TEST_F(ServerAdvertisementCheckTest, DropsAnAdvertisementForAnotherSetup) {
  const v1::SecAggSetup other = MakeSetup(ids_, 3, 16);  // another nonce
  ExpectDropped(ids_[0], Advertise(federation_->Identity(ids_[0]), other),
                absl::StatusCode::kInvalidArgument, v1::SECAGG_DROP_MALFORMED);
}

TEST_F(ServerAdvertisementCheckTest, DropsKeysOfTheWrongSizeOrOfSmallOrder) {
  v1::KeyAdvertisement ad = Advertise(federation_->Identity(ids_[0]), setup_);
  ad.set_channel_public_key(std::string(31, 'k'));
  ExpectDropped(ids_[0], ad, absl::StatusCode::kInvalidArgument, v1::SECAGG_DROP_MALFORMED);

  // A correctly signed small-order point (the all-zero u-coordinate).
  ad = Advertise(federation_->Identity(ids_[1]), setup_);
  ad.set_mask_public_key(std::string(32, '\0'));
  ASSERT_OK_AND_ASSIGN(
      std::string signature,
      federation_->party(ids_[1]).signer->Sign(AdvertisementSigningInput(
          ad.setup_digest(), ids_[1], ad.channel_public_key(), ad.mask_public_key())));
  ad.set_signature(signature);
  ExpectDropped(ids_[1], ad, absl::StatusCode::kInvalidArgument, v1::SECAGG_DROP_MALFORMED);
}

TEST_F(ServerAdvertisementCheckTest, DropsAClientRepeatingAnotherClientsKey) {
  const v1::KeyAdvertisement first = Advertise(federation_->Identity(ids_[0]), setup_);
  ASSERT_OK(server_->Receive(ids_[0], Wrap(first)));
  v1::KeyAdvertisement copy = Advertise(federation_->Identity(ids_[1]), setup_);
  copy.set_mask_public_key(first.mask_public_key());
  ASSERT_OK_AND_ASSIGN(
      std::string signature,
      federation_->party(ids_[1]).signer->Sign(AdvertisementSigningInput(
          copy.setup_digest(), ids_[1], copy.channel_public_key(), copy.mask_public_key())));
  copy.set_signature(signature);
  ExpectDropped(ids_[1], copy, absl::StatusCode::kInvalidArgument, v1::SECAGG_DROP_DUPLICATE_KEYS);
}

// ---- corrupted unmasking shares ----

// Adds one to every field element of the share `owner`/`kind` in an unmasking answer (still
// a well-formed share at the sender's point: only its value is wrong). Every piece, since
// an error confined to the lowest bits of an X25519 scalar can vanish in its clamping.
void CorruptUnmaskingShare(v1::SecAggClientMessage& message, const std::string& owner,
                           v1::UnmaskingShare::Kind kind) {
  for (v1::UnmaskingShare& share : *message.mutable_unmasking()->mutable_shares()) {
    if (share.owner() != owner || share.kind() != kind) continue;
    auto parsed = ShamirShare::Parse(share.share());
    ASSERT_TRUE(parsed.ok());
    for (uint64_t& y : parsed->y) y = (y + 1) % kShamirPrime;
    share.set_share(std::string(parsed->Serialize().view()));
    return;
  }
  FAIL() << "no share for " << owner;
}

TEST_F(SecAggSessionTest, SpareSharesOutvoteCorruptedUnmaskingShares) {
  // Ten clients, threshold 7, one dropped after sharing keys: nine answer the unmasking,
  // two of them with a corrupted share of a self-mask seed and of the dropped mask key,
  // which leaves exactly seven good shares of each.
  const auto ids = Ids(10);
  SessionOptions options;
  options.stop_at[ids[6]] = v1::SECAGG_MASKED_INPUT;
  options.to_server = [&](v1::SecAggRound round, const std::string& sender,
                          v1::SecAggClientMessage& message) {
    if (round != v1::SECAGG_UNMASKING) return;
    if (sender == ids[0] || sender == ids[3]) {
      CorruptUnmaskingShare(message, ids[2], v1::UnmaskingShare::SELF_MASK_SEED);
      CorruptUnmaskingShare(message, ids[6], v1::UnmaskingShare::MASK_KEY);
    }
  };
  Session session(*federation_, MakeSetup(ids, 7, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  const auto survivors = Without(ids, {ids[6]});
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(survivors));
}

TEST_F(SecAggSessionTest, RandomSubsetsFindGoodSharesWhenWindowsCannot) {
  // Fourteen clients, threshold 8: two corrupted shares of one seed, seven places apart,
  // so no window of eight consecutive releasers avoids both and there are too many
  // subsets to try them all: the random subsets find one of the 495 clean ones of 3003.
  // This tests the reconstruction search, not the threshold rule: at the default rule's
  // threshold (10 of 14) clean subsets are too rare for the 50 random tries to find one
  // reliably, so the test states c = 0 colluders, whose rule allows 8.
  const auto ids = Ids(14);
  SessionOptions options;
  options.policy.assumed_colluders = 0;
  options.to_server = [&](v1::SecAggRound round, const std::string& sender,
                          v1::SecAggClientMessage& message) {
    if (round == v1::SECAGG_UNMASKING && (sender == ids[0] || sender == ids[7])) {
      CorruptUnmaskingShare(message, ids[5], v1::UnmaskingShare::SELF_MASK_SEED);
    }
  };
  Session session(*federation_, MakeSetup(ids, 8, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  ASSERT_EQ(session.Run(), ServerState::kCompleted) << session.server().abort_detail();
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids));
}

class CorruptedShareAtThresholdTest
    : public SecAggSessionTest,
      public ::testing::WithParamInterface<v1::UnmaskingShare::Kind> {};

TEST_P(CorruptedShareAtThresholdTest, ReconstructionFails) {
  // Five clients, threshold 4; one dropped after sharing keys: exactly four unmasking
  // answers, one of them corrupted.
  const auto ids = Ids(5);
  const v1::UnmaskingShare::Kind kind = GetParam();
  SessionOptions options;
  options.stop_at[ids[4]] = v1::SECAGG_MASKED_INPUT;
  options.to_server = [&](v1::SecAggRound round, const std::string& sender,
                          v1::SecAggClientMessage& message) {
    if (round == v1::SECAGG_UNMASKING && sender == ids[1]) {
      CorruptUnmaskingShare(message, kind == v1::UnmaskingShare::MASK_KEY ? ids[4] : ids[0], kind);
    }
  };
  Session session(*federation_, MakeSetup(ids, 4, kWords), Inputs(ids, kWords), options);
  ASSERT_OK(session.Init());
  EXPECT_EQ(session.Run(), ServerState::kAborted);
  EXPECT_EQ(session.server().abort_reason(), v1::SECAGG_SERVER_RECONSTRUCTION_FAILED);
  EXPECT_THAT(session.server().sum(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Kinds, CorruptedShareAtThresholdTest,
                         ::testing::Values(v1::UnmaskingShare::SELF_MASK_SEED,
                                           v1::UnmaskingShare::MASK_KEY),
                         [](const auto& info) {
                           return v1::UnmaskingShare::Kind_Name(info.param);
                         });

}  // namespace
}  // namespace tessera::secagg
