// Attack 2 of the privacy issue: a split view with one colluding site. Five sites A..E, C
// colluding with the coordinator. Every site sends its masked input; then the coordinator
// tells {A, B} that the survivors are {A, B, C} and {D, E} that they are {C, D, E}. C signs
// both survivor sets, so each group sees t = 3 signatures on its own set and releases its
// shares: {A, B} the self-mask seeds of {A, B, C} and the mask keys of {D, E} ("dropped"),
// {D, E} the seeds of {C, D, E} and the mask keys of {A, B}. With C's own shares the
// coordinator then holds t shares of both of A's secrets — and A's masked input: A's vector
// comes out exactly.
//
// The bound (docs/secure-aggregation.md): honest sites sign one survivor set each, so two
// sets with t signatures each need n + c >= 2t with c colluders; t > 2n/3 rules that out
// for every c < n/3. A site now refuses any threshold below floor(2n/3) + 1 (4 of 5); at 4
// of 5 the two groups can each show only 3 signatures and the honest sites refuse to
// unmask.
//
// The colluder here is played by the test with the protocol's own functions (secagg/
// protocol.h): it advertises keys it knows, shares its secrets properly, decrypts the
// shares addressed to it, and signs whatever the coordinator asks.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "secagg/internal/wire.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

using crypto::AesGcm256;
using crypto::MaskGenerator;
using crypto::SecretBytes;
using crypto::ShamirShare;
using crypto::X25519PrivateKey;
using crypto::X25519PublicKey;

const std::string kTarget = "site-1";
const std::string kColluder = "site-3";
const std::vector<std::string> kGroup1 = {"site-1", "site-2"};
const std::vector<std::string> kGroup2 = {"site-4", "site-5"};
const std::vector<std::string> kView1 = {"site-1", "site-2", "site-3"};
const std::vector<std::string> kView2 = {"site-3", "site-4", "site-5"};

// What the attack got.
struct SplitViewResult {
  // A's vector, when the coordinator could rebuild both of A's secrets.
  std::optional<std::vector<double>> recovered;
  // Why it stopped, when it did.
  std::string stopped;
  // Every decline, by site.
  std::map<std::string, v1::Decline> declines;
  // Shares of A's seed and mask key the coordinator ended up with.
  size_t seed_shares = 0, key_shares = 0;
};

class SplitViewAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(5));
    ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, AttackFederation::ExampleSpec());
    plan_.stage = v1::STAGE_STATISTICS;
    plan_.round = 0;
    plan_.cohort = federation_->ids();
    plan_.spec = spec;
  }

  // Asks `site` for `step` of the session; records a decline and returns nullopt then.
  std::optional<v1::SecAggClientMessage> Ask(const std::string& site, int step,
                                             const v1::SecAggServerMessage& message,
                                             SplitViewResult* result) {
    const v1::PushResultRequest answer = federation_->Ask(site, StepItem(plan_, step, message));
    if (answer.has_decline()) {
      result->declines.emplace(site, answer.decline());
      return std::nullopt;
    }
    return answer.secagg();
  }

  SplitViewResult Run(uint32_t threshold);

  std::unique_ptr<AttackFederation> federation_;
  StagePlan plan_;
};

SplitViewResult SplitViewAttack::Run(uint32_t threshold) {
  SplitViewResult result;
  plan_.threshold = threshold;
  const v1::SecAggSetup setup = SetupFor(plan_);
  const std::string digest = secagg::SetupDigest(setup);
  const std::vector<std::string> honest = {"site-1", "site-2", "site-4", "site-5"};

  // ---- ADVERTISE_KEYS: the honest sites compute their vectors and advertise. ----
  v1::SecAggServerMessage m0;
  m0.set_round(v1::SECAGG_ADVERTISE_KEYS);
  *m0.mutable_setup() = setup;
  std::map<std::string, v1::KeyAdvertisement> ads;
  for (const std::string& site : honest) {
    auto reply = Ask(site, 0, m0, &result);
    if (!reply.has_value()) continue;
    ads[site] = reply->advertisement();
  }
  if (ads.size() < honest.size()) {
    result.stopped = "honest sites refused the set-up";
    return result;
  }
  // The colluder's keys are the coordinator's.
  X25519PrivateKey c_channel = *X25519PrivateKey::Generate();
  X25519PrivateKey c_mask = *X25519PrivateKey::Generate();
  const SecretBytes c_seed = *crypto::RandomBytes(32);
  v1::KeyAdvertisement& c_ad = ads[kColluder];
  c_ad.set_certificate(federation_->certificate(kColluder));
  c_ad.set_channel_public_key(c_channel.public_key().bytes());
  c_ad.set_mask_public_key(c_mask.public_key().bytes());
  c_ad.set_setup_digest(digest);
  c_ad.set_signature(*federation_->signer(kColluder).Sign(secagg::AdvertisementSigningInput(
      digest, kColluder, c_ad.channel_public_key(), c_ad.mask_public_key())));

  // ---- SHARE_KEYS ----
  v1::SecAggServerMessage m1;
  m1.set_round(v1::SECAGG_SHARE_KEYS);
  std::vector<v1::AdvertisementEntry> entries;
  for (const auto& [site, ad] : ads) {  // sorted by id: site-1 .. site-5
    v1::AdvertisementEntry* e = m1.mutable_advertisements()->add_entries();
    e->set_client_id(site);
    *e->mutable_advertisement() = ad;
    entries.push_back(*e);
  }
  const std::string session_id = secagg::SessionId(digest, entries);
  std::map<std::string, std::vector<v1::EncryptedShare>> outbox;  // by sender
  for (const std::string& site : honest) {
    auto reply = Ask(site, 1, m1, &result);
    if (!reply.has_value()) {
      result.stopped = "an honest site aborted at share_keys";
      return result;
    }
    outbox[site].assign(reply->share_keys().shares().begin(), reply->share_keys().shares().end());
  }
  auto key_shares = *crypto::ShamirSplit(c_mask.bytes(), static_cast<int>(threshold), 5);
  auto seed_shares = *crypto::ShamirSplit(c_seed, static_cast<int>(threshold), 5);
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& peer = entries[i].client_id();
    if (peer == kColluder) continue;
    auto peer_key = *X25519PublicKey::FromBytes(ads[peer].channel_public_key());
    auto channel = *AesGcm256::Create(
        *secagg::ShareChannelKey(*c_channel.Agree(peer_key), session_id, kColluder, peer));
    std::string plaintext;
    secagg::internal::AppendField(&plaintext, kColluder);
    secagg::internal::AppendField(&plaintext, peer);
    secagg::internal::AppendField(&plaintext, key_shares[i].Serialize().view());
    secagg::internal::AppendField(&plaintext, seed_shares[i].Serialize().view());
    v1::EncryptedShare share;
    share.set_sender(kColluder);
    share.set_receiver(peer);
    share.set_ciphertext(
        *channel.Encrypt(plaintext, secagg::ShareAssociatedData(session_id, kColluder, peer)));
    outbox[kColluder].push_back(share);
  }
  // The colluder opens the shares A sent it: one share of each of A's two secrets.
  std::optional<ShamirShare> c_has_a_key, c_has_a_seed;
  for (const v1::EncryptedShare& share : outbox[kTarget]) {
    if (share.receiver() != kColluder) continue;
    auto a_key = *X25519PublicKey::FromBytes(ads[kTarget].channel_public_key());
    auto channel = *AesGcm256::Create(
        *secagg::ShareChannelKey(*c_channel.Agree(a_key), session_id, kTarget, kColluder));
    auto plaintext = channel.Decrypt(share.ciphertext(),
                                     secagg::ShareAssociatedData(session_id, kTarget, kColluder));
    if (!plaintext.ok()) break;
    secagg::internal::FieldReader reader(plaintext->view());
    reader.Next();
    reader.Next();
    c_has_a_key = *ShamirShare::Parse(*reader.Next());
    c_has_a_seed = *ShamirShare::Parse(*reader.Next());
  }

  // ---- MASKED_INPUT: every share holder gets its shares; the honest sites mask. ----
  std::map<std::string, std::string> masked;
  for (const std::string& site : honest) {
    v1::SecAggServerMessage m2;
    m2.set_round(v1::SECAGG_MASKED_INPUT);
    for (const auto& [id, ad] : ads) m2.mutable_share_relay()->add_share_holders(id);
    for (const auto& [sender, shares] : outbox) {
      for (const v1::EncryptedShare& s : shares) {
        if (s.receiver() == site) *m2.mutable_share_relay()->add_shares() = s;
      }
    }
    auto reply = Ask(site, 2, m2, &result);
    if (!reply.has_value()) {
      result.stopped = "an honest site aborted at masked_input";
      return result;
    }
    masked[site] = reply->masked_input().masked_input();
  }

  // ---- CONSISTENCY_CHECK: the split. The colluder signs both views. ----
  std::map<std::string, std::string> signature;  // on the view shown to each signer
  auto show = [&](const std::vector<std::string>& group, const std::vector<std::string>& view) {
    for (const std::string& site : group) {
      v1::SecAggServerMessage m3;
      m3.set_round(v1::SECAGG_CONSISTENCY_CHECK);
      for (const std::string& s : view) m3.mutable_survivor_list()->add_survivors(s);
      auto reply = Ask(site, 3, m3, &result);
      if (reply.has_value()) signature[site] = reply->consistency().signature();
    }
  };
  show(kGroup1, kView1);
  show(kGroup2, kView2);
  auto colluder_signs = [&](const std::vector<std::string>& view) {
    return *federation_->signer(kColluder).Sign(secagg::ConsistencySigningInput(session_id, view));
  };

  // ---- UNMASKING: each group is asked with the signatures on its own view. ----
  std::vector<ShamirShare> a_seed, a_key;
  if (c_has_a_seed.has_value()) a_seed.push_back(*c_has_a_seed);
  if (c_has_a_key.has_value()) a_key.push_back(*c_has_a_key);
  auto unmask = [&](const std::vector<std::string>& group, const std::vector<std::string>& view,
                    const std::vector<std::string>& dropped) {
    v1::SecAggServerMessage m4;
    m4.set_round(v1::SECAGG_UNMASKING);
    v1::UnmaskingRequest* request = m4.mutable_unmasking_request();
    for (const std::string& s : view) request->add_survivors(s);
    for (const std::string& s : dropped) request->add_dropped(s);
    for (const std::string& s : view) {
      v1::ConsistencySignature* sig = request->add_signatures();
      sig->set_client_id(s);
      sig->set_signature(s == kColluder ? colluder_signs(view) : signature[s]);
    }
    for (const std::string& site : group) {
      auto reply = Ask(site, 4, m4, &result);
      if (!reply.has_value()) continue;
      for (const v1::UnmaskingShare& share : reply->unmasking().shares()) {
        if (share.owner() != kTarget) continue;
        auto parsed = ShamirShare::Parse(share.share());
        if (!parsed.ok()) continue;
        (share.kind() == v1::UnmaskingShare::SELF_MASK_SEED ? a_seed : a_key).push_back(*parsed);
      }
    }
  };
  unmask(kGroup1, kView1, kGroup2);
  unmask(kGroup2, kView2, kGroup1);
  result.seed_shares = a_seed.size();
  result.key_shares = a_key.size();
  if (a_seed.size() < threshold || a_key.size() < threshold) {
    result.stopped = "too few shares of the target's secrets";
    return result;
  }

  // ---- The coordinator rebuilds A's secrets and strips A's masks. ----
  auto seed = crypto::ShamirCombine(a_seed, static_cast<int>(threshold));
  auto key_bytes = crypto::ShamirCombine(a_key, static_cast<int>(threshold));
  if (!seed.ok() || !key_bytes.ok()) {
    result.stopped = "the shares did not combine";
    return result;
  }
  auto a_mask = X25519PrivateKey::FromBytes(*key_bytes);
  if (!a_mask.ok() || a_mask->public_key().bytes() != ads[kTarget].mask_public_key()) {
    result.stopped = "the rebuilt mask key is not A's";
    return result;
  }
  std::vector<uint32_t> words(setup.vector_words());
  secagg::internal::BytesToWords(masked[kTarget], words);
  MaskGenerator::Create(*secagg::SelfMaskKey(*seed, session_id, kTarget))->SubtractFrom(0, words);
  for (const auto& [peer, ad] : ads) {
    if (peer == kTarget) continue;
    auto shared = a_mask->Agree(*X25519PublicKey::FromBytes(ad.mask_public_key()));
    auto mask = MaskGenerator::Create(*secagg::PairwiseMaskKey(*shared, session_id, kTarget, peer));
    if (secagg::PairwiseMaskSign(kTarget, peer) > 0) {
      mask->SubtractFrom(0, words);
    } else {
      mask->AddTo(0, words);
    }
  }
  auto decoded = secagg::DecodeSum(words, setup.encoding());
  if (decoded.ok()) result.recovered = *decoded;
  return result;
}

// At 3 of 5 — the strict majority sites used to accept — the split view unmasks A. Sites
// now refuse the set-up.
TEST_F(SplitViewAttack, AtTheOldStrictMajorityThresholdSitesRefuseTheSetup) {
  const std::vector<double> truth = federation_->TrueVector(kTarget, FirstItem(plan_));
  const SplitViewResult result = Run(3);
  if (result.recovered.has_value()) {
    ADD_FAILURE() << "A's vector was unmasked (max error "
                  << MaxAbsDifference(*result.recovered, truth) << ")";
  }
  for (const std::string& site : {"site-1", "site-2", "site-4", "site-5"}) {
    auto it = result.declines.find(site);
    ASSERT_NE(it, result.declines.end()) << site << " accepted threshold 3 of 5";
    EXPECT_EQ(it->second.reason(), v1::Decline::SECURE_AGGREGATION_ABORTED);
    EXPECT_THAT(it->second.detail(), ::testing::HasSubstr("SECAGG_BAD_SETUP"));
  }
}

// At 4 of 5 each view of three sites is below the threshold and the honest sites abort
// before signing or unmasking (a view of four would need four signers, and the honest
// sites of the other view could then muster only two): the coordinator holds fewer than t
// shares of A's secrets.
TEST_F(SplitViewAttack, AtTheSafeThresholdTheSplitGetsTooFewSignatures) {
  const SplitViewResult result = Run(4);
  EXPECT_FALSE(result.recovered.has_value()) << "A's vector was unmasked";
  EXPECT_LT(std::min(result.seed_shares, result.key_shares), 4u);
  for (const std::string& site : {"site-1", "site-2", "site-4", "site-5"}) {
    auto it = result.declines.find(site);
    ASSERT_NE(it, result.declines.end()) << site << " released unmasking shares";
    EXPECT_EQ(it->second.reason(), v1::Decline::SECURE_AGGREGATION_ABORTED)
        << it->second.ShortDebugString();
  }
}

}  // namespace
}  // namespace tessera::attack
