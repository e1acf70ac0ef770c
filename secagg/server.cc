#include "secagg/server.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/key_agreement.h"
#include "crypto/pki.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "secagg/internal/check.h"
#include "secagg/internal/server_impl.h"
#include "secagg/internal/wire.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"

namespace tessera::secagg {

using crypto::AesGcm256;
using crypto::IsValidNodeId;
using crypto::kShamirShareBytes;
using crypto::RequireRole;
using crypto::Role;
using crypto::Sha256;
using crypto::ShamirShare;
using crypto::Verifier;
using crypto::VerifyCertificate;
using crypto::X25519PrivateKey;
using crypto::X25519PublicKey;
namespace {

constexpr size_t kDigestBytes = 32;

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
    case v1::SECAGG_REVEAL_COINS:
      return v1::SecAggClientMessage::kCoin;
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

}  // namespace

absl::StatusOr<const X25519PrivateKey*> internal::SmallOrderProbe() {
  ABSL_CONST_INIT static absl::Mutex mu(absl::kConstInit);
  static const X25519PrivateKey* probe ABSL_GUARDED_BY(mu) = nullptr;
  absl::MutexLock lock(&mu);
  if (probe == nullptr) {
    ASSIGN_OR_RETURN(X25519PrivateKey key, X25519PrivateKey::Generate());
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): kept for the process's lifetime.
    probe = new X25519PrivateKey(std::move(key));
  }
  return probe;
}

absl::Status internal::ValidateServerSetup(const v1::SecAggSetup& setup,
                                           const ServerOptions& options) {
  if (setup.protocol_version() < kOldestProtocolVersion ||
      setup.protocol_version() > kProtocolVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setup.protocol_version must be ", kOldestProtocolVersion, " to ", kProtocolVersion));
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
  const uint32_t safe = SafeThreshold(invited, options.assumed_colluders);
  if (setup.threshold() > invited || setup.threshold() < safe) {
    return absl::InvalidArgumentError(
        absl::StrCat("setup.threshold must be in ", safe, "..", invited, " for ", invited,
                     " invited clients (rule t >= ", ThresholdRuleName(options.assumed_colluders),
                     "), got ", setup.threshold()));
  }
  if (absl::Status valid = ValidateEncoding(setup.encoding(), invited); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("setup.encoding: ", valid.message()));
  }
  if (EncodedWords(setup.encoding()) != setup.vector_words()) {
    return absl::InvalidArgumentError(absl::StrCat("setup.vector_words is ", setup.vector_words(),
                                                   " but the encoding holds ",
                                                   EncodedWords(setup.encoding()), " words"));
  }
  if (setup.has_sparse()) {
    if (absl::Status valid = ValidateSparse(setup.sparse(), invited, invited); !valid.ok()) {
      return absl::InvalidArgumentError(valid.message());
    }
  }
  if (options.unmasking_threads < 1) {
    return absl::InvalidArgumentError("unmasking_threads must be at least 1");
  }
  if (options.ca_cert_pem.empty()) {
    return absl::InvalidArgumentError("the federation CA certificate is missing");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SecAggServer>> SecAggServer::Create(const v1::SecAggSetup& setup,
                                                                   ServerOptions options) {
  RETURN_IF_ERROR(internal::ValidateServerSetup(setup, options));
  auto impl = std::make_unique<Impl>();
  impl->setup = setup;
  impl->setup_digest = SetupDigest(setup);
  impl->options = std::move(options);
  ASSIGN_OR_RETURN(impl->probe, internal::SmallOrderProbe());
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
  std::optional<v1::SecAggServerMessage> common = Broadcast();
  for (const std::string& id : Recipients()) {
    if (common.has_value()) {
      out[id] = *common;
      continue;
    }
    v1::SecAggServerMessage& message = out[id];
    message.set_round(s.round);
    // Built by CloseShareKeys or restored from a parsed snapshot: it parses.
    if (!message.mutable_share_relay()->ParseFromString(*s.relays.at(id)))
      message.clear_share_relay();
  }
  return out;
}

std::map<std::string, SecAggServer::OutgoingMessage> SecAggServer::OutgoingBytes() const {
  std::map<std::string, OutgoingMessage> out;
  const Impl& s = *impl_;
  if (s.state != ServerState::kCollecting) return out;
  if (std::optional<v1::SecAggServerMessage> common = Broadcast()) {
    const std::string bytes = common->SerializeAsString();
    for (const std::string& id : Recipients()) out[id].head = bytes;
    return out;
  }
  v1::SecAggServerMessage head;
  head.set_round(s.round);
  const std::string head_bytes = head.SerializeAsString();
  for (const std::string& id : Recipients()) {
    const std::shared_ptr<const std::string>& relay = s.relays.at(id);
    OutgoingMessage& message = out[id];
    message.head = head_bytes;
    internal::AppendProtoFieldHeader(v1::SecAggServerMessage::kShareRelayFieldNumber, relay->size(),
                                     &message.head);
    message.relay = relay;
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> SecAggServer::ListedCertificates(
    const std::string& requester, std::span<const std::string> sha256s) const {
  const Impl& s = *impl_;
  if (!s.clients.contains(requester)) {
    return absl::PermissionDeniedError(absl::StrCat(requester, " is not listed in this session"));
  }
  if (s.session_id.empty()) {
    return absl::FailedPreconditionError("the session's advertisement list is not fixed yet");
  }
  std::vector<std::string> pems;
  pems.reserve(sha256s.size());
  for (const std::string& digest : sha256s) {
    auto owner = s.certificate_owners.find(digest);
    if (owner == s.certificate_owners.end()) {
      return absl::NotFoundError(absl::StrCat("no listed certificate has SHA-256 ",
                                              absl::BytesToHexString(digest.substr(0, 8)), "..."));
    }
    pems.push_back(s.clients.at(owner->second).advertisement.certificate());
  }
  return pems;
}

std::vector<std::string> SecAggServer::Recipients() const {
  std::vector<std::string> ids;
  const Impl& s = *impl_;
  if (s.state != ServerState::kCollecting) return ids;
  for (const std::string& id : s.expected) {
    if (!s.dropped.contains(id)) ids.push_back(id);
  }
  return ids;
}

std::optional<v1::SecAggServerMessage> SecAggServer::Broadcast() const {
  const Impl& s = *impl_;
  if (s.state != ServerState::kCollecting || s.round == v1::SECAGG_MASKED_INPUT) {
    return std::nullopt;
  }
  v1::SecAggServerMessage message;
  message.set_round(s.round);
  switch (s.round) {
    case v1::SECAGG_ADVERTISE_KEYS:
      *message.mutable_setup() = s.setup;
      break;
    case v1::SECAGG_REVEAL_COINS:
      *message.mutable_advertisements() = s.advertisement_list;
      break;
    case v1::SECAGG_SHARE_KEYS:
      if (s.sparse()) {
        *message.mutable_coins() = s.coin_list;
      } else {
        *message.mutable_advertisements() = s.advertisement_list;
      }
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
  return message;
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
    // The driver hands this machine only answers to the current step's work (a late answer
    // to a closed step never reaches it), and a client answers each step once: an answer
    // of another kind is this client's answer, and a wrong one. Dropped now, so that the
    // step does not wait for it until its deadline.
    return s.Reject(client_id, v1::SECAGG_DROP_WRONG_ROUND, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("a message of another step than ", round_name));
  }
  absl::Status status;
  switch (s.round) {
    case v1::SECAGG_ADVERTISE_KEYS:
      status = s.OnAdvertisement(client_id, message.advertisement());
      break;
    case v1::SECAGG_REVEAL_COINS:
      status = s.OnCoin(client_id, message.coin());
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
  if (ad.coin_commitment().size() != (sparse() ? kDigestBytes : 0)) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  sparse() ? "the coin commitment is not 32 bytes"
                           : "a coin commitment in a session without SecAgg+");
  }
  auto verifier = Verifier::Create(ad.certificate());
  if (!verifier.ok()) {
    return Reject(id, v1::SECAGG_DROP_BAD_CERTIFICATE, absl::StatusCode::kUnauthenticated,
                  std::string(verifier.status().message()));
  }
  if (!verifier
           ->Verify(AdvertisementSigningInput(ad.setup_digest(), id, ad.channel_public_key(),
                                              ad.mask_public_key(), ad.coin_commitment()),
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
  // The server's own digest, whatever the client put there.
  client.advertisement.set_certificate_sha256(Sha256(ad.certificate()));
  client.verifier.emplace(*std::move(verifier));
  return absl::OkStatus();
}

absl::Status SecAggServer::Impl::OnCoin(const std::string& id, const v1::CoinReveal& reveal) {
  if (reveal.coin().size() != kCoinBytes || CoinCommitment(setup_digest, id, reveal.coin()) !=
                                                clients.at(id).advertisement.coin_commitment()) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  "the coin does not match the commitment of the advertisement");
  }
  clients.at(id).coin = reveal.coin();
  return absl::OkStatus();
}

absl::Status SecAggServer::Impl::OnShareKeys(const std::string& id,
                                             const v1::ShareKeysResponse& response) {
  if (response.self_mask_commitment().size() != kDigestBytes) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  "the self-mask commitment is not 32 bytes");
  }
  size_t receivers = expected.size() - 1;
  if (graph.has_value()) {
    const std::vector<std::string> neighbours = graph->Neighbours(id);
    receivers = static_cast<size_t>(
        std::count_if(neighbours.begin(), neighbours.end(),
                      [&](const std::string& other) { return expected.contains(other); }));
  }
  if (static_cast<size_t>(response.shares_size()) != receivers) {
    return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                  absl::StrCat(response.shares_size(), " shares for ", receivers,
                               sparse() ? " neighbours" : " other clients"));
  }
  std::map<std::string, std::string> outbox;
  for (const v1::EncryptedShare& share : response.shares()) {
    if (share.sender() != id || !AreNeighbours(id, share.receiver()) ||
        !expected.contains(share.receiver()) || outbox.contains(share.receiver())) {
      return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                    "a share with wrong routing labels or a repeated receiver");
    }
    if (share.ciphertext().size() != ShareCiphertextBytes(id, share.receiver())) {
      return Reject(id, v1::SECAGG_DROP_MALFORMED, absl::StatusCode::kInvalidArgument,
                    absl::StrCat("the share for ", share.receiver(), " has the wrong size"));
    }
    outbox.emplace(share.receiver(), share.SerializeAsString());
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
    internal::AddBytesAsWords(bytes, sum);
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
  // The shares this client holds: of itself and its neighbours.
  const auto holds = [&](const std::string& owner) {
    return owner == id || AreNeighbours(id, owner);
  };
  std::map<std::string, ShamirShare> seed_shares;
  std::map<std::string, ShamirShare> key_shares;
  for (const v1::UnmaskingShare& share : response.shares()) {
    std::map<std::string, ShamirShare>* into = nullptr;
    if (!holds(share.owner())) {
      into = nullptr;
    } else if (share.kind() == v1::UnmaskingShare::SELF_MASK_SEED &&
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
  // How many of a sorted set this client holds shares of: all of it, or in SecAgg+ those
  // in its closed neighbourhood.
  const auto held = [&](const std::vector<std::string>& ids) {
    if (!graph.has_value()) return ids.size();
    size_t count = std::binary_search(ids.begin(), ids.end(), id) ? 1 : 0;
    for (const std::string& neighbour : graph->Neighbours(id)) {
      if (std::binary_search(ids.begin(), ids.end(), neighbour)) ++count;
    }
    return count;
  };
  if (seed_shares.size() != held(survivors) || key_shares.size() != held(dropped_holders)) {
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
