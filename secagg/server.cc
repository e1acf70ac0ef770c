#include "secagg/server.h"

#include <algorithm>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/splitmix64.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/pki.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "secagg/internal/check.h"
#include "secagg/internal/wire.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"

namespace tessera::secagg {

using crypto::AesGcm256;
using crypto::IsValidNodeId;
using crypto::kShamirShareBytes;
using crypto::MaskGenerator;
using crypto::RandomUint64;
using crypto::RequireRole;
using crypto::Role;
using crypto::SecretBytes;
using crypto::ShamirCombine;
using crypto::ShamirShare;
using crypto::Verifier;
using crypto::VerifyCertificate;
using crypto::X25519PrivateKey;
using crypto::X25519PublicKey;
namespace {

constexpr size_t kDigestBytes = 32;
// How many threshold-subsets of a secret's shares are tried before giving up on it.
constexpr int kMaxReconstructionAttempts = 64;
// Mask expansion works on blocks of this many words (256 KiB): every mask stream is added
// to a block while it is in cache.
constexpr size_t kUnmaskBlockWords = size_t{1} << 16;

// The size of the share plaintext client.cc builds: four length-prefixed fields.
size_t ShareCiphertextBytes(const std::string& sender, const std::string& receiver) {
  const size_t plaintext = 4 + sender.size() + 4 + receiver.size() + 2 * (4 + kShamirShareBytes);
  return AesGcm256::kNonceBytes + plaintext + AesGcm256::kTagBytes;
}

template <typename Container>
bool StrictlySorted(const Container& ids) {
  for (size_t i = 1; i < static_cast<size_t>(ids.size()); ++i) {
    if (!(ids[i - 1] < ids[i])) return false;
  }
  return true;
}

v1::SecAggClientMessage::MessageCase ExpectedKind(v1::SecAggRound round) {
  switch (round) {
    case v1::SECAGG_ADVERTISE_KEYS:
      return v1::SecAggClientMessage::kAdvertisement;
    case v1::SECAGG_SHARE_KEYS:
      return v1::SecAggClientMessage::kShareKeys;
    case v1::SECAGG_MASKED_INPUT:
      return v1::SecAggClientMessage::kMaskedInput;
    case v1::SECAGG_CONSISTENCY_CHECK:
      return v1::SecAggClientMessage::kConsistency;
    case v1::SECAGG_UNMASKING:
      return v1::SecAggClientMessage::kUnmasking;
    default:
      break;
  }
  return v1::SecAggClientMessage::MESSAGE_NOT_SET;
}

// A mask generator from a derived key (which fails only on a broken invariant).
MaskGenerator GeneratorFrom(const absl::StatusOr<SecretBytes>& key) {
  TESSERA_SECAGG_CHECK(key.ok());
  absl::StatusOr<MaskGenerator> generator = MaskGenerator::Create(*key);
  TESSERA_SECAGG_CHECK(generator.ok());
  return *std::move(generator);
}

// One mask stream to take out of the sum.
struct MaskStream {
  MaskGenerator generator;
  bool subtract;  // true: the survivors added it
};

}  // namespace

struct SecAggServer::Impl {
  struct Client {
    v1::KeyAdvertisement advertisement;
    std::optional<Verifier> verifier;
    uint32_t point = 0;  // Shamir x, once the advertisement list is fixed
    std::string commitment;
    // SHARE_KEYS: the shares this client sent, by receiver (cleared once relayed).
    std::map<std::string, v1::EncryptedShare> outbox;
    std::string consistency_signature;
    // UNMASKING: the shares this client released, by owner.
    std::map<std::string, ShamirShare> seed_shares;
    std::map<std::string, ShamirShare> key_shares;
  };

  v1::SecAggSetup setup;
  std::string setup_digest;
  ServerOptions options;
  const MaskingGraph* graph = nullptr;
  std::optional<X25519PrivateKey> probe;  // to refuse small-order public keys

  ServerState state = ServerState::kCollecting;
  v1::SecAggRound round = v1::SECAGG_ADVERTISE_KEYS;
  v1::SecAggServerAbort abort_reason = v1::SECAGG_SERVER_ABORT_UNSPECIFIED;
  std::string abort_detail;
  std::vector<ClientDrop> drops;

  std::set<std::string> expected;  // asked to answer the current round
  std::set<std::string> answered;  // of those, answered it
  std::set<std::string> dropped;   // ever dropped

  std::map<std::string, Client> clients;  // advertised (accepted in ADVERTISE_KEYS)
  std::set<std::string> public_keys;      // every key accepted so far
  std::string session_id;
  v1::AdvertisementList advertisement_list;
  std::vector<std::string> holders;  // answered SHARE_KEYS
  std::map<std::string, v1::ShareRelay> relays;
  std::vector<std::uint32_t> sum;            // running sum of masked inputs
  std::vector<std::string> survivors;        // inputs in the sum
  std::vector<std::string> dropped_holders;  // holders not among the survivors
  v1::UnmaskingRequest unmasking_request;
  std::vector<uint32_t> scratch;  // for the observer

  std::function<void(const std::string&, std::span<const uint32_t>)> observer;

  uint32_t threshold() const { return setup.threshold(); }

  void Record(const std::string& id, v1::SecAggDropReason reason, std::string detail) {
    ClientDrop drop;
    drop.client_id = id;
    drop.round = round;
    drop.reason = reason;
    drop.detail = std::move(detail);
    drops.push_back(std::move(drop));
    dropped.insert(id);
  }

  // Drops `id` for a failed check and returns the error Receive reports.
  absl::Status Reject(const std::string& id, v1::SecAggDropReason reason, absl::StatusCode code,
                      std::string detail) {
    absl::Status status(code, absl::StrCat(v1::SecAggDropReason_Name(reason), ": ", detail));
    Record(id, reason, std::move(detail));
    return status;
  }

  void Abort(v1::SecAggServerAbort reason, std::string detail) {
    state = ServerState::kAborted;
    abort_reason = reason;
    abort_detail = std::move(detail);
    ClearSessionData();
  }

  void ClearSessionData() {
    for (auto& [id, client] : clients) {
      client.outbox.clear();
      client.seed_shares.clear();
      client.key_shares.clear();
    }
    relays.clear();
    expected.clear();
    answered.clear();
    scratch.clear();
    scratch.shrink_to_fit();
    if (state == ServerState::kAborted) {
      sum.clear();
      sum.shrink_to_fit();
    }
  }

  // The clients that answered the current round and are still in the session.
  std::vector<std::string> Answered() const {
    std::vector<std::string> ids;
    for (const std::string& id : answered) {
      if (!dropped.contains(id)) ids.push_back(id);
    }
    return ids;
  }

  bool EnoughOrAbort(size_t count, const char* what) {
    if (count >= threshold()) return true;
    Abort(v1::SECAGG_SERVER_TOO_FEW_CLIENTS,
          absl::StrCat(count, " ", what, " in round ", v1::SecAggRound_Name(round), ", threshold ",
                       threshold()));
    return false;
  }

  absl::Status OnAdvertisement(const std::string& id, const v1::KeyAdvertisement& ad);
  absl::Status OnShareKeys(const std::string& id, const v1::ShareKeysResponse& response);
  absl::Status OnMaskedInput(const std::string& id, const v1::MaskedInputResponse& response);
  absl::Status OnConsistency(const std::string& id, const v1::ConsistencyResponse& response);
  absl::Status OnUnmasking(const std::string& id, const v1::UnmaskingResponse& response);

  void CloseAdvertiseKeys();
  void CloseShareKeys();
  void CloseMaskedInput();
  void CloseConsistency();
  void CloseUnmasking();

  // Rebuilds a secret from `shares` (at least threshold), trying threshold-subsets until
  // `check` accepts one. nullopt if none does within the attempt budget.
  std::optional<SecretBytes> Rebuild(std::vector<ShamirShare> shares,
                                     const std::function<bool(const SecretBytes&)>& check) const;
};

absl::StatusOr<std::unique_ptr<SecAggServer>> SecAggServer::Create(const v1::SecAggSetup& setup,
                                                                   ServerOptions options) {
  if (setup.protocol_version() != kProtocolVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("setup.protocol_version must be ", kProtocolVersion));
  }
  if (setup.session_nonce().size() != kSessionNonceBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("setup.session_nonce must be ", kSessionNonceBytes, " bytes"));
  }
  if (setup.invited().empty() || !StrictlySorted(setup.invited())) {
    return absl::InvalidArgumentError(
        "setup.invited must be a non-empty, sorted list without repeats");
  }
  for (const std::string& id : setup.invited()) {
    if (!IsValidNodeId(id)) {
      return absl::InvalidArgumentError(absl::StrCat("setup.invited: not a node id: ", id));
    }
  }
  const uint32_t invited = static_cast<uint32_t>(setup.invited_size());
  if (setup.threshold() > invited || setup.threshold() < MinimumSafeThreshold(invited)) {
    return absl::InvalidArgumentError(
        absl::StrCat("setup.threshold must be in ", MinimumSafeThreshold(invited), "..", invited,
                     " for ", invited, " invited clients, got ", setup.threshold()));
  }
  if (absl::Status valid = ValidateEncoding(setup.encoding(), invited); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("setup.encoding: ", valid.message()));
  }
  if (EncodedWords(setup.encoding()) != setup.vector_words()) {
    return absl::InvalidArgumentError(absl::StrCat("setup.vector_words is ", setup.vector_words(),
                                                   " but the encoding holds ",
                                                   EncodedWords(setup.encoding()), " words"));
  }
  if (options.unmasking_threads < 1) {
    return absl::InvalidArgumentError("unmasking_threads must be at least 1");
  }
  if (options.ca_cert_pem.empty()) {
    return absl::InvalidArgumentError("the federation CA certificate is missing");
  }

  auto impl = std::make_unique<Impl>();
  impl->setup = setup;
  impl->setup_digest = SetupDigest(setup);
  impl->graph = options.graph != nullptr ? options.graph : &CompleteGraph();
  impl->options = std::move(options);
  ASSIGN_OR_RETURN(X25519PrivateKey probe, X25519PrivateKey::Generate());
  impl->probe.emplace(std::move(probe));
  impl->expected.insert(setup.invited().begin(), setup.invited().end());
  return std::unique_ptr<SecAggServer>(new SecAggServer(std::move(impl)));
}

SecAggServer::SecAggServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SecAggServer::~SecAggServer() = default;

ServerState SecAggServer::state() const { return impl_->state; }
v1::SecAggRound SecAggServer::round() const { return impl_->round; }

std::map<std::string, v1::SecAggServerMessage> SecAggServer::Outgoing() const {
  std::map<std::string, v1::SecAggServerMessage> out;
  const Impl& s = *impl_;
  if (s.state != ServerState::kCollecting) return out;
  for (const std::string& id : s.expected) {
    if (s.dropped.contains(id)) continue;
    v1::SecAggServerMessage& message = out[id];
    message.set_round(s.round);
    switch (s.round) {
      case v1::SECAGG_ADVERTISE_KEYS:
        *message.mutable_setup() = s.setup;
        break;
      case v1::SECAGG_SHARE_KEYS:
        *message.mutable_advertisements() = s.advertisement_list;
        break;
      case v1::SECAGG_MASKED_INPUT:
        *message.mutable_share_relay() = s.relays.at(id);
        break;
      case v1::SECAGG_CONSISTENCY_CHECK:
        message.mutable_survivor_list()->mutable_survivors()->Add(s.survivors.begin(),
                                                                  s.survivors.end());
        break;
      case v1::SECAGG_UNMASKING:
        *message.mutable_unmasking_request() = s.unmasking_request;
        break;
      default:
        TESSERA_SECAGG_CHECK(false);
    }
  }
  return out;
}

std::set<std::string> SecAggServer::Pending() const {
  std::set<std::string> pending;
  if (impl_->state != ServerState::kCollecting) return pending;
  for (const std::string& id : impl_->expected) {
    if (!impl_->answered.contains(id) && !impl_->dropped.contains(id)) pending.insert(id);
  }
  return pending;
}

absl::Status SecAggServer::Receive(const std::string& client_id,
                                   const v1::SecAggClientMessage& message) {
  Impl& s = *impl_;
  if (s.state != ServerState::kCollecting) {
    return absl::FailedPreconditionError("the secure-aggregation session is over");
  }
  const std::string round_name = v1::SecAggRound_Name(s.round);
  if (!s.expected.contains(client_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat(client_id, " is not expected to answer round ", round_name));
  }
  if (s.dropped.contains(client_id)) {
    return absl::FailedPreconditionError(absl::StrCat(client_id, " was dropped from the session"));
  }
  if (s.answered.contains(client_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat(client_id, " already answered round ", round_name));
  }
  if (message.message_case() == v1::SecAggClientMessage::MESSAGE_NOT_SET) {
    return s.Reject(client_id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                    "an empty message");
  }
  if (message.message_case() != ExpectedKind(s.round)) {
    // A late or early message (a retransmission, a reordering): refused, nothing changes.
    return absl::FailedPreconditionError(
        absl::StrCat("a message of another round than ", round_name, " from ", client_id));
  }
  absl::Status status;
  switch (s.round) {
    case v1::SECAGG_ADVERTISE_KEYS:
      status = s.OnAdvertisement(client_id, message.advertisement());
      break;
    case v1::SECAGG_SHARE_KEYS:
      status = s.OnShareKeys(client_id, message.share_keys());
      break;
    case v1::SECAGG_MASKED_INPUT:
      status = s.OnMaskedInput(client_id, message.masked_input());
      break;
    case v1::SECAGG_CONSISTENCY_CHECK:
      status = s.OnConsistency(client_id, message.consistency());
      break;
    case v1::SECAGG_UNMASKING:
      status = s.OnUnmasking(client_id, message.unmasking());
      break;
    default:
      TESSERA_SECAGG_CHECK(false);
  }
  if (status.ok()) s.answered.insert(client_id);
  return status;
}

absl::Status SecAggServer::Impl::OnAdvertisement(const std::string& id,
                                                 const v1::KeyAdvertisement& ad) {
  auto info = VerifyCertificate(ad.certificate(), options.ca_cert_pem, options.now);
  if (!info.ok()) {
    return Reject(id, v1::SECAGG_DROP_BAD_CERTIFICATE, absl::StatusCode::kUnauthenticated,
                  std::string(info.status().message()));
  }
  if (info->node_id != id) {
    return Reject(id, v1::SECAGG_DROP_BAD_CERTIFICATE, absl::StatusCode::kUnauthenticated,
                  absl::StrCat("the certificate names ", info->node_id));
  }
  if (absl::Status role = RequireRole(*info, Role::kInstitution); !role.ok()) {
    return Reject(id, v1::SECAGG_DROP_BAD_CERTIFICATE, absl::StatusCode::kUnauthenticated,
                  std::string(role.message()));
  }
  auto channel = X25519PublicKey::FromBytes(ad.channel_public_key());
  auto mask = X25519PublicKey::FromBytes(ad.mask_public_key());
  if (!channel.ok() || !mask.ok() || ad.setup_digest().size() != kDigestBytes) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  "keys or setup digest of the wrong size");
  }
  auto verifier = Verifier::Create(ad.certificate());
  if (!verifier.ok()) {
    return Reject(id, v1::SECAGG_DROP_BAD_CERTIFICATE, absl::StatusCode::kUnauthenticated,
                  std::string(verifier.status().message()));
  }
  if (!verifier
           ->Verify(AdvertisementSigningInput(ad.setup_digest(), id, ad.channel_public_key(),
                                              ad.mask_public_key()),
                    ad.signature())
           .ok()) {
    return Reject(id, v1::SECAGG_DROP_BAD_SIGNATURE, absl::StatusCode::kUnauthenticated,
                  "the advertisement is not signed by the certificate key");
  }
  if (ad.setup_digest() != setup_digest) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  "the advertisement was signed for another setup");
  }
  if (!probe->Agree(*channel).ok() || !probe->Agree(*mask).ok()) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  "a public key is a small-order point");
  }
  if (ad.channel_public_key() == ad.mask_public_key() ||
      public_keys.contains(ad.channel_public_key()) || public_keys.contains(ad.mask_public_key())) {
    return Reject(id, v1::SECAGG_DROP_DUPLICATE_KEYS, absl::StatusCode::kInvalidArgument,
                  "a public key repeats one already advertised");
  }
  public_keys.insert(ad.channel_public_key());
  public_keys.insert(ad.mask_public_key());
  Client& client = clients[id];
  client.advertisement = ad;
  client.verifier.emplace(*std::move(verifier));
  return absl::OkStatus();
}

absl::Status SecAggServer::Impl::OnShareKeys(const std::string& id,
                                             const v1::ShareKeysResponse& response) {
  if (response.self_mask_commitment().size() != kDigestBytes) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  "the self-mask commitment is not 32 bytes");
  }
  if (static_cast<size_t>(response.shares_size()) + 1 != expected.size()) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  absl::StrCat(response.shares_size(), " shares for ", expected.size() - 1,
                               " other clients"));
  }
  std::map<std::string, v1::EncryptedShare> outbox;
  for (const v1::EncryptedShare& share : response.shares()) {
    if (share.sender() != id || share.receiver() == id || !expected.contains(share.receiver()) ||
        outbox.contains(share.receiver())) {
      return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                    "a share with wrong routing labels or a repeated receiver");
    }
    if (share.ciphertext().size() != ShareCiphertextBytes(id, share.receiver())) {
      return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("the share for ", share.receiver(), " has the wrong size"));
    }
    outbox.emplace(share.receiver(), share);
  }
  Client& client = clients.at(id);
  client.outbox = std::move(outbox);
  client.commitment = response.self_mask_commitment();
  return absl::OkStatus();
}

absl::Status SecAggServer::Impl::OnMaskedInput(const std::string& id,
                                               const v1::MaskedInputResponse& response) {
  const std::string& bytes = response.masked_input();
  if (bytes.size() != static_cast<size_t>(setup.vector_words()) * 4) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  absl::StrCat("the masked input has ", bytes.size(), " bytes, expected ",
                               static_cast<size_t>(setup.vector_words()) * 4));
  }
  if (observer) {
    scratch.resize(setup.vector_words());
    internal::BytesToWords(bytes, scratch);
    observer(id, scratch);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += scratch[i];
  } else {
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    for (size_t i = 0; i < sum.size(); ++i) {
      sum[i] += uint32_t{data[4 * i]} | uint32_t{data[4 * i + 1]} << 8 |
                uint32_t{data[4 * i + 2]} << 16 | uint32_t{data[4 * i + 3]} << 24;
    }
  }
  return absl::OkStatus();
}

absl::Status SecAggServer::Impl::OnConsistency(const std::string& id,
                                               const v1::ConsistencyResponse& response) {
  const Client& client = clients.at(id);
  if (!client.verifier->Verify(ConsistencySigningInput(session_id, survivors), response.signature())
           .ok()) {
    return Reject(id, v1::SECAGG_DROP_BAD_SIGNATURE, absl::StatusCode::kUnauthenticated,
                  "the consistency signature does not verify over the survivor set");
  }
  clients.at(id).consistency_signature = response.signature();
  return absl::OkStatus();
}

absl::Status SecAggServer::Impl::OnUnmasking(const std::string& id,
                                             const v1::UnmaskingResponse& response) {
  const uint32_t point = clients.at(id).point;
  std::map<std::string, ShamirShare> seed_shares;
  std::map<std::string, ShamirShare> key_shares;
  for (const v1::UnmaskingShare& share : response.shares()) {
    std::map<std::string, ShamirShare>* into = nullptr;
    if (share.kind() == v1::UnmaskingShare::SELF_MASK_SEED &&
        std::binary_search(survivors.begin(), survivors.end(), share.owner())) {
      into = &seed_shares;
    } else if (share.kind() == v1::UnmaskingShare::MASK_KEY &&
               std::binary_search(dropped_holders.begin(), dropped_holders.end(), share.owner())) {
      into = &key_shares;
    }
    if (into == nullptr || into->contains(share.owner())) {
      return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("an unexpected or repeated share for ", share.owner()));
    }
    auto parsed = ShamirShare::Parse(share.share());
    if (!parsed.ok() || parsed->x != point) {
      return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("the share for ", share.owner(),
                                 " is not a Shamir share at this client's point"));
    }
    into->emplace(share.owner(), *parsed);
  }
  if (seed_shares.size() != survivors.size() || key_shares.size() != dropped_holders.size()) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  "shares missing for some survivors or dropped clients");
  }
  Client& client = clients.at(id);
  client.seed_shares = std::move(seed_shares);
  client.key_shares = std::move(key_shares);
  return absl::OkStatus();
}

void SecAggServer::Drop(const std::string& client_id, v1::SecAggDropReason reason,
                        const std::string& detail) {
  Impl& s = *impl_;
  if (s.state != ServerState::kCollecting || !s.expected.contains(client_id) ||
      s.dropped.contains(client_id)) {
    return;
  }
  s.Record(client_id, reason, detail);
}

ServerState SecAggServer::CloseRound() {
  Impl& s = *impl_;
  if (s.state != ServerState::kCollecting) return s.state;
  for (const std::string& id : s.expected) {
    if (!s.answered.contains(id) && !s.dropped.contains(id)) {
      s.Record(id, v1::SECAGG_DROP_NO_ANSWER, "no answer before the round closed");
    }
  }
  switch (s.round) {
    case v1::SECAGG_ADVERTISE_KEYS:
      s.CloseAdvertiseKeys();
      break;
    case v1::SECAGG_SHARE_KEYS:
      s.CloseShareKeys();
      break;
    case v1::SECAGG_MASKED_INPUT:
      s.CloseMaskedInput();
      break;
    case v1::SECAGG_CONSISTENCY_CHECK:
      s.CloseConsistency();
      break;
    case v1::SECAGG_UNMASKING:
      s.CloseUnmasking();
      break;
    default:
      TESSERA_SECAGG_CHECK(false);
  }
  return s.state;
}

void SecAggServer::Impl::CloseAdvertiseKeys() {
  const std::vector<std::string> advertised = Answered();
  // A client dropped after its advertisement was accepted is not in the list.
  for (auto it = clients.begin(); it != clients.end();) {
    it = std::binary_search(advertised.begin(), advertised.end(), it->first) ? std::next(it)
                                                                             : clients.erase(it);
  }
  if (!EnoughOrAbort(advertised.size(), "advertisements")) return;
  uint32_t point = 0;
  for (auto& [id, client] : clients) {
    client.point = ++point;
    v1::AdvertisementEntry* entry = advertisement_list.add_entries();
    entry->set_client_id(id);
    *entry->mutable_advertisement() = client.advertisement;
  }
  // SessionId takes a contiguous span; a RepeatedPtrField is not one.
  const std::vector<v1::AdvertisementEntry> entries(advertisement_list.entries().begin(),
                                                    advertisement_list.entries().end());
  session_id = SessionId(setup_digest, entries);
  expected = std::set<std::string>(advertised.begin(), advertised.end());
  answered.clear();
  round = v1::SECAGG_SHARE_KEYS;
}

void SecAggServer::Impl::CloseShareKeys() {
  holders = Answered();
  if (!EnoughOrAbort(holders.size(), "clients shared their keys")) return;
  for (const std::string& receiver : holders) {
    v1::ShareRelay& relay = relays[receiver];
    relay.mutable_share_holders()->Add(holders.begin(), holders.end());
    for (const std::string& sender : holders) {
      if (sender == receiver) continue;
      *relay.add_shares() = std::move(clients.at(sender).outbox.at(receiver));
    }
  }
  for (auto& [id, client] : clients) client.outbox.clear();
  advertisement_list.Clear();
  sum.assign(setup.vector_words(), 0u);
  expected = std::set<std::string>(holders.begin(), holders.end());
  answered.clear();
  round = v1::SECAGG_MASKED_INPUT;
}

void SecAggServer::Impl::CloseMaskedInput() {
  relays.clear();
  scratch.clear();
  scratch.shrink_to_fit();
  // Every answer is in the sum, even of a client dropped since: they are the survivors.
  survivors.assign(answered.begin(), answered.end());
  for (const std::string& id : holders) {
    if (!answered.contains(id)) dropped_holders.push_back(id);
  }
  if (!EnoughOrAbort(survivors.size(), "masked inputs")) return;
  expected.clear();
  for (const std::string& id : survivors) {
    if (!dropped.contains(id)) expected.insert(id);
  }
  answered.clear();
  round = v1::SECAGG_CONSISTENCY_CHECK;
}

void SecAggServer::Impl::CloseConsistency() {
  const std::vector<std::string> signers = Answered();
  if (!EnoughOrAbort(signers.size(), "consistency signatures")) return;
  unmasking_request.mutable_survivors()->Add(survivors.begin(), survivors.end());
  unmasking_request.mutable_dropped()->Add(dropped_holders.begin(), dropped_holders.end());
  for (const std::string& id : signers) {
    v1::ConsistencySignature* signature = unmasking_request.add_signatures();
    signature->set_client_id(id);
    signature->set_signature(clients.at(id).consistency_signature);
  }
  expected = std::set<std::string>(signers.begin(), signers.end());
  answered.clear();
  round = v1::SECAGG_UNMASKING;
}

std::optional<SecretBytes> SecAggServer::Impl::Rebuild(
    std::vector<ShamirShare> shares, const std::function<bool(const SecretBytes&)>& check) const {
  const size_t t = threshold();
  const size_t m = shares.size();
  TESSERA_SECAGG_CHECK(m >= t);
  std::vector<ShamirShare> subset(t);
  auto attempt = [&](const std::vector<size_t>& indices) {
    for (size_t i = 0; i < t; ++i) subset[i] = shares[indices[i]];
    auto secret = ShamirCombine(subset, static_cast<int>(t));
    if (secret.ok() && check(*secret)) return std::optional<SecretBytes>(*std::move(secret));
    return std::optional<SecretBytes>();
  };
  std::vector<size_t> indices(t);
  int attempts = 0;
  // Few enough subsets: try them all, in lexicographic order.
  double subsets = 1;
  for (size_t i = 0; i < t; ++i) subsets = subsets * static_cast<double>(m - i) / (i + 1);
  if (subsets <= kMaxReconstructionAttempts) {
    for (size_t i = 0; i < t; ++i) indices[i] = i;
    while (true) {
      if (auto secret = attempt(indices)) return secret;
      // Next combination: bump the rightmost index that can move, reset those after it.
      size_t i = t;
      while (i > 0 && indices[i - 1] == m - t + (i - 1)) --i;
      if (i == 0) return std::nullopt;
      ++indices[i - 1];
      for (size_t j = i; j < t; ++j) indices[j] = indices[j - 1] + 1;
    }
  }
  // Otherwise first the m cyclic windows: each leaves out a run of m - t consecutive
  // shares, enough to skip a single bad share...
  for (size_t start = 0; start < m && attempts < kMaxReconstructionAttempts; ++start) {
    for (size_t i = 0; i < t; ++i) indices[i] = (start + i) % m;
    ++attempts;
    if (auto secret = attempt(indices)) return secret;
  }
  // ...then random subsets, seeded unpredictably so that colluding clients cannot aim
  // their bad shares at the subsets tried.
  uint64_t seed = 0;
  if (auto random = RandomUint64(); random.ok()) seed = *random;
  common::SplitMix64 rng(seed);
  std::vector<size_t> all(m);
  while (attempts < kMaxReconstructionAttempts) {
    for (size_t i = 0; i < m; ++i) all[i] = i;
    for (size_t i = 0; i < t; ++i) {  // partial Fisher-Yates
      std::swap(all[i], all[i + rng.Below(m - i)]);
    }
    std::copy(all.begin(), all.begin() + t, indices.begin());
    ++attempts;
    if (auto secret = attempt(indices)) return secret;
  }
  return std::nullopt;
}

void SecAggServer::Impl::CloseUnmasking() {
  const std::vector<std::string> releasers = Answered();
  if (!EnoughOrAbort(releasers.size(), "unmasking answers")) return;

  std::vector<MaskStream> streams;
  streams.reserve(survivors.size() + dropped_holders.size() * survivors.size());
  for (const std::string& owner : survivors) {
    std::vector<ShamirShare> shares;
    for (const std::string& id : releasers) shares.push_back(clients.at(id).seed_shares.at(owner));
    const std::string& commitment = clients.at(owner).commitment;
    std::optional<SecretBytes> seed = Rebuild(std::move(shares), [&](const SecretBytes& secret) {
      return SelfMaskCommitment(session_id, owner, secret) == commitment;
    });
    if (!seed.has_value()) {
      Abort(v1::SECAGG_SERVER_RECONSTRUCTION_FAILED,
            absl::StrCat("the self-mask seed of ", owner, " could not be rebuilt"));
      return;
    }
    streams.push_back(
        MaskStream{GeneratorFrom(SelfMaskKey(*seed, session_id, owner)), /*subtract=*/true});
  }
  for (const std::string& owner : dropped_holders) {
    std::vector<ShamirShare> shares;
    for (const std::string& id : releasers) shares.push_back(clients.at(id).key_shares.at(owner));
    const std::string& public_key = clients.at(owner).advertisement.mask_public_key();
    std::optional<SecretBytes> secret = Rebuild(std::move(shares), [&](const SecretBytes& bytes) {
      auto key = X25519PrivateKey::FromBytes(bytes);
      return key.ok() && key->public_key().bytes() == public_key;
    });
    if (!secret.has_value()) {
      Abort(v1::SECAGG_SERVER_RECONSTRUCTION_FAILED,
            absl::StrCat("the mask key of dropped client ", owner, " could not be rebuilt"));
      return;
    }
    auto private_key = X25519PrivateKey::FromBytes(*secret);
    TESSERA_SECAGG_CHECK(private_key.ok());
    for (const std::string& survivor : survivors) {
      if (!graph->AreNeighbors(survivor, owner)) continue;
      auto peer = X25519PublicKey::FromBytes(clients.at(survivor).advertisement.mask_public_key());
      TESSERA_SECAGG_CHECK(peer.ok());
      // The survivor's key passed the small-order probe, so the agreement succeeds.
      auto shared = private_key->Agree(*peer);
      TESSERA_SECAGG_CHECK(shared.ok());
      // The survivor added sign(survivor, owner) * mask; the owner's opposite never came.
      streams.push_back(
          MaskStream{GeneratorFrom(PairwiseMaskKey(*shared, session_id, survivor, owner)),
                     /*subtract=*/PairwiseMaskSign(survivor, owner) > 0});
    }
  }

  // Expansion: the word range is split over the threads; each adds every stream to its
  // range block by block (the generator is seekable).
  auto expand = [&](size_t begin, size_t end) {
    for (size_t block = begin; block < end; block += kUnmaskBlockWords) {
      const size_t size = std::min(kUnmaskBlockWords, end - block);
      std::span<uint32_t> words(sum.data() + block, size);
      for (const MaskStream& stream : streams) {
        if (stream.subtract) {
          stream.generator.SubtractFrom(block, words);
        } else {
          stream.generator.AddTo(block, words);
        }
      }
    }
  };
  const size_t length = sum.size();
  const size_t threads = std::min<size_t>(static_cast<size_t>(options.unmasking_threads),
                                          std::max<size_t>(1, length / kUnmaskBlockWords));
  if (threads <= 1) {
    expand(0, length);
  } else {
    // Ranges on block boundaries.
    const size_t blocks = (length + kUnmaskBlockWords - 1) / kUnmaskBlockWords;
    std::vector<std::thread> workers;
    for (size_t t = 0; t < threads; ++t) {
      const size_t begin = std::min(length, blocks * t / threads * kUnmaskBlockWords);
      const size_t end = std::min(length, blocks * (t + 1) / threads * kUnmaskBlockWords);
      workers.emplace_back(expand, begin, end);
    }
    for (std::thread& worker : workers) worker.join();
  }

  state = ServerState::kCompleted;
  ClearSessionData();
}

void SecAggServer::Cancel() {
  if (impl_->state == ServerState::kCollecting) {
    impl_->Abort(v1::SECAGG_SERVER_CANCELLED, "cancelled");
  }
}

const std::vector<uint32_t>& SecAggServer::sum() const { return impl_->sum; }
const std::vector<std::string>& SecAggServer::survivors() const { return impl_->survivors; }
v1::SecAggServerAbort SecAggServer::abort_reason() const { return impl_->abort_reason; }
const std::string& SecAggServer::abort_detail() const { return impl_->abort_detail; }
const std::vector<ClientDrop>& SecAggServer::drops() const { return impl_->drops; }

void SecAggServer::set_masked_input_observer(
    std::function<void(const std::string& client_id, std::span<const uint32_t> words)> observer) {
  impl_->observer = std::move(observer);
}

}  // namespace tessera::secagg
