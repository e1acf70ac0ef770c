// SecAggClient::Snapshot and Restore: the client's state as a v1::SecAggClientSnapshot.
// Every secret that passes through a proto field is moved into SecretBytes afterwards, so
// that the message's buffers are wiped when it goes.
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/key_agreement.h"
#include "crypto/secret.h"
#include "crypto/shamir.h"
#include "proto/secagg_state.pb.h"
#include "secagg/client.h"
#include "secagg/internal/check.h"
#include "secagg/internal/client_impl.h"
#include "secagg/internal/wire.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"

namespace tessera::secagg {

using crypto::SecretBytes;
using crypto::ShamirShare;
using crypto::X25519PrivateKey;
using internal::StrictlySorted;
namespace {

constexpr uint32_t kClientSnapshotVersion = 1;

v1::SecAggClientState ToProto(ClientState state) {
  switch (state) {
    case ClientState::kAdvertised:
      return v1::SECAGG_CLIENT_ADVERTISED;
    case ClientState::kCoinRevealed:
      return v1::SECAGG_CLIENT_COIN_REVEALED;
    case ClientState::kSharesSent:
      return v1::SECAGG_CLIENT_SHARES_SENT;
    case ClientState::kMaskedInputSent:
      return v1::SECAGG_CLIENT_MASKED_INPUT_SENT;
    case ClientState::kConsistencySent:
      return v1::SECAGG_CLIENT_CONSISTENCY_SENT;
    case ClientState::kCompleted:
      return v1::SECAGG_CLIENT_COMPLETED;
    case ClientState::kAborted:
      return v1::SECAGG_CLIENT_ABORTED;
  }
  return v1::SECAGG_CLIENT_STATE_UNSPECIFIED;
}

std::optional<ClientState> FromProto(v1::SecAggClientState state) {
  switch (state) {
    case v1::SECAGG_CLIENT_ADVERTISED:
      return ClientState::kAdvertised;
    case v1::SECAGG_CLIENT_COIN_REVEALED:
      return ClientState::kCoinRevealed;
    case v1::SECAGG_CLIENT_SHARES_SENT:
      return ClientState::kSharesSent;
    case v1::SECAGG_CLIENT_MASKED_INPUT_SENT:
      return ClientState::kMaskedInputSent;
    case v1::SECAGG_CLIENT_CONSISTENCY_SENT:
      return ClientState::kConsistencySent;
    case v1::SECAGG_CLIENT_COMPLETED:
      return ClientState::kCompleted;
    case v1::SECAGG_CLIENT_ABORTED:
      return ClientState::kAborted;
    default:
      break;
  }
  return std::nullopt;
}

// Moves a secret field's bytes into SecretBytes, which wipe them.
void Wipe(std::string* field) { SecretBytes wipe(std::move(*field)); }

void WipeSecretFields(v1::SecAggClientSnapshot& snapshot) {
  Wipe(snapshot.mutable_input());
  Wipe(snapshot.mutable_channel_private_key());
  Wipe(snapshot.mutable_mask_private_key());
  Wipe(snapshot.mutable_self_mask_seed());
  for (v1::SecAggHeldShares& held : *snapshot.mutable_held_shares()) {
    Wipe(held.mutable_mask_key_share());
    Wipe(held.mutable_seed_share());
  }
  for (v1::SecAggChannelKey& key : *snapshot.mutable_channel_keys()) Wipe(key.mutable_key());
}

bool HasSecretFields(const v1::SecAggClientSnapshot& snapshot) {
  return !snapshot.input().empty() || !snapshot.channel_private_key().empty() ||
         !snapshot.mask_private_key().empty() || !snapshot.self_mask_seed().empty() ||
         snapshot.held_shares_size() > 0 || snapshot.channel_keys_size() > 0;
}

void SetSecret(std::string* field, const SecretBytes& secret) {
  field->assign(secret.view().data(), secret.size());
}

bool Same(const v1::KeyAdvertisement& a, const v1::KeyAdvertisement& b) {
  return a.certificate() == b.certificate() && a.channel_public_key() == b.channel_public_key() &&
         a.mask_public_key() == b.mask_public_key() && a.setup_digest() == b.setup_digest() &&
         a.signature() == b.signature() && a.coin_commitment() == b.coin_commitment();
}

absl::Status Loss(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("secure-aggregation client snapshot: ", what));
}

// A private key from a snapshot field, checked against the public key advertised.
absl::StatusOr<X25519PrivateKey> KeyFrom(const std::string& field, const std::string& advertised) {
  absl::StatusOr<X25519PrivateKey> key = X25519PrivateKey::FromBytes(SecretBytes::CopyFrom(field));
  if (!key.ok() || key->public_key().bytes() != advertised) {
    return Loss("a private key is malformed or does not match the advertisement");
  }
  return key;
}

}  // namespace

namespace {

// `snapshot` serialised into a buffer of its size, its secret fields wiped.
SecretBytes Serialized(v1::SecAggClientSnapshot& snapshot) {
  std::string bytes(snapshot.ByteSizeLong(), '\0');
  // Serialising an in-memory message into a buffer of its size only fails on a broken
  // library; the buffer is sized up front so that no reallocation leaves a copy unwiped.
  TESSERA_SECAGG_CHECK(snapshot.SerializeToArray(bytes.data(), static_cast<int>(bytes.size())));
  WipeSecretFields(snapshot);
  return SecretBytes(std::move(bytes));
}

}  // namespace

SecretBytes SecAggClient::Snapshot() const {
  v1::SecAggClientSnapshot snapshot;
  impl_->FillSnapshot(snapshot, /*with_input=*/true);
  return Serialized(snapshot);
}

SecretBytes SecAggClient::SnapshotWithoutInput() const {
  v1::SecAggClientSnapshot snapshot;
  impl_->FillSnapshot(snapshot, /*with_input=*/false);
  return Serialized(snapshot);
}

SecretBytes SecAggClient::InputBytes() const { return impl_->InputBytes(); }

SecretBytes SecAggClient::Impl::InputBytes() const {
  // Sized once (WordsToBytes): no reallocation leaves an unwiped copy behind.
  return SecretBytes(internal::WordsToBytes(input));
}

void SecAggClient::Impl::FillSnapshot(v1::SecAggClientSnapshot& snapshot, bool with_input) const {
  snapshot.set_version(kClientSnapshotVersion);
  snapshot.set_client_id(self());
  *snapshot.mutable_setup() = setup;
  snapshot.set_state(ToProto(state));
  snapshot.set_abort_reason(abort_reason);
  snapshot.set_abort_detail(abort_detail);
  snapshot.set_abort_culprit(culprit);
  snapshot.set_certificate_check_unix_nanos(absl::ToUnixNanos(now));
  if (!input.empty() && with_input) {
    SecretBytes bytes = InputBytes();
    SetSecret(snapshot.mutable_input(), bytes);
  } else if (!input.empty()) {
    if (input_sha256.empty()) input_sha256 = crypto::Sha256(InputBytes().view());
    snapshot.set_input_sha256(input_sha256);
  }
  if (channel_key.has_value())
    SetSecret(snapshot.mutable_channel_private_key(), channel_key->bytes());
  if (mask_key.has_value()) SetSecret(snapshot.mutable_mask_private_key(), mask_key->bytes());
  if (!seed.empty()) SetSecret(snapshot.mutable_self_mask_seed(), seed);
  for (const auto& [owner, shares] : held) {
    v1::SecAggHeldShares* out = snapshot.add_held_shares();
    out->set_owner(owner);
    SetSecret(out->mutable_mask_key_share(), shares.mask_key.Serialize());
    SetSecret(out->mutable_seed_share(), shares.seed.Serialize());
  }
  for (const auto& [peer, key] : channel_keys) {
    v1::SecAggChannelKey* out = snapshot.add_channel_keys();
    out->set_client_id(peer);
    SetSecret(out->mutable_key(), key);
  }
  *snapshot.mutable_own_advertisement() = own_advertisement;
  snapshot.set_session_id(session_id);
  for (const v1::AdvertisementEntry& entry : entries) *snapshot.add_advertisement_entries() = entry;
  snapshot.mutable_share_holders()->Add(share_holders.begin(), share_holders.end());
  snapshot.mutable_signed_survivors()->Add(signed_survivors.begin(), signed_survivors.end());
  snapshot.set_coin(coin);
  if (coins.coins_size() > 0) *snapshot.mutable_coins() = coins;
}

absl::StatusOr<std::unique_ptr<SecAggClient>> SecAggClient::Restore(const ClientIdentity& identity,
                                                                    const ClientPolicy& policy,
                                                                    const SecretBytes& snapshot,
                                                                    const SecretBytes* input) {
  if (identity.signer == nullptr) {
    return absl::InvalidArgumentError("SecAggClient::Restore needs a signer");
  }
  v1::SecAggClientSnapshot parsed;
  const bool ok = parsed.ParseFromArray(snapshot.data(), static_cast<int>(snapshot.size()));
  auto impl = std::make_unique<Impl>();
  impl->identity = identity;
  impl->policy = policy;
  absl::Status restored = ok ? absl::OkStatus() : Loss("does not parse");
  if (restored.ok() && !parsed.input_sha256().empty()) {
    // The input kept apart (SnapshotWithoutInput) must be the one the snapshot names.
    if (!parsed.input().empty()) {
      restored = Loss("it holds both its input and the digest of an input kept apart");
    } else if (input == nullptr || input->empty()) {
      restored = Loss("its input is kept apart and was not given");
    } else if (crypto::Sha256(input->view()) != parsed.input_sha256()) {
      restored = Loss("the input given is not the one it was taken with");
    } else {
      SetSecret(parsed.mutable_input(), *input);
      impl->input_sha256 = parsed.input_sha256();
    }
  }
  if (restored.ok()) restored = impl->RestoreFrom(parsed);
  WipeSecretFields(parsed);
  if (!restored.ok()) return restored;
  return std::unique_ptr<SecAggClient>(new SecAggClient(std::move(impl)));
}

absl::Status SecAggClient::Impl::RestoreFrom(const v1::SecAggClientSnapshot& snapshot) {
  if (snapshot.version() != kClientSnapshotVersion) {
    return Loss(
        absl::StrCat("version ", snapshot.version(), ", expected ", kClientSnapshotVersion));
  }
  if (snapshot.client_id() != self()) return Loss("it is another client's snapshot");
  if (auto refusal = internal::CheckSetup(self(), policy, snapshot.setup())) {
    return Loss(absl::StrCat("its setup is refused: ", refusal->detail));
  }
  setup = snapshot.setup();
  setup_digest = SetupDigest(setup);
  now = absl::FromUnixNanos(snapshot.certificate_check_unix_nanos());
  const std::optional<ClientState> restored_state = FromProto(snapshot.state());
  if (!restored_state.has_value()) return Loss("unknown state");
  state = *restored_state;
  abort_reason = snapshot.abort_reason();
  abort_detail = snapshot.abort_detail();
  culprit = snapshot.abort_culprit();
  if ((state == ClientState::kAborted) != (abort_reason != v1::SECAGG_CLIENT_ABORT_UNSPECIFIED)) {
    return Loss("the abort reason does not match the state");
  }
  if (!culprit.empty() && (state != ClientState::kAborted || culprit == self())) {
    return Loss("a culprit without an abort, or this client itself");
  }
  own_advertisement = snapshot.own_advertisement();
  if (own_advertisement.setup_digest() != setup_digest) {
    return Loss("this client's advertisement is for another setup");
  }
  coin = snapshot.coin();
  if (sparse() ? coin.size() != kCoinBytes || CoinCommitment(setup_digest, self(), coin) !=
                                                  own_advertisement.coin_commitment()
               : !coin.empty() || !own_advertisement.coin_commitment().empty()) {
    return Loss("the coin does not match this client's advertisement or the setup");
  }
  RETURN_IF_ERROR(RestoreSecrets(snapshot));
  RETURN_IF_ERROR(RestoreList(snapshot));
  return RestoreRounds(snapshot);
}

absl::Status SecAggClient::Impl::RestoreSecrets(const v1::SecAggClientSnapshot& snapshot) {
  if (state == ClientState::kCompleted || state == ClientState::kAborted) {
    // The session is over: its secrets were wiped and must not come back.
    if (HasSecretFields(snapshot)) return Loss("an ended session's snapshot holds secrets");
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(X25519PrivateKey channel,
                   KeyFrom(snapshot.channel_private_key(), own_advertisement.channel_public_key()));
  ASSIGN_OR_RETURN(X25519PrivateKey mask,
                   KeyFrom(snapshot.mask_private_key(), own_advertisement.mask_public_key()));
  channel_key.emplace(std::move(channel));
  mask_key.emplace(std::move(mask));
  if (snapshot.self_mask_seed().size() != kSelfMaskSeedBytes) {
    return Loss("the self-mask seed has the wrong size");
  }
  seed = SecretBytes::CopyFrom(snapshot.self_mask_seed());
  const bool input_due = state == ClientState::kAdvertised || state == ClientState::kCoinRevealed ||
                         state == ClientState::kSharesSent;
  const size_t input_bytes = input_due ? size_t{setup.vector_words()} * 4 : 0;
  if (snapshot.input().size() != input_bytes) {
    return Loss(input_due ? "the input has the wrong size" : "the input is still there");
  }
  if (input_due) {
    input.resize(setup.vector_words());
    internal::BytesToWords(snapshot.input(), input);
  }
  return absl::OkStatus();
}

absl::Status SecAggClient::Impl::RestoreList(const v1::SecAggClientSnapshot& snapshot) {
  const auto& listed = snapshot.advertisement_entries();
  if (listed.empty()) {
    if (state == ClientState::kAdvertised || state == ClientState::kAborted) {
      return snapshot.coins().coins().empty() ? absl::OkStatus() : Loss("coins without a list");
    }
    return Loss("the advertisement list is missing");
  }
  if (state == ClientState::kAdvertised) return Loss("an advertisement list before it came");
  bool own_found = false;
  for (int i = 0; i < listed.size(); ++i) {
    const v1::AdvertisementEntry& entry = listed[i];
    if (i > 0 && !(listed[i - 1].client_id() < entry.client_id())) {
      return Loss("the advertisement list is not sorted");
    }
    if (entry.client_id() == self()) own_found = Same(entry.advertisement(), own_advertisement);
  }
  if (!own_found) return Loss("this client's advertisement is not in the list as sent");
  entries.assign(listed.begin(), listed.end());
  session_id = SessionId(setup_digest, entries);
  if (snapshot.session_id() != session_id) return Loss("the session id does not match the list");

  // SecAgg+: the coins, from SHARES_SENT on (an aborted session may have them or not).
  const bool coins_due = sparse() && state != ClientState::kCoinRevealed &&
                         (state != ClientState::kAborted || !snapshot.coins().coins().empty());
  if (!coins_due && !snapshot.coins().coins().empty()) return Loss("coins before they came");
  if (coins_due) {
    const v1::CoinList& list = snapshot.coins();
    if (std::optional<std::string> wrong = WrongCoin(list)) return Loss(*wrong);
    coins = list;
    if (!DrawNeighbours().ok()) return Loss("no graph can be drawn from the coins");
  }

  // The peers this client works with: every listed client, or in SecAgg+ its neighbours
  // (none before the coins).
  std::vector<Peer> restored;
  for (int i = 0; i < listed.size(); ++i) {
    const v1::AdvertisementEntry& entry = listed[i];
    if (entry.client_id() != self() && !IsNeighbour(entry.client_id())) continue;
    absl::StatusOr<Peer> peer = PeerFrom(entry, static_cast<uint32_t>(i + 1));
    if (!peer.ok()) return Loss(absl::StrCat("the entry of ", entry.client_id(), " is malformed"));
    restored.push_back(*std::move(peer));
  }
  SetPeers(std::move(restored));
  return absl::OkStatus();
}

absl::Status SecAggClient::Impl::RestoreRounds(const v1::SecAggClientSnapshot& snapshot) {
  const bool running = state != ClientState::kCompleted && state != ClientState::kAborted;
  const bool relayed =
      state == ClientState::kMaskedInputSent || state == ClientState::kConsistencySent || !running;
  const auto in_list = [this](const std::string& id) { return Listed(id); };
  const auto& holders = snapshot.share_holders();
  if (!StrictlySorted(holders) || !std::all_of(holders.begin(), holders.end(), in_list) ||
      (!relayed && !holders.empty()) ||
      (running && relayed && !std::binary_search(holders.begin(), holders.end(), self()))) {
    return Loss("the share holders do not fit the state");
  }
  share_holders.assign(holders.begin(), holders.end());
  const auto& survivors = snapshot.signed_survivors();
  const auto held_by_holder = [&](const std::string& id) {
    return std::binary_search(share_holders.begin(), share_holders.end(), id);
  };
  if (!StrictlySorted(survivors) ||
      !std::all_of(survivors.begin(), survivors.end(), held_by_holder) ||
      (state == ClientState::kConsistencySent &&
       !std::binary_search(survivors.begin(), survivors.end(), self())) ||
      (running && state != ClientState::kConsistencySent && !survivors.empty())) {
    return Loss("the signed survivors do not fit the state");
  }
  signed_survivors.assign(survivors.begin(), survivors.end());
  if (!running) return absl::OkStatus();

  // The shares held: this client's own from SHARES_SENT on, every holder's once relayed.
  std::set<std::string> want;
  if (state == ClientState::kSharesSent) want.insert(self());
  if (relayed) {
    for (const std::string& id : share_holders) {
      if (id == self() || IsNeighbour(id)) want.insert(id);
    }
  }
  for (const v1::SecAggHeldShares& shares : snapshot.held_shares()) {
    auto key_share = ShamirShare::Parse(shares.mask_key_share());
    auto seed_share = ShamirShare::Parse(shares.seed_share());
    if (!want.contains(shares.owner()) || held.contains(shares.owner()) || !key_share.ok() ||
        !seed_share.ok() || key_share->x != peers[peer_index.at(self())].point ||
        seed_share->x != key_share->x) {
      return Loss("a held share is malformed, repeated or not this client's to hold");
    }
    held[shares.owner()] = HeldShares{*key_share, *seed_share};
  }
  if (held.size() != want.size()) return Loss("held shares are missing");
  // The share channels' keys, in SHARES_SENT only (a snapshot without them, taken before
  // they were kept, has the channels agreed again).
  for (const v1::SecAggChannelKey& key : snapshot.channel_keys()) {
    if (state != ClientState::kSharesSent || !Listed(key.client_id()) ||
        !IsNeighbour(key.client_id()) || channel_keys.contains(key.client_id()) ||
        key.key().size() != crypto::AesGcm256::kKeyBytes) {
      return Loss("a share channel key is malformed, repeated or not this client's");
    }
    channel_keys.insert_or_assign(key.client_id(), SecretBytes::CopyFrom(key.key()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::secagg
