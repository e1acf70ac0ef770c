// SecAggServer::Snapshot and Restore: the server's state at a step boundary as a
// v1::SecAggServerSnapshot. Nothing secret passes through here: the state at a boundary
// holds no plaintext share (see server.h).
#include <algorithm>
#include <bit>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/key_agreement.h"
#include "crypto/signature.h"
#include "proto/secagg_state.pb.h"
#include "secagg/internal/server_impl.h"
#include "secagg/internal/wire.h"
#include "secagg/protocol.h"
#include "secagg/server.h"

namespace tessera::secagg {

using crypto::Verifier;
using crypto::X25519PrivateKey;
using crypto::X25519PublicKey;
namespace {

constexpr uint32_t kServerSnapshotVersion = 1;
constexpr size_t kDigestBytes = 32;

absl::Status Loss(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("secure-aggregation server snapshot: ", what));
}

// Ids sorted, without repeats, each accepted by `known`.
template <typename Container, typename Known>
bool SortedKnown(const Container& ids, Known known) {
  for (size_t i = 0; i < static_cast<size_t>(ids.size()); ++i) {
    if (!known(ids[i]) || (i > 0 && !(ids[i - 1] < ids[i]))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<v1::SecAggServerSnapshot> SecAggServer::Snapshot() const {
  const Impl& s = *impl_;
  if (s.state == ServerState::kCompleted) {
    return absl::FailedPreconditionError(
        "a completed secure-aggregation session has no snapshot (it would hold the sum)");
  }
  if (s.state == ServerState::kCollecting && !s.answered.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("a secure-aggregation snapshot is taken only at a step boundary; answers of ",
                     v1::SecAggRound_Name(s.round), " were already accepted"));
  }
  v1::SecAggServerSnapshot snapshot;
  s.FillSnapshot(snapshot);
  return snapshot;
}

absl::StatusOr<std::string> SecAggServer::SnapshotBytes() const {
  ASSIGN_OR_RETURN(const SnapshotPieces pieces, SnapshotInPieces());
  return pieces.Joined();
}

size_t SecAggServer::SnapshotPieces::size() const {
  size_t total = 0;
  for (std::string_view piece : pieces_) total += piece.size();
  return total;
}

std::string SecAggServer::SnapshotPieces::Joined() const {
  std::string joined;
  joined.reserve(size());
  for (std::string_view piece : pieces_) joined.append(piece.data(), piece.size());
  return joined;
}

absl::StatusOr<SecAggServer::SnapshotPieces> SecAggServer::SnapshotInPieces() const {
  const Impl& s = *impl_;
  if (s.state == ServerState::kCompleted ||
      (s.state == ServerState::kCollecting && !s.answered.empty())) {
    return Snapshot().status();  // the same refusal
  }
  v1::SecAggServerSnapshot snapshot;
  s.FillSnapshot(snapshot, /*bulk=*/false);
  // The message without its bulk, the sum's field header, then each relay as a `relays`
  // entry: its header, its receiver and the relay's header (owned), followed by the relay's
  // bytes (viewed). Owned runs are noted as offsets and turned into views once `owned` is
  // complete (it may move while it grows).
  const bool with_sum = s.SumInSnapshot();
  constexpr bool kWordsAreWireBytes = std::endian::native == std::endian::little;
  size_t owned_size = snapshot.ByteSizeLong() + 11 + (kWordsAreWireBytes ? 0 : 4 * s.sum.size());
  for (const auto& [receiver, relay] : s.relays) owned_size += 33 + receiver.size();
  SnapshotPieces out;
  out.owned_ = std::make_unique<std::string>();
  std::string& owned = *out.owned_;
  owned.reserve(owned_size);
  struct Piece {
    size_t offset = 0;  // in `owned`, when `viewed` is empty
    size_t size = 0;
    std::string_view viewed;
  };
  std::vector<Piece> pieces;
  size_t from = 0;
  const auto view = [&](std::string_view bytes) {
    pieces.push_back({from, owned.size() - from, {}});
    pieces.push_back({0, 0, bytes});
    from = owned.size();
  };
  snapshot.AppendToString(&owned);
  if (with_sum) {
    internal::AppendProtoFieldHeader(v1::SecAggServerSnapshot::kMaskedSumFieldNumber,
                                     4 * s.sum.size(), &owned);
    if constexpr (kWordsAreWireBytes) {
      view(std::string_view(reinterpret_cast<const char*>(s.sum.data()), 4 * s.sum.size()));
    } else {
      internal::AppendWordsAsBytes(s.sum, &owned);
    }
  }
  std::string head;
  for (const auto& [receiver, relay] : s.relays) {
    head.clear();
    internal::AppendProtoField(v1::SecAggShareRelayEntry::kReceiverFieldNumber, receiver, &head);
    internal::AppendProtoFieldHeader(v1::SecAggShareRelayEntry::kRelayFieldNumber, relay->size(),
                                     &head);
    internal::AppendProtoFieldHeader(v1::SecAggServerSnapshot::kRelaysFieldNumber,
                                     head.size() + relay->size(), &owned);
    owned += head;
    view(*relay);
  }
  pieces.push_back({from, owned.size() - from, {}});
  for (const Piece& piece : pieces) {
    const std::string_view bytes = piece.viewed.empty()
                                       ? std::string_view(owned).substr(piece.offset, piece.size)
                                       : piece.viewed;
    if (!bytes.empty()) out.pieces_.push_back(bytes);
  }
  return out;
}

bool SecAggServer::Impl::SumInSnapshot() const {
  return !sum.empty() && !(state == ServerState::kCollecting && round == v1::SECAGG_MASKED_INPUT);
}

void SecAggServer::Impl::FillSnapshot(v1::SecAggServerSnapshot& snapshot, bool bulk) const {
  snapshot.set_version(kServerSnapshotVersion);
  *snapshot.mutable_setup() = setup;
  snapshot.set_state(state == ServerState::kAborted ? v1::SECAGG_SERVER_ABORTED
                                                    : v1::SECAGG_SERVER_COLLECTING);
  snapshot.set_round(round);
  snapshot.set_abort_reason(abort_reason);
  snapshot.set_abort_detail(abort_detail);
  for (const ClientDrop& drop : drops) {
    v1::SecAggDropRecord* record = snapshot.add_drops();
    record->set_client_id(drop.client_id);
    record->set_round(drop.round);
    record->set_reason(drop.reason);
    record->set_detail(drop.detail);
  }
  snapshot.mutable_expected()->Add(expected.begin(), expected.end());
  snapshot.mutable_dropped()->Add(dropped.begin(), dropped.end());
  for (const auto& [id, client] : clients) {
    v1::SecAggServerClient* out = snapshot.add_clients();
    out->set_client_id(id);
    *out->mutable_advertisement() = client.advertisement;
    out->set_point(client.point);
    out->set_self_mask_commitment(client.commitment);
    out->set_coin(client.coin);
  }
  snapshot.set_session_id(session_id);
  snapshot.mutable_share_holders()->Add(holders.begin(), holders.end());
  for (const auto& [receiver, relay] : relays) {
    if (!bulk) break;
    v1::SecAggShareRelayEntry* entry = snapshot.add_relays();
    entry->set_receiver(receiver);
    if (!entry->mutable_relay()->ParseFromString(*relay)) entry->clear_relay();  // it parses
  }
  if (bulk && SumInSnapshot()) snapshot.set_masked_sum(internal::WordsToBytes(sum));
  snapshot.mutable_survivors()->Add(survivors.begin(), survivors.end());
  snapshot.mutable_dropped_holders()->Add(dropped_holders.begin(), dropped_holders.end());
  if (round == v1::SECAGG_UNMASKING) *snapshot.mutable_unmasking_request() = unmasking_request;
}

absl::StatusOr<std::unique_ptr<SecAggServer>> SecAggServer::Restore(
    const v1::SecAggServerSnapshot& snapshot, ServerOptions options) {
  if (snapshot.version() != kServerSnapshotVersion) {
    return Loss(
        absl::StrCat("version ", snapshot.version(), ", expected ", kServerSnapshotVersion));
  }
  if (absl::Status valid = internal::ValidateServerSetup(snapshot.setup(), options); !valid.ok()) {
    return Loss(absl::StrCat("its setup is refused: ", valid.message()));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  ASSIGN_OR_RETURN(impl->probe, internal::SmallOrderProbe());
  RETURN_IF_ERROR(impl->RestoreFrom(snapshot));
  return std::unique_ptr<SecAggServer>(new SecAggServer(std::move(impl)));
}

absl::Status SecAggServer::Impl::RestoreFrom(const v1::SecAggServerSnapshot& snapshot) {
  setup = snapshot.setup();
  setup_digest = SetupDigest(setup);
  if (snapshot.state() != v1::SECAGG_SERVER_COLLECTING &&
      snapshot.state() != v1::SECAGG_SERVER_ABORTED) {
    return Loss("the state is neither collecting nor aborted");
  }
  state = snapshot.state() == v1::SECAGG_SERVER_ABORTED ? ServerState::kAborted
                                                        : ServerState::kCollecting;
  if (StepIndex(snapshot.round()) < 0 ||
      (snapshot.round() == v1::SECAGG_REVEAL_COINS && !setup.has_sparse())) {
    return Loss("unknown round");
  }
  round = snapshot.round();
  abort_reason = snapshot.abort_reason();
  abort_detail = snapshot.abort_detail();
  if ((state == ServerState::kAborted) != (abort_reason != v1::SECAGG_SERVER_ABORT_UNSPECIFIED)) {
    return Loss("the abort reason does not match the state");
  }
  const auto invited = [this](const std::string& id) {
    return std::binary_search(setup.invited().begin(), setup.invited().end(), id);
  };
  for (const v1::SecAggDropRecord& record : snapshot.drops()) {
    if (!invited(record.client_id())) return Loss("a drop of a client never invited");
    drops.push_back(
        ClientDrop{record.client_id(), record.round(), record.reason(), record.detail()});
  }
  if (!SortedKnown(snapshot.expected(), invited) || !SortedKnown(snapshot.dropped(), invited)) {
    return Loss("expected or dropped clients that were never invited");
  }
  expected.insert(snapshot.expected().begin(), snapshot.expected().end());
  dropped.insert(snapshot.dropped().begin(), snapshot.dropped().end());
  RETURN_IF_ERROR(RestoreClients(snapshot));
  return RestoreRounds(snapshot);
}

absl::Status SecAggServer::Impl::RestoreClients(const v1::SecAggServerSnapshot& snapshot) {
  const auto& listed = snapshot.clients();
  if (state == ServerState::kCollecting && round == v1::SECAGG_ADVERTISE_KEYS && !listed.empty()) {
    return Loss("advertisements accepted before the step boundary");
  }
  for (int i = 0; i < listed.size(); ++i) {
    const v1::SecAggServerClient& record = listed[i];
    const v1::KeyAdvertisement& ad = record.advertisement();
    if (!std::binary_search(setup.invited().begin(), setup.invited().end(), record.client_id()) ||
        (i > 0 && !(listed[i - 1].client_id() < record.client_id()))) {
      return Loss("the clients are not sorted or were never invited");
    }
    auto verifier = Verifier::Create(ad.certificate());
    if (!verifier.ok() || !X25519PublicKey::FromBytes(ad.channel_public_key()).ok() ||
        !X25519PublicKey::FromBytes(ad.mask_public_key()).ok() ||
        record.point() != static_cast<uint32_t>(i + 1) ||
        (!record.self_mask_commitment().empty() &&
         record.self_mask_commitment().size() != kDigestBytes) ||
        (!record.coin().empty() &&
         CoinCommitment(setup_digest, record.client_id(), record.coin()) != ad.coin_commitment())) {
      return Loss(absl::StrCat("the record of ", record.client_id(), " is malformed"));
    }
    Client& client = clients[record.client_id()];
    client.advertisement = ad;
    client.advertisement.set_certificate_sha256(crypto::Sha256(ad.certificate()));
    client.verifier.emplace(*std::move(verifier));
    client.point = record.point();
    client.commitment = record.self_mask_commitment();
    client.coin = record.coin();
    public_keys.insert(ad.channel_public_key());
    public_keys.insert(ad.mask_public_key());
  }
  if (listed.empty() || snapshot.session_id().empty()) {
    if (state == ServerState::kCollecting && StepIndex(round) > 0) {
      return Loss("the advertised clients or the session id are missing");
    }
    return absl::OkStatus();
  }
  BuildList();
  if (snapshot.session_id() != session_id) return Loss("the session id does not match");
  // The list is posted only in SHARE_KEYS, or REVEAL_COINS in SecAgg+ (the next close
  // clears it).
  const v1::SecAggRound posted = sparse() ? v1::SECAGG_REVEAL_COINS : v1::SECAGG_SHARE_KEYS;
  if (state != ServerState::kCollecting || round != posted) advertisement_list.Clear();
  // SecAgg+: from SHARE_KEYS on every listed client's coin is in, and the graph follows.
  if (sparse() && state == ServerState::kCollecting && StepIndex(round) >= 2) {
    for (const auto& [id, client] : clients) {
      if (client.coin.empty()) return Loss(absl::StrCat("the coin of ", id, " is missing"));
    }
    if (!DrawGraph().ok()) return Loss("no graph can be drawn from the coins");
  }
  return absl::OkStatus();
}

absl::Status SecAggServer::Impl::RestoreRounds(const v1::SecAggServerSnapshot& snapshot) {
  const bool collecting = state == ServerState::kCollecting;
  const auto advertised = [this](const std::string& id) { return clients.contains(id); };
  if (collecting && StepIndex(round) > 0 &&
      !std::all_of(expected.begin(), expected.end(), advertised)) {
    return Loss("an expected client never advertised");
  }
  const auto& holder_ids = snapshot.share_holders();
  const auto committed = [this](const std::string& id) {
    return clients.contains(id) && clients.at(id).commitment.size() == kDigestBytes;
  };
  if (!SortedKnown(holder_ids, committed) ||
      (collecting && (StepIndex(round) >= 3) != !holder_ids.empty())) {
    return Loss("the share holders do not fit the round");
  }
  holders.assign(holder_ids.begin(), holder_ids.end());
  const auto is_holder = [this](const std::string& id) {
    return std::binary_search(holders.begin(), holders.end(), id);
  };
  for (const v1::SecAggShareRelayEntry& entry : snapshot.relays()) {
    if (!is_holder(entry.receiver()) ||
        !relays
             .emplace(entry.receiver(),
                      std::make_shared<const std::string>(entry.relay().SerializeAsString()))
             .second) {
      return Loss("a relay for a client that is not a share holder");
    }
  }
  if (collecting && round == v1::SECAGG_MASKED_INPUT && relays.size() != holders.size()) {
    return Loss("a share holder's relay is missing");
  }
  const bool summing = collecting && StepIndex(round) >= 3;
  const size_t sum_bytes = summing ? size_t{setup.vector_words()} * 4 : 0;
  // At the masked-input boundary the zero sum is left out (earlier versions wrote it).
  const bool zero_sum = collecting && round == v1::SECAGG_MASKED_INPUT;
  if (snapshot.masked_sum().size() != sum_bytes && !(zero_sum && snapshot.masked_sum().empty())) {
    return Loss("the running sum does not fit the round");
  }
  sum.assign(summing ? setup.vector_words() : 0, 0u);
  if (!snapshot.masked_sum().empty()) internal::BytesToWords(snapshot.masked_sum(), sum);
  // Survivors and dropped holders partition the share holders once the masked inputs
  // are in (and the survivors are at least the threshold while collecting).
  survivors.assign(snapshot.survivors().begin(), snapshot.survivors().end());
  dropped_holders.assign(snapshot.dropped_holders().begin(), snapshot.dropped_holders().end());
  const bool partitioned = !survivors.empty() || !dropped_holders.empty();
  const bool disjoint =
      std::none_of(dropped_holders.begin(), dropped_holders.end(), [this](const std::string& id) {
        return std::binary_search(survivors.begin(), survivors.end(), id);
      });
  if (!SortedKnown(survivors, is_holder) || !SortedKnown(dropped_holders, is_holder) || !disjoint ||
      (partitioned && survivors.size() + dropped_holders.size() != holders.size()) ||
      (collecting && (StepIndex(round) >= 4) != (survivors.size() >= threshold()))) {
    return Loss("the survivors do not fit the round or the share holders");
  }
  const v1::UnmaskingRequest& request = snapshot.unmasking_request();
  if (collecting && round == v1::SECAGG_UNMASKING &&
      (!std::equal(request.survivors().begin(), request.survivors().end(), survivors.begin(),
                   survivors.end()) ||
       !std::equal(request.dropped().begin(), request.dropped().end(), dropped_holders.begin(),
                   dropped_holders.end()) ||
       static_cast<uint32_t>(request.signatures_size()) < threshold())) {
    return Loss("the unmasking request does not fit the survivors");
  }
  if (round == v1::SECAGG_UNMASKING) unmasking_request = request;
  return absl::OkStatus();
}

}  // namespace tessera::secagg
