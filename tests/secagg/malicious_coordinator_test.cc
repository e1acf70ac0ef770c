// A cheating coordinator is caught: each test tampers with what the server sends one
// client (the victim), and the victim aborts with the reason that names the cheat, before
// it releases anything the cheat was after.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "crypto/key_agreement.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "secagg/client.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {

using crypto::Role;
using crypto::Signer;
using crypto::X25519PrivateKey;
namespace {

using ::tessera::testing::StatusIs;
using testing::Federation;
using testing::FederationSuite;
using testing::MakeSetup;
using testing::Party;
using testing::Session;
using testing::SessionOptions;
using testing::TestWords;

constexpr uint32_t kWords = 64;
constexpr uint32_t kThreshold = 4;

using Tamper = std::function<void(v1::SecAggServerMessage&)>;

class MaliciousCoordinatorTest : public FederationSuite<5> {
 protected:
  void SetUp() override {
    ids_ = federation_->ids();
    victim_ = ids_[0];
    setup_ = MakeSetup(ids_, kThreshold, kWords);
    for (size_t i = 0; i < ids_.size(); ++i) inputs_[ids_[i]] = TestWords(i + 1, kWords);
  }

  // Runs the session with `tamper` applied to the victim's message of `round`.
  std::unique_ptr<Session> RunWith(v1::SecAggRound round, const Tamper& tamper,
                                   SessionOptions options = {}) {
    options.to_client = [this, round, tamper](v1::SecAggRound r, const std::string& recipient,
                                              v1::SecAggServerMessage& message) {
      if (r == round && recipient == victim_) tamper(message);
    };
    auto session = std::make_unique<Session>(*federation_, setup_, inputs_, options);
    EXPECT_OK(session->Init());
    current_ = session.get();
    session->Run();
    current_ = nullptr;
    return session;
  }

  // The victim aborted with `reason`, and sent nothing for `round` or later.
  void ExpectCaught(Session& session, v1::SecAggClientAbort reason, v1::SecAggRound round) {
    SecAggClient* client = session.client(victim_);
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->state(), ClientState::kAborted);
    EXPECT_EQ(client->abort_reason(), reason)
        << v1::SecAggClientAbort_Name(client->abort_reason()) << ": " << client->abort_detail();
    EXPECT_FALSE(client->abort_detail().empty());
    for (int r = round; r <= v1::SECAGG_UNMASKING; ++r) {
      auto sent = session.sent().find(static_cast<v1::SecAggRound>(r));
      if (sent != session.sent().end()) {
        EXPECT_FALSE(sent->second.contains(victim_)) << r;
      }
    }
    // The server recorded the victim's abort as a drop.
    bool recorded = false;
    for (const ClientDrop& drop : session.server().drops()) {
      recorded |= drop.client_id == victim_ && drop.reason == v1::SECAGG_DROP_CLIENT_ABORTED;
    }
    EXPECT_TRUE(recorded);
  }

  static v1::KeyAdvertisement* Entry(v1::SecAggServerMessage& message, const std::string& id) {
    for (v1::AdvertisementEntry& entry : *message.mutable_advertisements()->mutable_entries()) {
      if (entry.client_id() == id) return entry.mutable_advertisement();
    }
    ADD_FAILURE() << "no entry for " << id;
    return nullptr;
  }

  static void Resign(v1::KeyAdvertisement* ad, const std::string& id, const Signer& signer) {
    auto signature = signer.Sign(AdvertisementSigningInput(
        ad->setup_digest(), id, ad->channel_public_key(), ad->mask_public_key()));
    ASSERT_TRUE(signature.ok());
    ad->set_signature(*signature);
  }

  // A genuine advertisement of `identity` for `setup`.
  static v1::KeyAdvertisement Advertise(const ClientIdentity& identity,
                                        const v1::SecAggSetup& setup) {
    v1::SecAggClientMessage reply;
    auto client = SecAggClient::Start(identity, ClientPolicy(), setup,
                                      std::vector<uint32_t>(setup.vector_words()), absl::Now(),
                                      &reply, nullptr);
    EXPECT_TRUE(client.ok()) << client.status();
    return reply.advertisement();
  }

  std::vector<std::string> ids_;
  std::string victim_;
  v1::SecAggSetup setup_;
  std::map<std::string, std::vector<uint32_t>> inputs_;
  Session* current_ = nullptr;  // the session RunWith is running
};

TEST_F(MaliciousCoordinatorTest, HonestRunCompletes) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [](v1::SecAggServerMessage&) {});
  ASSERT_EQ(session->server().state(), ServerState::kCompleted);
  EXPECT_EQ(session->server().sum(), session->ExpectedSum(ids_));
  EXPECT_TRUE(session->aborted_clients().empty());
}

// ---- advertisements ----

TEST_F(MaliciousCoordinatorTest, KeySwappedAfterSigningIsAForgedAdvertisement) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    auto key = X25519PrivateKey::Generate();
    ASSERT_TRUE(key.ok());
    Entry(message, ids_[1])->set_mask_public_key(key->public_key().bytes());
  });
  ExpectCaught(*session, v1::SECAGG_FORGED_ADVERTISEMENT, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, SignatureByAnotherKeyIsAForgedAdvertisement) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    // ids[2] signs what ids[1] should have signed.
    Resign(Entry(message, ids_[1]), ids_[1], *federation_->party(ids_[2]).signer);
  });
  ExpectCaught(*session, v1::SECAGG_FORGED_ADVERTISEMENT, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, GenuineAdvertisementFromAnotherSessionIsAReplay) {
  // ids[1]'s real advertisement for another session of the same cohort (another nonce).
  const v1::SecAggSetup other = MakeSetup(ids_, kThreshold, kWords);
  const v1::KeyAdvertisement replayed = Advertise(federation_->Identity(ids_[1]), other);
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    *Entry(message, ids_[1]) = replayed;
  });
  ExpectCaught(*session, v1::SECAGG_REPLAYED_ADVERTISEMENT, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, GenuineAdvertisementFromAnotherRoundIsAReplay) {
  v1::SecAggSetup other = setup_;
  other.set_round(setup_.round() + 1);  // same nonce, another round
  const v1::KeyAdvertisement replayed = Advertise(federation_->Identity(ids_[1]), other);
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    *Entry(message, ids_[1]) = replayed;
  });
  ExpectCaught(*session, v1::SECAGG_REPLAYED_ADVERTISEMENT, v1::SECAGG_SHARE_KEYS);
}

// The coordinator shows the victim a setup that differs in one field from everybody
// else's (another model, spec, N or standardisation) and lists its advertisement for the
// others anyway: they see an advertisement signed for another session, and so does the
// victim when it is shown their list.
class SetupFieldTest : public MaliciousCoordinatorTest,
                       public ::testing::WithParamInterface<const char*> {
 protected:
  static void Change(const std::string& field, v1::SecAggSetup& setup) {
    if (field == "model_hash") setup.set_model_hash(std::string(32, 'x'));
    if (field == "spec_hash") setup.set_spec_hash(std::string(32, 'y'));
    if (field == "pooled_rows") setup.set_pooled_rows(setup.pooled_rows() + 1);
    if (field == "standardization_hash") setup.set_standardization_hash(std::string(32, 'z'));
  }
};

TEST_P(SetupFieldTest, DifferentSetupsForDifferentClientsBreakTheSession) {
  const std::string field = GetParam();
  setup_.set_spec_hash(std::string(32, 's'));
  setup_.set_pooled_rows(1234);
  setup_.set_standardization_hash(std::string(32, 'h'));
  v1::SecAggSetup other = setup_;
  Change(field, other);
  ASSERT_NE(SetupDigest(other), SetupDigest(setup_));

  SessionOptions options;
  v1::KeyAdvertisement victim_ad;
  options.to_client = [&](v1::SecAggRound round, const std::string& recipient,
                          v1::SecAggServerMessage& message) {
    if (round == v1::SECAGG_ADVERTISE_KEYS && recipient == victim_) {
      *message.mutable_setup() = other;
    }
    if (round == v1::SECAGG_SHARE_KEYS && recipient != victim_ && !victim_ad.signature().empty()) {
      auto* entries = message.mutable_advertisements()->mutable_entries();
      v1::AdvertisementEntry entry;
      entry.set_client_id(victim_);
      *entry.mutable_advertisement() = victim_ad;
      entries->Add(std::move(entry));
      std::sort(entries->begin(), entries->end(),
                [](const auto& a, const auto& b) { return a.client_id() < b.client_id(); });
    }
  };
  options.to_server = [&](v1::SecAggRound round, const std::string& sender,
                          v1::SecAggClientMessage& message) {
    if (round == v1::SECAGG_ADVERTISE_KEYS && sender == victim_) {
      victim_ad = message.advertisement();
    }
  };
  Session session(*federation_, setup_, inputs_, options);
  ASSERT_OK(session.Init());
  session.Run();
  EXPECT_EQ(victim_ad.setup_digest(), SetupDigest(other));
  for (size_t i = 1; i < ids_.size(); ++i) {
    EXPECT_EQ(session.client_abort(ids_[i]), v1::SECAGG_REPLAYED_ADVERTISEMENT) << ids_[i];
  }
  EXPECT_EQ(session.server().state(), ServerState::kAborted);
  // The server refused the victim's advertisement (signed over another setup); shown the
  // others' list, the victim finds their advertisements signed for another session.
  SecAggClient* victim = session.client(victim_);
  ASSERT_NE(victim, nullptr);
  ASSERT_EQ(victim->state(), ClientState::kAdvertised);
  const v1::SecAggServerMessage list = session.delivered().at(v1::SECAGG_SHARE_KEYS).at(ids_[1]);
  EXPECT_THAT(victim->Handle(list), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(victim->abort_reason(), v1::SECAGG_REPLAYED_ADVERTISEMENT) << victim->abort_detail();
}

INSTANTIATE_TEST_SUITE_P(Fields, SetupFieldTest,
                         ::testing::Values("model_hash", "spec_hash", "pooled_rows",
                                           "standardization_hash"),
                         [](const auto& info) { return std::string(info.param); });

TEST_F(MaliciousCoordinatorTest, ForeignCaCertificateIsUntrusted) {
  ASSERT_OK_AND_ASSIGN(Party foreign,
                       federation_->Issue(ids_[1], Role::kInstitution, /*foreign=*/true));
  const v1::KeyAdvertisement fake = Advertise(foreign.Identity(federation_->ca_cert_pem()), setup_);
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    *Entry(message, ids_[1]) = fake;
  });
  ExpectCaught(*session, v1::SECAGG_UNTRUSTED_CERTIFICATE, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, CertificateNamingAnotherClientIsUntrusted) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    // ids[2]'s genuine, validly signed advertisement listed as ids[1]'s.
    *Entry(message, ids_[1]) = *Entry(message, ids_[2]);
  });
  ExpectCaught(*session, v1::SECAGG_UNTRUSTED_CERTIFICATE, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, CertificateWithoutTheInstitutionRoleIsUntrusted) {
  ASSERT_OK_AND_ASSIGN(Party op, federation_->Issue(ids_[1], Role::kOperator));
  const v1::KeyAdvertisement fake = Advertise(op.Identity(federation_->ca_cert_pem()), setup_);
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    *Entry(message, ids_[1]) = fake;
  });
  ExpectCaught(*session, v1::SECAGG_UNTRUSTED_CERTIFICATE, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, RepeatedPublicKeyIsCaught) {
  // ids[2] colludes: it advertises ids[1]'s mask key under its own valid signature.
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    v1::KeyAdvertisement* ad = Entry(message, ids_[2]);
    ad->set_mask_public_key(Entry(message, ids_[1])->mask_public_key());
    Resign(ad, ids_[2], *federation_->party(ids_[2]).signer);
  });
  ExpectCaught(*session, v1::SECAGG_DUPLICATE_KEYS, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, AlteredOwnAdvertisementIsCaught) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    auto key = X25519PrivateKey::Generate();
    ASSERT_TRUE(key.ok());
    Entry(message, victim_)->set_channel_public_key(key->public_key().bytes());
  });
  ExpectCaught(*session, v1::SECAGG_OWN_ADVERTISEMENT_ALTERED, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, MissingOwnAdvertisementIsCaught) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    auto* entries = message.mutable_advertisements()->mutable_entries();
    entries->erase(entries->begin());  // the victim sorts first
  });
  ExpectCaught(*session, v1::SECAGG_OWN_ADVERTISEMENT_ALTERED, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, UninvitedAdvertisementIsNotASubset) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    v1::AdvertisementEntry* entry = message.mutable_advertisements()->add_entries();
    entry->set_client_id("zz-stranger");
    *entry->mutable_advertisement() = *Entry(message, ids_[1]);
  });
  ExpectCaught(*session, v1::SECAGG_NOT_A_SUBSET, v1::SECAGG_SHARE_KEYS);
}

TEST_F(MaliciousCoordinatorTest, AdvertisementListBelowThresholdIsCaught) {
  auto session = RunWith(v1::SECAGG_SHARE_KEYS, [&](v1::SecAggServerMessage& message) {
    message.mutable_advertisements()->mutable_entries()->DeleteSubrange(1, 3);
  });
  ExpectCaught(*session, v1::SECAGG_TOO_FEW_CLIENTS, v1::SECAGG_SHARE_KEYS);
}

// ---- shares ----

TEST_F(MaliciousCoordinatorTest, SwappedSenderLabelsAreARelabelledCiphertext) {
  auto session = RunWith(v1::SECAGG_MASKED_INPUT, [&](v1::SecAggServerMessage& message) {
    auto* shares = message.mutable_share_relay()->mutable_shares();
    ASSERT_GE(shares->size(), 2);
    const std::string first = shares->Get(0).sender();
    shares->Mutable(0)->set_sender(shares->Get(1).sender());
    shares->Mutable(1)->set_sender(first);
  });
  ExpectCaught(*session, v1::SECAGG_RELABELLED_CIPHERTEXT, v1::SECAGG_MASKED_INPUT);
}

TEST_F(MaliciousCoordinatorTest, ShareForAnotherReceiverIsARelabelledCiphertext) {
  auto session = RunWith(v1::SECAGG_MASKED_INPUT, [&](v1::SecAggServerMessage& message) {
    message.mutable_share_relay()->mutable_shares(0)->set_receiver(ids_[3]);
  });
  ExpectCaught(*session, v1::SECAGG_RELABELLED_CIPHERTEXT, v1::SECAGG_MASKED_INPUT);
}

TEST_F(MaliciousCoordinatorTest, FlippedCiphertextByteIsACorruptedShare) {
  auto session = RunWith(v1::SECAGG_MASKED_INPUT, [&](v1::SecAggServerMessage& message) {
    std::string* ciphertext =
        message.mutable_share_relay()->mutable_shares(1)->mutable_ciphertext();
    (*ciphertext)[ciphertext->size() / 2] ^= 0x01;
  });
  ExpectCaught(*session, v1::SECAGG_CORRUPTED_SHARE, v1::SECAGG_MASKED_INPUT);
}

TEST_F(MaliciousCoordinatorTest, ShareHolderNeverAdvertisedIsNotASubset) {
  auto session = RunWith(v1::SECAGG_MASKED_INPUT, [&](v1::SecAggServerMessage& message) {
    message.mutable_share_relay()->add_share_holders("zz-stranger");
  });
  ExpectCaught(*session, v1::SECAGG_NOT_A_SUBSET, v1::SECAGG_MASKED_INPUT);
}

// ---- survivors and consistency ----

TEST_F(MaliciousCoordinatorTest, SurvivorSetBelowThresholdIsCaught) {
  auto session = RunWith(v1::SECAGG_CONSISTENCY_CHECK, [&](v1::SecAggServerMessage& message) {
    auto* survivors = message.mutable_survivor_list()->mutable_survivors();
    survivors->Clear();
    survivors->Add(std::string(ids_[0]));
    survivors->Add(std::string(ids_[1]));
    survivors->Add(std::string(ids_[2]));  // three, threshold four
  });
  ExpectCaught(*session, v1::SECAGG_TOO_FEW_CLIENTS, v1::SECAGG_CONSISTENCY_CHECK);
}

TEST_F(MaliciousCoordinatorTest, SurvivorOutsideTheShareHoldersIsNotASubset) {
  // ids[4] advertised but never shared its keys; the coordinator claims it survived.
  SessionOptions options;
  options.stop_at[ids_[4]] = v1::SECAGG_SHARE_KEYS;
  auto session = RunWith(
      v1::SECAGG_CONSISTENCY_CHECK,
      [&](v1::SecAggServerMessage& message) {
        message.mutable_survivor_list()->add_survivors(ids_[4]);
      },
      options);
  ExpectCaught(*session, v1::SECAGG_NOT_A_SUBSET, v1::SECAGG_CONSISTENCY_CHECK);
}

TEST_F(MaliciousCoordinatorTest, SignaturesOnAnotherSurvivorSetAreMismatched) {
  auto session = RunWith(v1::SECAGG_UNMASKING, [&](v1::SecAggServerMessage& message) {
    // Every survivor really signed, but over another set (the survivors without ids[4]).
    v1::UnmaskingRequest* request = message.mutable_unmasking_request();
    const std::vector<std::string> other(ids_.begin(), ids_.end() - 1);
    const std::string& session_id = current_->client(victim_)->session_id();
    for (v1::ConsistencySignature& signature : *request->mutable_signatures()) {
      auto forged = federation_->party(signature.client_id())
                        .signer->Sign(ConsistencySigningInput(session_id, other));
      ASSERT_TRUE(forged.ok());
      signature.set_signature(*forged);
    }
  });
  ExpectCaught(*session, v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES, v1::SECAGG_UNMASKING);
}

TEST_F(MaliciousCoordinatorTest, TooFewValidSignaturesAreMismatched) {
  auto session = RunWith(v1::SECAGG_UNMASKING, [&](v1::SecAggServerMessage& message) {
    auto* signatures = message.mutable_unmasking_request()->mutable_signatures();
    // Three signatures left, and the first repeated: still three distinct signers.
    signatures->DeleteSubrange(3, signatures->size() - 3);
    *signatures->Add() = signatures->Get(0);
  });
  ExpectCaught(*session, v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES, v1::SECAGG_UNMASKING);
}

TEST_F(MaliciousCoordinatorTest, DamagedSignaturesAreMismatched) {
  auto session = RunWith(v1::SECAGG_UNMASKING, [&](v1::SecAggServerMessage& message) {
    auto* signatures = message.mutable_unmasking_request()->mutable_signatures();
    for (int i = 0; i < 2; ++i) (*signatures->Mutable(i)->mutable_signature())[8] ^= 1;
  });
  ExpectCaught(*session, v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES, v1::SECAGG_UNMASKING);
}

TEST_F(MaliciousCoordinatorTest, SurvivorSetChangedBeforeUnmaskingIsCaught) {
  // ids[4] signed and survived; the coordinator now calls it dropped, to learn its mask
  // key while holding its masked input.
  auto session = RunWith(v1::SECAGG_UNMASKING, [&](v1::SecAggServerMessage& message) {
    v1::UnmaskingRequest* request = message.mutable_unmasking_request();
    request->mutable_survivors()->RemoveLast();
    request->add_dropped(ids_[4]);
  });
  ExpectCaught(*session, v1::SECAGG_SURVIVOR_SET_CHANGED, v1::SECAGG_UNMASKING);
}

TEST_F(MaliciousCoordinatorTest, ClientBothAliveAndDroppedIsCaught) {
  // Asking for ids[3]'s self-mask seed and its mask key would unmask its input.
  auto session = RunWith(v1::SECAGG_UNMASKING, [&](v1::SecAggServerMessage& message) {
    message.mutable_unmasking_request()->add_dropped(ids_[3]);
  });
  ExpectCaught(*session, v1::SECAGG_ALIVE_DROPPED_OVERLAP, v1::SECAGG_UNMASKING);
}

TEST_F(MaliciousCoordinatorTest, SecondUnmaskingRequestIsCaught) {
  auto session = RunWith(v1::SECAGG_UNMASKING, [](v1::SecAggServerMessage&) {});
  ASSERT_EQ(session->server().state(), ServerState::kCompleted);
  SecAggClient* client = session->client(victim_);
  ASSERT_EQ(client->state(), ClientState::kCompleted);
  const v1::SecAggServerMessage again = session->delivered().at(v1::SECAGG_UNMASKING).at(victim_);
  EXPECT_THAT(client->Handle(again), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(client->state(), ClientState::kAborted);
  EXPECT_EQ(client->abort_reason(), v1::SECAGG_SECOND_UNMASKING_REQUEST);
}

}  // namespace
}  // namespace tessera::secagg
