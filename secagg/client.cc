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
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/pki.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "secagg/internal/wire.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"

namespace tessera::secagg {

using crypto::AesGcm256;
using crypto::kShamirShareBytes;
using crypto::MaskGenerator;
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
namespace {

using internal::AppendField;
using internal::FieldReader;

constexpr size_t kDigestBytes = 32;

bool StrictlySorted(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) return false;
    if (i > 0 && !(ids[i - 1] < ids[i])) return false;
  }
  return true;
}

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

struct SecAggClient::Impl {
  // A client of the advertisement list, as this client checked it.
  struct Peer {
    std::string id;
    uint32_t point = 0;  // Shamir x: 1-based position in the list
    std::optional<X25519PublicKey> channel_key;
    std::optional<X25519PublicKey> mask_key;
    std::optional<Verifier> verifier;  // unset for this client itself
  };
  // The shares another client sent this one (or this client kept of its own secrets).
  struct HeldShares {
    ShamirShare mask_key;
    ShamirShare seed;
  };

  ClientIdentity identity;
  ClientPolicy policy;
  v1::SecAggSetup setup;
  std::string setup_digest;
  absl::Time now;
  const MaskingGraph* graph = nullptr;

  ClientState state = ClientState::kAdvertised;
  v1::SecAggClientAbort abort_reason = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  std::string abort_detail;

  // Secrets: wiped by WipeSecrets() on completion, abort and destruction.
  std::vector<uint32_t> input;
  std::optional<X25519PrivateKey> channel_key;
  std::optional<X25519PrivateKey> mask_key;
  SecretBytes seed;
  std::map<std::string, HeldShares> held;  // by owner, this client included

  v1::KeyAdvertisement own_advertisement;
  std::string session_id;
  std::vector<Peer> peers;  // in advertisement-list order
  std::map<std::string, size_t> peer_index;
  std::vector<std::string> share_holders;
  std::vector<std::string> signed_survivors;

  ~Impl() { WipeSecrets(); }

  const std::string& self() const { return identity.client_id; }
  uint32_t threshold() const { return setup.threshold(); }

  void WipeSecrets() {
    std::fill(input.begin(), input.end(), 0u);
    input.clear();
    channel_key.reset();
    mask_key.reset();
    seed = SecretBytes();
    held.clear();
  }

  absl::Status Abort(v1::SecAggClientAbort reason, std::string detail) {
    state = ClientState::kAborted;
    abort_reason = reason;
    abort_detail = std::move(detail);
    WipeSecrets();
    return absl::FailedPreconditionError(absl::StrCat(
        "secure aggregation aborted (", v1::SecAggClientAbort_Name(reason), "): ", abort_detail));
  }

  absl::StatusOr<v1::SecAggClientMessage> Handle(const v1::SecAggServerMessage& message);
  absl::StatusOr<v1::SecAggClientMessage> OnAdvertisements(const v1::AdvertisementList& list);
  absl::StatusOr<v1::SecAggClientMessage> OnShareRelay(const v1::ShareRelay& relay);
  absl::StatusOr<v1::SecAggClientMessage> OnSurvivors(const v1::SurvivorList& list);
  absl::StatusOr<v1::SecAggClientMessage> OnUnmasking(const v1::UnmaskingRequest& request);

  // The share channel with `peer` (an entry of the list other than this client).
  absl::StatusOr<AesGcm256> Channel(const Peer& peer) const;
  // The plaintext of a share ciphertext from `sender` to this client, or an error if it
  // does not authenticate.
  absl::StatusOr<SecretBytes> OpenShare(const Peer& sender, const std::string& ciphertext) const;
};

absl::StatusOr<std::unique_ptr<SecAggClient>> SecAggClient::Start(
    const ClientIdentity& identity, const ClientPolicy& policy, const v1::SecAggSetup& setup,
    std::vector<uint32_t> input, absl::Time now, v1::SecAggClientMessage* reply,
    v1::SecAggClientAbort* abort, const MaskingGraph* graph) {
  auto refuse = [abort](v1::SecAggClientAbort reason, const std::string& detail) {
    if (abort != nullptr) *abort = reason;
    return absl::FailedPreconditionError(absl::StrCat(
        "secure aggregation setup refused (", v1::SecAggClientAbort_Name(reason), "): ", detail));
  };
  if (identity.signer == nullptr || reply == nullptr) {
    return absl::InvalidArgumentError("SecAggClient::Start needs a signer and a reply message");
  }
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
  if (!std::binary_search(setup.invited().begin(), setup.invited().end(), identity.client_id)) {
    return refuse(v1::SECAGG_BAD_SETUP, "this client is not among the invited clients");
  }
  if (setup.threshold() > invited) {
    return refuse(v1::SECAGG_BAD_SETUP, absl::StrCat("threshold ", setup.threshold(),
                                                     " exceeds the ", invited, " invited clients"));
  }
  const uint32_t minimum = std::max(MinimumSafeThreshold(invited), policy.min_threshold);
  if (setup.threshold() < minimum) {
    return refuse(v1::SECAGG_BAD_SETUP,
                  absl::StrCat("threshold ", setup.threshold(), " is below this client's minimum ",
                               minimum, " for ", invited, " invited clients"));
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
  const auto& entries = list.entries();
  for (int i = 0; i < entries.size(); ++i) {
    if (entries[i].client_id().empty() ||
        (i > 0 && !(entries[i - 1].client_id() < entries[i].client_id()))) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                   "the advertisement list is not sorted by client id or repeats a client");
    }
  }
  for (const v1::AdvertisementEntry& entry : entries) {
    if (!std::binary_search(setup.invited().begin(), setup.invited().end(), entry.client_id())) {
      return Abort(v1::SECAGG_NOT_A_SUBSET,
                   absl::StrCat("the advertisement list names ", entry.client_id(),
                                ", who was not invited"));
    }
  }
  if (static_cast<uint32_t>(entries.size()) < threshold()) {
    return Abort(v1::SECAGG_TOO_FEW_CLIENTS,
                 absl::StrCat(entries.size(), " advertisements, threshold ", threshold()));
  }

  // This client's own entry must be exactly what it sent.
  const v1::AdvertisementEntry* own = nullptr;
  for (const v1::AdvertisementEntry& entry : entries) {
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

  // Every other entry: certificate of the federation CA naming that client, signature
  // over the setup it claims, and that setup being this session's.
  std::vector<Peer> checked;
  checked.reserve(entries.size());
  for (int i = 0; i < entries.size(); ++i) {
    const v1::AdvertisementEntry& entry = entries[i];
    const v1::KeyAdvertisement& ad = entry.advertisement();
    const std::string& id = entry.client_id();
    Peer peer;
    peer.id = id;
    peer.point = static_cast<uint32_t>(i + 1);
    auto channel = X25519PublicKey::FromBytes(ad.channel_public_key());
    auto mask = X25519PublicKey::FromBytes(ad.mask_public_key());
    if (!channel.ok() || !mask.ok() || ad.setup_digest().size() != kDigestBytes) {
      return Abort(
          v1::SECAGG_MALFORMED_MESSAGE,
          absl::StrCat("the advertisement of ", id, " has keys or a digest of the wrong size"));
    }
    peer.channel_key.emplace(*std::move(channel));
    peer.mask_key.emplace(*std::move(mask));
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
      auto verifier = Verifier::Create(ad.certificate());
      if (!verifier.ok()) {
        return Abort(v1::SECAGG_UNTRUSTED_CERTIFICATE,
                     absl::StrCat("the certificate of ", id, ": ", verifier.status().message()));
      }
      if (!verifier
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
      peer.verifier.emplace(*std::move(verifier));
    }
    checked.push_back(std::move(peer));
  }

  std::set<std::string> keys;
  for (const Peer& peer : checked) {
    if (!keys.insert(peer.channel_key->bytes()).second ||
        !keys.insert(peer.mask_key->bytes()).second) {
      return Abort(v1::SECAGG_DUPLICATE_KEYS, absl::StrCat("the advertisement of ", peer.id,
                                                           " repeats a public key of the list"));
    }
  }

  peers = std::move(checked);
  for (size_t i = 0; i < peers.size(); ++i) peer_index[peers[i].id] = i;
  // SessionId takes a contiguous span; a RepeatedPtrField is not one.
  const std::vector<v1::AdvertisementEntry> entry_copies(entries.begin(), entries.end());
  session_id = SessionId(setup_digest, entry_copies);
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

absl::StatusOr<AesGcm256> SecAggClient::Impl::Channel(const Peer& peer) const {
  ASSIGN_OR_RETURN(SecretBytes shared, channel_key->Agree(*peer.channel_key));
  ASSIGN_OR_RETURN(SecretBytes key, ShareChannelKey(shared, session_id, self(), peer.id));
  return AesGcm256::Create(std::move(key));
}

absl::StatusOr<SecretBytes> SecAggClient::Impl::OpenShare(const Peer& sender,
                                                          const std::string& ciphertext) const {
  ASSIGN_OR_RETURN(AesGcm256 channel, Channel(sender));
  return channel.Decrypt(ciphertext, ShareAssociatedData(session_id, sender.id, self()));
}

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::OnShareRelay(
    const v1::ShareRelay& relay) {
  const auto& holders = relay.share_holders();
  if (!StrictlySorted(holders)) {
    return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                 "the share holders are not sorted or repeat a client");
  }
  for (const std::string& id : holders) {
    if (!peer_index.contains(id)) {
      return Abort(v1::SECAGG_NOT_A_SUBSET,
                   absl::StrCat("share holder ", id, " is not in the advertisement list"));
    }
  }
  if (!std::binary_search(holders.begin(), holders.end(), self())) {
    return Abort(v1::SECAGG_MALFORMED_MESSAGE, "this client is not among the share holders");
  }
  if (static_cast<uint32_t>(holders.size()) < threshold()) {
    return Abort(v1::SECAGG_TOO_FEW_CLIENTS,
                 absl::StrCat(holders.size(), " share holders, threshold ", threshold()));
  }

  // Routing labels first: every share addressed to this client, from a share holder.
  std::map<std::string, const v1::EncryptedShare*> by_sender;
  for (const v1::EncryptedShare& share : relay.shares()) {
    if (share.receiver() != self()) {
      return Abort(
          v1::SECAGG_RELABELLED_CIPHERTEXT,
          absl::StrCat("a share from ", share.sender(), " is addressed to ", share.receiver()));
    }
    if (share.sender() == self() ||
        !std::binary_search(holders.begin(), holders.end(), share.sender())) {
      return Abort(v1::SECAGG_RELABELLED_CIPHERTEXT,
                   absl::StrCat("a share claims to come from ", share.sender(),
                                ", who is not another share holder"));
    }
    if (!by_sender.emplace(share.sender(), &share).second) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE, absl::StrCat("two shares from ", share.sender()));
    }
  }
  for (const std::string& id : holders) {
    if (id != self() && !by_sender.contains(id)) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE, absl::StrCat("no share from ", id));
    }
  }

  // Then every share must authenticate as from its claimed sender to this client, before
  // the masked input leaves.
  const uint32_t my_point = peers[peer_index.at(self())].point;
  for (const auto& [sender_id, share] : by_sender) {
    const Peer& sender = peers[peer_index.at(sender_id)];
    auto plaintext = OpenShare(sender, share->ciphertext());
    if (!plaintext.ok()) {
      // A share that authenticates under another client's channel was relabelled; one that
      // authenticates under none was damaged.
      for (const Peer& other : peers) {
        if (other.id == self() || other.id == sender_id) continue;
        if (OpenShare(other, share->ciphertext()).ok()) {
          return Abort(
              v1::SECAGG_RELABELLED_CIPHERTEXT,
              absl::StrCat("the share labelled as from ", sender_id, " comes from ", other.id));
        }
      }
      return Abort(v1::SECAGG_CORRUPTED_SHARE,
                   absl::StrCat("the share from ", sender_id, " does not authenticate"));
    }
    FieldReader reader(plaintext->view());
    const auto from = reader.Next();
    const auto to = reader.Next();
    const auto key_bytes = reader.Next();
    const auto seed_bytes = reader.Next();
    if (!seed_bytes.has_value() || !reader.AtEnd()) {
      return Abort(v1::SECAGG_CORRUPTED_SHARE,
                   absl::StrCat("the share from ", sender_id, " is malformed"));
    }
    if (*from != sender_id || *to != self()) {
      return Abort(
          v1::SECAGG_RELABELLED_CIPHERTEXT,
          absl::StrCat("the share from ", sender_id, " names another sender or receiver inside"));
    }
    auto key_share = ShamirShare::Parse(*key_bytes);
    auto seed_share = ShamirShare::Parse(*seed_bytes);
    if (!key_share.ok() || !seed_share.ok() || key_share->x != my_point ||
        seed_share->x != my_point) {
      return Abort(v1::SECAGG_CORRUPTED_SHARE,
                   absl::StrCat("the share from ", sender_id, " holds no valid Shamir share for ",
                                "this client's point"));
    }
    HeldShares& slot = held[sender_id];
    slot.mask_key = *key_share;
    slot.seed = *seed_share;
  }

  // y = x + self mask + sum over neighbouring share holders of +-pairwise mask.
  std::vector<uint32_t> masked = input;
  {
    ASSIGN_OR_RETURN(SecretBytes self_key, SelfMaskKey(seed, session_id, self()));
    ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(self_key));
    generator.AddTo(0, masked);
  }
  for (const std::string& id : holders) {
    if (id == self() || !graph->AreNeighbors(self(), id)) continue;
    auto shared = mask_key->Agree(*peers[peer_index.at(id)].mask_key);
    if (!shared.ok()) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                   absl::StrCat("no pairwise mask with ", id, ": ", shared.status().message()));
    }
    ASSIGN_OR_RETURN(SecretBytes key, PairwiseMaskKey(*shared, session_id, self(), id));
    ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(key));
    if (PairwiseMaskSign(self(), id) > 0) {
      generator.AddTo(0, masked);
    } else {
      generator.SubtractFrom(0, masked);
    }
  }
  std::fill(input.begin(), input.end(), 0u);
  input.clear();
  share_holders.assign(holders.begin(), holders.end());

  v1::SecAggClientMessage reply;
  reply.mutable_masked_input()->set_masked_input(internal::WordsToBytes(masked));
  state = ClientState::kMaskedInputSent;
  return reply;
}

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::OnSurvivors(
    const v1::SurvivorList& list) {
  const auto& survivors = list.survivors();
  if (!StrictlySorted(survivors)) {
    return Abort(v1::SECAGG_MALFORMED_MESSAGE, "the survivors are not sorted or repeat a client");
  }
  for (const std::string& id : survivors) {
    if (!std::binary_search(share_holders.begin(), share_holders.end(), id)) {
      return Abort(v1::SECAGG_NOT_A_SUBSET,
                   absl::StrCat("survivor ", id, " was not a share holder"));
    }
  }
  if (!std::binary_search(survivors.begin(), survivors.end(), self())) {
    return Abort(v1::SECAGG_MALFORMED_MESSAGE, "this client is not among the survivors");
  }
  if (static_cast<uint32_t>(survivors.size()) < threshold()) {
    return Abort(v1::SECAGG_TOO_FEW_CLIENTS,
                 absl::StrCat(survivors.size(), " survivors, threshold ", threshold()));
  }
  signed_survivors.assign(survivors.begin(), survivors.end());
  ASSIGN_OR_RETURN(std::string signature,
                   identity.signer->Sign(ConsistencySigningInput(session_id, signed_survivors)));
  v1::SecAggClientMessage reply;
  reply.mutable_consistency()->set_signature(std::move(signature));
  state = ClientState::kConsistencySent;
  return reply;
}

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::OnUnmasking(
    const v1::UnmaskingRequest& request) {
  if (!std::equal(request.survivors().begin(), request.survivors().end(), signed_survivors.begin(),
                  signed_survivors.end())) {
    return Abort(v1::SECAGG_SURVIVOR_SET_CHANGED,
                 "the unmasking request names another survivor set than the one signed");
  }
  const auto& dropped = request.dropped();
  if (!StrictlySorted(dropped)) {
    return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                 "the dropped clients are not sorted or repeat a client");
  }
  for (const std::string& id : dropped) {
    if (std::binary_search(signed_survivors.begin(), signed_survivors.end(), id)) {
      return Abort(v1::SECAGG_ALIVE_DROPPED_OVERLAP,
                   absl::StrCat(id, " is listed both as a survivor and as dropped"));
    }
  }
  for (const std::string& id : dropped) {
    if (!std::binary_search(share_holders.begin(), share_holders.end(), id)) {
      return Abort(v1::SECAGG_NOT_A_SUBSET,
                   absl::StrCat("dropped client ", id, " was not a share holder"));
    }
  }
  if (signed_survivors.size() + static_cast<size_t>(dropped.size()) != share_holders.size()) {
    return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                 "survivors and dropped clients do not make up the share holders");
  }

  // At least `threshold` distinct survivors must have signed this very set.
  const std::string signed_input = ConsistencySigningInput(session_id, signed_survivors);
  std::set<std::string> valid;
  for (const v1::ConsistencySignature& signature : request.signatures()) {
    if (valid.contains(signature.client_id()) ||
        !std::binary_search(signed_survivors.begin(), signed_survivors.end(),
                            signature.client_id())) {
      continue;
    }
    if (signature.client_id() == self()) {
      // This client's own signature: check it like any other (its key is its certificate's).
      auto verifier = Verifier::Create(identity.certificate_pem);
      if (verifier.ok() && verifier->Verify(signed_input, signature.signature()).ok()) {
        valid.insert(signature.client_id());
      }
      continue;
    }
    const Peer& peer = peers[peer_index.at(signature.client_id())];
    if (peer.verifier->Verify(signed_input, signature.signature()).ok()) {
      valid.insert(signature.client_id());
    }
  }
  if (valid.size() < threshold()) {
    return Abort(v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES,
                 absl::StrCat(valid.size(), " valid signatures on the survivor set, threshold ",
                              threshold()));
  }

  v1::SecAggClientMessage reply;
  v1::UnmaskingResponse* response = reply.mutable_unmasking();
  for (const std::string& id : signed_survivors) {
    v1::UnmaskingShare* share = response->add_shares();
    share->set_owner(id);
    share->set_kind(v1::UnmaskingShare::SELF_MASK_SEED);
    share->set_share(std::string(held.at(id).seed.Serialize().view()));
  }
  for (const std::string& id : dropped) {
    v1::UnmaskingShare* share = response->add_shares();
    share->set_owner(id);
    share->set_kind(v1::UnmaskingShare::MASK_KEY);
    share->set_share(std::string(held.at(id).mask_key.Serialize().view()));
  }
  state = ClientState::kCompleted;
  WipeSecrets();
  return reply;
}

}  // namespace tessera::secagg
