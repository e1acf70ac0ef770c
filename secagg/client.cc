#include "secagg/client.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/crl.h"
#include "crypto/key_agreement.h"
#include "crypto/pki.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "secagg/internal/client_impl.h"
#include "secagg/internal/wire.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"

namespace tessera::secagg {

using crypto::AesGcm256;
using crypto::kShamirShareBytes;
using crypto::RandomBytes;
using crypto::RequireRole;
using crypto::Role;
using crypto::SecretBytes;
using crypto::ShamirShare;
using crypto::ShamirSplit;
using crypto::Verifier;
using crypto::VerifyCertificate;
using crypto::X25519PrivateKey;
using crypto::X25519PublicKey;
using internal::kDigestBytes;
using internal::SetupRefusal;
using internal::StrictlySorted;
namespace {

using internal::AppendField;

const char* MessageKindName(v1::SecAggServerMessage::MessageCase kind) {
  switch (kind) {
    case v1::SecAggServerMessage::kSetup:
      return "setup";
    case v1::SecAggServerMessage::kAdvertisements:
      return "advertisement list";
    case v1::SecAggServerMessage::kShareRelay:
      return "share relay";
    case v1::SecAggServerMessage::kSurvivorList:
      return "survivor list";
    case v1::SecAggServerMessage::kUnmaskingRequest:
      return "unmasking request";
    case v1::SecAggServerMessage::MESSAGE_NOT_SET:
      break;
  }
  return "empty message";
}

// The share plaintext: sender | receiver | mask-key share | seed share, length-prefixed.
SecretBytes SharePlaintext(const std::string& sender, const std::string& receiver,
                           const ShamirShare& key_share, const ShamirShare& seed_share) {
  std::string plaintext;
  // Reserved up front so that no reallocation leaves a copy of the shares behind unwiped.
  plaintext.reserve(4 * 4 + sender.size() + receiver.size() + 2 * kShamirShareBytes);
  AppendField(&plaintext, sender);
  AppendField(&plaintext, receiver);
  AppendField(&plaintext, key_share.Serialize().view());
  AppendField(&plaintext, seed_share.Serialize().view());
  return SecretBytes(std::move(plaintext));
}

}  // namespace

const char* ClientStateName(ClientState state) {
  switch (state) {
    case ClientState::kAdvertised:
      return "ADVERTISED";
    case ClientState::kSharesSent:
      return "SHARES_SENT";
    case ClientState::kMaskedInputSent:
      return "MASKED_INPUT_SENT";
    case ClientState::kConsistencySent:
      return "CONSISTENCY_SENT";
    case ClientState::kCompleted:
      return "COMPLETED";
    case ClientState::kAborted:
      return "ABORTED";
  }
  return "UNKNOWN";
}

std::optional<SetupRefusal> internal::CheckSetup(const std::string& client_id,
                                                 const ClientPolicy& policy,
                                                 const v1::SecAggSetup& setup) {
  auto refuse = [](v1::SecAggClientAbort reason, std::string detail) {
    return SetupRefusal{reason, std::move(detail)};
  };
  if (setup.protocol_version() != kProtocolVersion) {
    return refuse(v1::SECAGG_BAD_SETUP,
                  absl::StrCat("unknown protocol version ", setup.protocol_version()));
  }
  if (setup.session_nonce().size() != kSessionNonceBytes) {
    return refuse(v1::SECAGG_MALFORMED_MESSAGE,
                  absl::StrCat("session nonce must be ", kSessionNonceBytes, " bytes"));
  }
  if (setup.invited().empty() || !StrictlySorted(setup.invited())) {
    return refuse(v1::SECAGG_MALFORMED_MESSAGE,
                  "invited clients must be a non-empty, sorted list without repeats");
  }
  const uint32_t invited = static_cast<uint32_t>(setup.invited_size());
  if (!std::binary_search(setup.invited().begin(), setup.invited().end(), client_id)) {
    return refuse(v1::SECAGG_BAD_SETUP, "this client is not among the invited clients");
  }
  if (setup.threshold() > invited) {
    return refuse(v1::SECAGG_BAD_SETUP, absl::StrCat("threshold ", setup.threshold(),
                                                     " exceeds the ", invited, " invited clients"));
  }
  const uint32_t safe = SafeThreshold(invited, policy.assumed_colluders);
  if (setup.threshold() < safe) {
    return refuse(v1::SECAGG_BAD_SETUP,
                  absl::StrCat("threshold ", setup.threshold(), " is below the safe threshold ",
                               safe, " for ", invited, " invited clients (rule t >= ",
                               ThresholdRuleName(policy.assumed_colluders), ")"));
  }
  if (setup.threshold() < policy.min_threshold) {
    return refuse(v1::SECAGG_BAD_SETUP,
                  absl::StrCat("threshold ", setup.threshold(), " is below this site's minimum ",
                               "cohort ", policy.min_threshold, " (rule t >= min_threshold)"));
  }
  if (absl::Status valid = ValidateEncoding(setup.encoding(), invited); !valid.ok()) {
    return refuse(valid.code() == absl::StatusCode::kFailedPrecondition
                      ? v1::SECAGG_BAD_SETUP
                      : v1::SECAGG_MALFORMED_MESSAGE,
                  std::string(valid.message()));
  }
  if (EncodedWords(setup.encoding()) != setup.vector_words()) {
    return refuse(v1::SECAGG_MALFORMED_MESSAGE,
                  absl::StrCat("vector_words ", setup.vector_words(), " differs from the ",
                               EncodedWords(setup.encoding()), " words of the encoding"));
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<SecAggClient>> SecAggClient::Start(
    const ClientIdentity& identity, const ClientPolicy& policy, const v1::SecAggSetup& setup,
    std::vector<uint32_t> input, absl::Time now, v1::SecAggClientMessage* reply,
    v1::SecAggClientAbort* abort, const MaskingGraph* graph) {
  if (identity.signer == nullptr || reply == nullptr) {
    return absl::InvalidArgumentError("SecAggClient::Start needs a signer and a reply message");
  }
  if (std::optional<SetupRefusal> refusal = internal::CheckSetup(identity.client_id, policy, setup);
      refusal.has_value()) {
    if (abort != nullptr) *abort = refusal->reason;
    return absl::FailedPreconditionError(absl::StrCat("secure aggregation setup refused (",
                                                      v1::SecAggClientAbort_Name(refusal->reason),
                                                      "): ", refusal->detail));
  }
  if (input.size() != setup.vector_words()) {
    if (abort != nullptr) *abort = v1::SECAGG_MALFORMED_MESSAGE;
    return absl::InvalidArgumentError(absl::StrCat(
        "the input has ", input.size(), " words, the setup says ", setup.vector_words()));
  }

  auto impl = std::make_unique<Impl>();
  impl->identity = identity;
  impl->policy = policy;
  impl->setup = setup;
  impl->setup_digest = SetupDigest(setup);
  impl->now = now;
  impl->graph = graph != nullptr ? graph : &CompleteGraph();
  impl->input = std::move(input);
  ASSIGN_OR_RETURN(X25519PrivateKey channel_key, X25519PrivateKey::Generate());
  ASSIGN_OR_RETURN(X25519PrivateKey mask_key, X25519PrivateKey::Generate());
  ASSIGN_OR_RETURN(impl->seed, RandomBytes(kSelfMaskSeedBytes));

  v1::KeyAdvertisement& ad = impl->own_advertisement;
  ad.set_certificate(identity.certificate_pem);
  ad.set_channel_public_key(channel_key.public_key().bytes());
  ad.set_mask_public_key(mask_key.public_key().bytes());
  ad.set_setup_digest(impl->setup_digest);
  ASSIGN_OR_RETURN(std::string signature, identity.signer->Sign(AdvertisementSigningInput(
                                              impl->setup_digest, identity.client_id,
                                              ad.channel_public_key(), ad.mask_public_key())));
  ad.set_signature(std::move(signature));
  impl->channel_key.emplace(std::move(channel_key));
  impl->mask_key.emplace(std::move(mask_key));

  reply->Clear();
  *reply->mutable_advertisement() = ad;
  if (abort != nullptr) *abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  return std::unique_ptr<SecAggClient>(new SecAggClient(std::move(impl)));
}

SecAggClient::SecAggClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SecAggClient::~SecAggClient() = default;

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Handle(
    const v1::SecAggServerMessage& message) {
  return impl_->Handle(message);
}

ClientState SecAggClient::state() const { return impl_->state; }
v1::SecAggClientAbort SecAggClient::abort_reason() const { return impl_->abort_reason; }
const std::string& SecAggClient::abort_detail() const { return impl_->abort_detail; }
const std::string& SecAggClient::culprit() const { return impl_->culprit; }
const std::string& SecAggClient::session_id() const { return impl_->session_id; }

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::Handle(
    const v1::SecAggServerMessage& message) {
  if (state == ClientState::kAborted) {
    return absl::FailedPreconditionError(absl::StrCat("secure aggregation already aborted (",
                                                      v1::SecAggClientAbort_Name(abort_reason),
                                                      "): ", abort_detail));
  }
  const v1::SecAggServerMessage::MessageCase kind = message.message_case();
  if (state == ClientState::kCompleted && kind == v1::SecAggServerMessage::kUnmaskingRequest) {
    return Abort(v1::SECAGG_SECOND_UNMASKING_REQUEST,
                 "an unmasking request after this client already answered one");
  }
  // The one (round, message) pair each state accepts.
  v1::SecAggRound want_round = v1::SECAGG_ROUND_UNSPECIFIED;
  v1::SecAggServerMessage::MessageCase want_kind = v1::SecAggServerMessage::MESSAGE_NOT_SET;
  switch (state) {
    case ClientState::kAdvertised:
      want_round = v1::SECAGG_SHARE_KEYS;
      want_kind = v1::SecAggServerMessage::kAdvertisements;
      break;
    case ClientState::kSharesSent:
      want_round = v1::SECAGG_MASKED_INPUT;
      want_kind = v1::SecAggServerMessage::kShareRelay;
      break;
    case ClientState::kMaskedInputSent:
      want_round = v1::SECAGG_CONSISTENCY_CHECK;
      want_kind = v1::SecAggServerMessage::kSurvivorList;
      break;
    case ClientState::kConsistencySent:
      want_round = v1::SECAGG_UNMASKING;
      want_kind = v1::SecAggServerMessage::kUnmaskingRequest;
      break;
    case ClientState::kCompleted:
    case ClientState::kAborted:
      break;
  }
  if (kind != want_kind || message.round() != want_round ||
      want_kind == v1::SecAggServerMessage::MESSAGE_NOT_SET) {
    return Abort(
        v1::SECAGG_UNEXPECTED_MESSAGE,
        absl::StrCat("a ", MessageKindName(kind), " for round ",
                     v1::SecAggRound_Name(message.round()), " in state ", ClientStateName(state)));
  }
  switch (kind) {
    case v1::SecAggServerMessage::kAdvertisements:
      return OnAdvertisements(message.advertisements());
    case v1::SecAggServerMessage::kShareRelay:
      return OnShareRelay(message.share_relay());
    case v1::SecAggServerMessage::kSurvivorList:
      return OnSurvivors(message.survivor_list());
    case v1::SecAggServerMessage::kUnmaskingRequest:
      return OnUnmasking(message.unmasking_request());
    default:
      break;
  }
  return Abort(v1::SECAGG_UNEXPECTED_MESSAGE, "unreachable message kind");
}

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::OnAdvertisements(
    const v1::AdvertisementList& list) {
  const auto& listed = list.entries();
  for (int i = 0; i < listed.size(); ++i) {
    if (listed[i].client_id().empty() ||
        (i > 0 && !(listed[i - 1].client_id() < listed[i].client_id()))) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                   "the advertisement list is not sorted by client id or repeats a client");
    }
  }
  for (const v1::AdvertisementEntry& entry : listed) {
    if (!std::binary_search(setup.invited().begin(), setup.invited().end(), entry.client_id())) {
      return Abort(v1::SECAGG_NOT_A_SUBSET,
                   absl::StrCat("the advertisement list names ", entry.client_id(),
                                ", who was not invited"));
    }
  }
  if (static_cast<uint32_t>(listed.size()) < threshold()) {
    return Abort(v1::SECAGG_TOO_FEW_CLIENTS,
                 absl::StrCat(listed.size(), " advertisements, threshold ", threshold()));
  }

  // This client's own entry must be exactly what it sent.
  const v1::AdvertisementEntry* own = nullptr;
  for (const v1::AdvertisementEntry& entry : listed) {
    if (entry.client_id() == self()) own = &entry;
  }
  if (own == nullptr) {
    return Abort(v1::SECAGG_OWN_ADVERTISEMENT_ALTERED,
                 "this client's advertisement is missing from the list");
  }
  const v1::KeyAdvertisement& mine = own->advertisement();
  if (mine.certificate() != own_advertisement.certificate() ||
      mine.channel_public_key() != own_advertisement.channel_public_key() ||
      mine.mask_public_key() != own_advertisement.mask_public_key() ||
      mine.setup_digest() != own_advertisement.setup_digest() ||
      mine.signature() != own_advertisement.signature()) {
    return Abort(v1::SECAGG_OWN_ADVERTISEMENT_ALTERED,
                 "this client's advertisement in the list differs from the one it sent");
  }

  ASSIGN_OR_RETURN(std::vector<Peer> checked, CheckEntries(listed));
  std::set<std::string> keys;
  for (const Peer& peer : checked) {
    if (!keys.insert(peer.channel_key->bytes()).second ||
        !keys.insert(peer.mask_key->bytes()).second) {
      return Abort(v1::SECAGG_DUPLICATE_KEYS, absl::StrCat("the advertisement of ", peer.id,
                                                           " repeats a public key of the list"));
    }
  }
  entries.assign(listed.begin(), listed.end());
  return ShareKeys(std::move(checked));
}

absl::StatusOr<std::vector<SecAggClient::Impl::Peer>> SecAggClient::Impl::CheckEntries(
    const google::protobuf::RepeatedPtrField<v1::AdvertisementEntry>& listed) {
  // Every other entry: certificate of the federation CA naming that client, signature
  // over the setup it claims, and that setup being this session's.
  std::vector<Peer> checked;
  checked.reserve(listed.size());
  for (int i = 0; i < listed.size(); ++i) {
    const v1::AdvertisementEntry& entry = listed[i];
    const v1::KeyAdvertisement& ad = entry.advertisement();
    const std::string& id = entry.client_id();
    if (!X25519PublicKey::FromBytes(ad.channel_public_key()).ok() ||
        !X25519PublicKey::FromBytes(ad.mask_public_key()).ok() ||
        ad.setup_digest().size() != kDigestBytes) {
      return Abort(
          v1::SECAGG_MALFORMED_MESSAGE,
          absl::StrCat("the advertisement of ", id, " has keys or a digest of the wrong size"));
    }
    if (id != self()) {
      auto info = VerifyCertificate(ad.certificate(), identity.ca_cert_pem, now);
      if (!info.ok()) {
        return Abort(v1::SECAGG_UNTRUSTED_CERTIFICATE,
                     absl::StrCat("the certificate of ", id, ": ", info.status().message()));
      }
      if (info->node_id != id) {
        return Abort(
            v1::SECAGG_UNTRUSTED_CERTIFICATE,
            absl::StrCat("the entry for ", id, " carries a certificate for ", info->node_id));
      }
      if (absl::Status role = RequireRole(*info, Role::kInstitution); !role.ok()) {
        return Abort(v1::SECAGG_UNTRUSTED_CERTIFICATE, std::string(role.message()));
      }
      if (identity.revocations != nullptr) {
        if (auto entry = identity.revocations->Find(info->serial_hex)) {
          return Abort(v1::SECAGG_UNTRUSTED_CERTIFICATE,
                       absl::StrCat("the advertisement of ", id, " is refused: the ",
                                    crypto::DescribeRevocation(*info, *entry), " (CRL number ",
                                    identity.revocations->number(), ")"));
        }
      }
    }
    absl::StatusOr<Peer> peer = PeerFrom(entry, static_cast<uint32_t>(i + 1));
    if (!peer.ok()) {
      return Abort(v1::SECAGG_UNTRUSTED_CERTIFICATE,
                   absl::StrCat("the certificate of ", id, ": ", peer.status().message()));
    }
    if (id != self()) {
      if (!peer->verifier
               ->Verify(AdvertisementSigningInput(ad.setup_digest(), id, ad.channel_public_key(),
                                                  ad.mask_public_key()),
                        ad.signature())
               .ok()) {
        return Abort(
            v1::SECAGG_FORGED_ADVERTISEMENT,
            absl::StrCat("the advertisement of ", id, " is not signed by its certificate key"));
      }
      if (ad.setup_digest() != setup_digest) {
        return Abort(v1::SECAGG_REPLAYED_ADVERTISEMENT,
                     absl::StrCat("the advertisement of ", id, " was signed for another session"));
      }
    }
    checked.push_back(*std::move(peer));
  }
  return checked;
}

absl::StatusOr<SecAggClient::Impl::Peer> SecAggClient::Impl::PeerFrom(
    const v1::AdvertisementEntry& entry, uint32_t point) const {
  const v1::KeyAdvertisement& ad = entry.advertisement();
  Peer peer;
  peer.id = entry.client_id();
  peer.point = point;
  ASSIGN_OR_RETURN(X25519PublicKey channel, X25519PublicKey::FromBytes(ad.channel_public_key()));
  ASSIGN_OR_RETURN(X25519PublicKey mask, X25519PublicKey::FromBytes(ad.mask_public_key()));
  peer.channel_key.emplace(std::move(channel));
  peer.mask_key.emplace(std::move(mask));
  if (peer.id != self()) {
    ASSIGN_OR_RETURN(Verifier verifier, Verifier::Create(ad.certificate()));
    peer.verifier.emplace(std::move(verifier));
  }
  return peer;
}

void SecAggClient::Impl::SetPeers(std::vector<Peer> checked) {
  peers = std::move(checked);
  peer_index.clear();
  for (size_t i = 0; i < peers.size(); ++i) peer_index[peers[i].id] = i;
}

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::ShareKeys(std::vector<Peer> checked) {
  SetPeers(std::move(checked));
  session_id = SessionId(setup_digest, entries);
  const Peer& me = peers[peer_index.at(self())];

  const int n = static_cast<int>(peers.size());
  ASSIGN_OR_RETURN(std::vector<ShamirShare> key_shares,
                   ShamirSplit(mask_key->bytes(), static_cast<int>(threshold()), n));
  ASSIGN_OR_RETURN(std::vector<ShamirShare> seed_shares,
                   ShamirSplit(seed, static_cast<int>(threshold()), n));

  v1::SecAggClientMessage reply;
  v1::ShareKeysResponse* response = reply.mutable_share_keys();
  for (size_t i = 0; i < peers.size(); ++i) {
    const Peer& peer = peers[i];
    if (peer.id == self()) continue;
    auto channel = Channel(peer);
    if (!channel.ok()) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE, absl::StrCat("no share channel with ", peer.id,
                                                              ": ", channel.status().message()));
    }
    const SecretBytes plaintext = SharePlaintext(self(), peer.id, key_shares[i], seed_shares[i]);
    ASSIGN_OR_RETURN(
        std::string ciphertext,
        channel->Encrypt(plaintext.view(), ShareAssociatedData(session_id, self(), peer.id)));
    v1::EncryptedShare* share = response->add_shares();
    share->set_sender(self());
    share->set_receiver(peer.id);
    share->set_ciphertext(std::move(ciphertext));
  }
  HeldShares& kept = held[self()];
  kept.mask_key = key_shares[me.point - 1];
  kept.seed = seed_shares[me.point - 1];
  response->set_self_mask_commitment(SelfMaskCommitment(session_id, self(), seed));
  state = ClientState::kSharesSent;
  return reply;
}

}  // namespace tessera::secagg
