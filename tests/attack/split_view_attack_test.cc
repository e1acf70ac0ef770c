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

 private:
  // What the coordinator and its colluder know as the session goes on.
  struct Session {
    uint32_t threshold = 0;
    v1::SecAggSetup setup;
    std::string digest, session_id;
    std::map<std::string, v1::KeyAdvertisement> ads;
    std::vector<v1::AdvertisementEntry> entries;
    std::map<std::string, std::vector<v1::EncryptedShare>> outbox;  // by sender
    std::map<std::string, std::string> masked;                      // masked inputs
    std::map<std::string, std::string> signature;  // on the view shown to each signer
    std::optional<X25519PrivateKey> c_channel, c_mask;
    std::vector<ShamirShare> a_seed, a_key;  // shares of A's secrets held so far
  };

  bool AdvertiseKeys(Session& s, SplitViewResult* result);
  bool ShareKeys(Session& s, SplitViewResult* result);
  void ColluderSharesAndOpensAs(Session& s);
  bool MaskInputs(Session& s, SplitViewResult* result);
  void ShowSplitViews(Session& s, SplitViewResult* result);
  void Unmask(Session& s, const std::vector<std::string>& group,
              const std::vector<std::string>& view, const std::vector<std::string>& dropped,
              SplitViewResult* result);
  std::optional<std::vector<double>> StripMasks(const Session& s, SplitViewResult* result);

  const std::vector<std::string> honest_ = {"site-1", "site-2", "site-4", "site-5"};

 protected:
  std::unique_ptr<AttackFederation> federation_;
  StagePlan plan_;
};

SplitViewResult SplitViewAttack::Run(uint32_t threshold) {
  SplitViewResult result;
  plan_.threshold = threshold;
  Session s;
  s.threshold = threshold;
  s.setup = SetupFor(plan_);
  s.digest = secagg::SetupDigest(s.setup);
  if (!AdvertiseKeys(s, &result) || !ShareKeys(s, &result)) return result;
  ColluderSharesAndOpensAs(s);
  if (!MaskInputs(s, &result)) return result;
  ShowSplitViews(s, &result);
  Unmask(s, kGroup1, kView1, kGroup2, &result);
  Unmask(s, kGroup2, kView2, kGroup1, &result);
  result.seed_shares = s.a_seed.size();
  result.key_shares = s.a_key.size();
  if (s.a_seed.size() < threshold || s.a_key.size() < threshold) {
    result.stopped = "too few shares of the target's secrets";
    return result;
  }
  result.recovered = StripMasks(s, &result);
  return result;
}

// ADVERTISE_KEYS: the honest sites compute their vectors and advertise; the colluder's keys
// are the coordinator's.
bool SplitViewAttack::AdvertiseKeys(Session& s, SplitViewResult* result) {
  v1::SecAggServerMessage m0;
  m0.set_round(v1::SECAGG_ADVERTISE_KEYS);
  *m0.mutable_setup() = s.setup;
  for (const std::string& site : honest_) {
    auto reply = Ask(site, 0, m0, result);
    if (reply.has_value()) s.ads[site] = reply->advertisement();
  }
  if (s.ads.size() < honest_.size()) {
    result->stopped = "honest sites refused the set-up";
    return false;
  }
  s.c_channel = *X25519PrivateKey::Generate();
  s.c_mask = *X25519PrivateKey::Generate();
  v1::KeyAdvertisement& c_ad = s.ads[kColluder];
  c_ad.set_certificate(federation_->certificate(kColluder));
  c_ad.set_channel_public_key(s.c_channel->public_key().bytes());
  c_ad.set_mask_public_key(s.c_mask->public_key().bytes());
  c_ad.set_setup_digest(s.digest);
  c_ad.set_signature(*federation_->signer(kColluder).Sign(secagg::AdvertisementSigningInput(
      s.digest, kColluder, c_ad.channel_public_key(), c_ad.mask_public_key())));
  return true;
}

// SHARE_KEYS: the honest sites share their secrets.
bool SplitViewAttack::ShareKeys(Session& s, SplitViewResult* result) {
  v1::SecAggServerMessage m1;
  m1.set_round(v1::SECAGG_SHARE_KEYS);
  for (const auto& [site, ad] : s.ads) {  // sorted by id: site-1 .. site-5
    v1::AdvertisementEntry* e = m1.mutable_advertisements()->add_entries();
    e->set_client_id(site);
    *e->mutable_advertisement() = ad;
    s.entries.push_back(*e);
  }
  s.session_id = secagg::SessionId(s.digest, s.entries);
  for (const std::string& site : honest_) {
    auto reply = Ask(site, 1, m1, result);
    if (!reply.has_value()) {
      result->stopped = "an honest site aborted at share_keys";
      return false;
    }
    s.outbox[site].assign(reply->share_keys().shares().begin(), reply->share_keys().shares().end());
  }
  return true;
}

// The colluder shares its own secrets properly and opens the shares A sent it: one share of
// each of A's two secrets.
void SplitViewAttack::ColluderSharesAndOpensAs(Session& s) {
  const int t = static_cast<int>(s.threshold);
  const SecretBytes c_seed = *crypto::RandomBytes(32);
  auto key_shares = *crypto::ShamirSplit(s.c_mask->bytes(), t, 5);
  auto seed_shares = *crypto::ShamirSplit(c_seed, t, 5);
  for (size_t i = 0; i < s.entries.size(); ++i) {
    const std::string& peer = s.entries[i].client_id();
    if (peer == kColluder) continue;
    auto peer_key = *X25519PublicKey::FromBytes(s.ads[peer].channel_public_key());
    auto channel = *AesGcm256::Create(
        *secagg::ShareChannelKey(*s.c_channel->Agree(peer_key), s.session_id, kColluder, peer));
    std::string plaintext;
    secagg::internal::AppendField(&plaintext, kColluder);
    secagg::internal::AppendField(&plaintext, peer);
    secagg::internal::AppendField(&plaintext, key_shares[i].Serialize().view());
    secagg::internal::AppendField(&plaintext, seed_shares[i].Serialize().view());
    v1::EncryptedShare share;
    share.set_sender(kColluder);
    share.set_receiver(peer);
    share.set_ciphertext(
        *channel.Encrypt(plaintext, secagg::ShareAssociatedData(s.session_id, kColluder, peer)));
    s.outbox[kColluder].push_back(share);
  }
  for (const v1::EncryptedShare& share : s.outbox[kTarget]) {
    if (share.receiver() != kColluder) continue;
    auto a_key = *X25519PublicKey::FromBytes(s.ads[kTarget].channel_public_key());
    auto channel = *AesGcm256::Create(
        *secagg::ShareChannelKey(*s.c_channel->Agree(a_key), s.session_id, kTarget, kColluder));
    auto plaintext = channel.Decrypt(share.ciphertext(),
                                     secagg::ShareAssociatedData(s.session_id, kTarget, kColluder));
    if (!plaintext.ok()) return;
    secagg::internal::FieldReader reader(plaintext->view());
    reader.Next();
    reader.Next();
    s.a_key.push_back(*ShamirShare::Parse(*reader.Next()));
    s.a_seed.push_back(*ShamirShare::Parse(*reader.Next()));
  }
}

// MASKED_INPUT: every share holder gets its shares; the honest sites mask.
bool SplitViewAttack::MaskInputs(Session& s, SplitViewResult* result) {
  for (const std::string& site : honest_) {
    v1::SecAggServerMessage m2;
    m2.set_round(v1::SECAGG_MASKED_INPUT);
    for (const auto& [id, ad] : s.ads) m2.mutable_share_relay()->add_share_holders(id);
    for (const auto& [sender, shares] : s.outbox) {
      for (const v1::EncryptedShare& share : shares) {
        if (share.receiver() == site) *m2.mutable_share_relay()->add_shares() = share;
      }
    }
    auto reply = Ask(site, 2, m2, result);
    if (!reply.has_value()) {
      result->stopped = "an honest site aborted at masked_input";
      return false;
    }
    s.masked[site] = reply->masked_input().masked_input();
  }
  return true;
}

// CONSISTENCY_CHECK: the split. {A, B} see {A, B, C}, {D, E} see {C, D, E}.
void SplitViewAttack::ShowSplitViews(Session& s, SplitViewResult* result) {
  for (const auto& [group, view] : {std::pair{kGroup1, kView1}, std::pair{kGroup2, kView2}}) {
    for (const std::string& site : group) {
      v1::SecAggServerMessage m3;
      m3.set_round(v1::SECAGG_CONSISTENCY_CHECK);
      for (const std::string& survivor : view) m3.mutable_survivor_list()->add_survivors(survivor);
      auto reply = Ask(site, 3, m3, result);
      if (reply.has_value()) s.signature[site] = reply->consistency().signature();
    }
  }
}

// UNMASKING: `group` is asked with the signatures on its own view, the colluder's included.
void SplitViewAttack::Unmask(Session& s, const std::vector<std::string>& group,
                             const std::vector<std::string>& view,
                             const std::vector<std::string>& dropped, SplitViewResult* result) {
  v1::SecAggServerMessage m4;
  m4.set_round(v1::SECAGG_UNMASKING);
  v1::UnmaskingRequest* request = m4.mutable_unmasking_request();
  for (const std::string& site : view) request->add_survivors(site);
  for (const std::string& site : dropped) request->add_dropped(site);
  for (const std::string& site : view) {
    v1::ConsistencySignature* sig = request->add_signatures();
    sig->set_client_id(site);
    sig->set_signature(site == kColluder ? *federation_->signer(kColluder).Sign(
                                               secagg::ConsistencySigningInput(s.session_id, view))
                                         : s.signature[site]);
  }
  for (const std::string& site : group) {
    auto reply = Ask(site, 4, m4, result);
    if (!reply.has_value()) continue;
    for (const v1::UnmaskingShare& share : reply->unmasking().shares()) {
      if (share.owner() != kTarget) continue;
      auto parsed = ShamirShare::Parse(share.share());
      if (!parsed.ok()) continue;
      (share.kind() == v1::UnmaskingShare::SELF_MASK_SEED ? s.a_seed : s.a_key).push_back(*parsed);
    }
  }
}

// The coordinator rebuilds A's secrets and strips A's masks from A's masked input.
std::optional<std::vector<double>> SplitViewAttack::StripMasks(const Session& s,
                                                               SplitViewResult* result) {
  const int t = static_cast<int>(s.threshold);
  auto seed = crypto::ShamirCombine(s.a_seed, t);
  auto key_bytes = crypto::ShamirCombine(s.a_key, t);
  if (!seed.ok() || !key_bytes.ok()) {
    result->stopped = "the shares did not combine";
    return std::nullopt;
  }
  auto a_mask = X25519PrivateKey::FromBytes(*key_bytes);
  if (!a_mask.ok() || a_mask->public_key().bytes() != s.ads.at(kTarget).mask_public_key()) {
    result->stopped = "the rebuilt mask key is not A's";
    return std::nullopt;
  }
  std::vector<uint32_t> words(s.setup.vector_words());
  secagg::internal::BytesToWords(s.masked.at(kTarget), words);
  MaskGenerator::Create(*secagg::SelfMaskKey(*seed, s.session_id, kTarget))->SubtractFrom(0, words);
  for (const auto& [peer, ad] : s.ads) {
    if (peer == kTarget) continue;
    auto shared = a_mask->Agree(*X25519PublicKey::FromBytes(ad.mask_public_key()));
    auto mask =
        MaskGenerator::Create(*secagg::PairwiseMaskKey(*shared, s.session_id, kTarget, peer));
    if (secagg::PairwiseMaskSign(kTarget, peer) > 0) {
      mask->SubtractFrom(0, words);
    } else {
      mask->AddTo(0, words);
    }
  }
  auto decoded = secagg::DecodeSum(words, s.setup.encoding());
  if (!decoded.ok()) {
    result->stopped = "the stripped vector did not decode";
    return std::nullopt;
  }
  return *decoded;
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
  for (const char* site : {"site-1", "site-2", "site-4", "site-5"}) {
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
  for (const char* site : {"site-1", "site-2", "site-4", "site-5"}) {
    auto it = result.declines.find(site);
    ASSERT_NE(it, result.declines.end()) << site << " released unmasking shares";
    EXPECT_EQ(it->second.reason(), v1::Decline::SECURE_AGGREGATION_ABORTED)
        << it->second.ShortDebugString();
  }
}

}  // namespace
}  // namespace tessera::attack
