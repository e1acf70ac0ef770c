// The client's advertisement list step and, in SecAgg+, the coin list: the checks of the
// list's entries (certificates, signatures, keys, coins), the graph, and the shares it
// sends its neighbours (or, in full Bonawitz, every other listed client).
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/crl.h"
#include "crypto/hash.h"
#include "crypto/key_agreement.h"
#include "crypto/pki.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "secagg/client.h"
#include "secagg/internal/client_impl.h"
#include "secagg/internal/wire.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"

namespace tessera::secagg {

using crypto::kShamirShareBytes;
using crypto::RequireRole;
using crypto::Role;
using crypto::SecretBytes;
using crypto::Sha256;
using crypto::ShamirShare;
using crypto::ShamirSplitAt;
using crypto::Verifier;
using crypto::VerifyCertificate;
using crypto::X25519PublicKey;
using internal::kDigestBytes;
namespace {

using internal::AppendField;

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
  // The list may name the certificate by its digest (protocol version 2), which goes into
  // the session id: both, when given, must be this client's.
  const bool own_certificate =
      (mine.certificate().empty() || mine.certificate() == own_advertisement.certificate()) &&
      (mine.certificate_sha256().empty() ||
       mine.certificate_sha256() == Sha256(own_advertisement.certificate())) &&
      !(mine.certificate().empty() && mine.certificate_sha256().empty());
  if (!own_certificate || mine.channel_public_key() != own_advertisement.channel_public_key() ||
      mine.mask_public_key() != own_advertisement.mask_public_key() ||
      mine.setup_digest() != own_advertisement.setup_digest() ||
      mine.signature() != own_advertisement.signature() ||
      mine.coin_commitment() != own_advertisement.coin_commitment()) {
    return Abort(v1::SECAGG_OWN_ADVERTISEMENT_ALTERED,
                 "this client's advertisement in the list differs from the one it sent");
  }

  // Every entry well-formed (the certificates and signatures are checked for the entries
  // this client works with, CheckEntries) and every key distinct.
  for (const v1::AdvertisementEntry& entry : listed) {
    const v1::KeyAdvertisement& ad = entry.advertisement();
    if (!X25519PublicKey::FromBytes(ad.channel_public_key()).ok() ||
        !X25519PublicKey::FromBytes(ad.mask_public_key()).ok() ||
        ad.setup_digest().size() != kDigestBytes ||
        ad.coin_commitment().size() != (sparse() ? kDigestBytes : 0) ||
        (ad.certificate_sha256().size() != kDigestBytes && !ad.certificate_sha256().empty())) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                   absl::StrCat("the advertisement of ", entry.client_id(),
                                " has keys, a digest or a coin commitment of the wrong size"));
    }
    if (ad.certificate().empty() && ad.certificate_sha256().empty()) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                   absl::StrCat("the advertisement of ", entry.client_id(),
                                " has neither a certificate nor its digest"));
    }
  }
  const auto distinct_keys = [&]() -> absl::Status {
    std::set<std::string> keys;
    for (const v1::AdvertisementEntry& entry : listed) {
      const v1::KeyAdvertisement& ad = entry.advertisement();
      if (!keys.insert(ad.channel_public_key()).second ||
          !keys.insert(ad.mask_public_key()).second) {
        return Abort(v1::SECAGG_DUPLICATE_KEYS,
                     absl::StrCat("the advertisement of ", entry.client_id(),
                                  " repeats a public key of the list"));
      }
    }
    return absl::OkStatus();
  };
  entries.assign(listed.begin(), listed.end());
  session_id = SessionId(setup_digest, entries);
  if (!sparse()) {
    ASSIGN_OR_RETURN(std::vector<Peer> checked, CheckEntries());
    RETURN_IF_ERROR(distinct_keys());
    return ShareKeys(std::move(checked));
  }
  RETURN_IF_ERROR(distinct_keys());
  // SecAgg+: k must still be enough for the sites listed, then the coin goes out.
  if (absl::Status enough =
          ValidateSparse(setup.sparse(), static_cast<uint32_t>(setup.invited_size()),
                         static_cast<uint32_t>(listed.size()));
      !enough.ok()) {
    return Abort(v1::SECAGG_TOO_FEW_CLIENTS, std::string(enough.message()));
  }
  v1::SecAggClientMessage reply;
  reply.mutable_coin()->set_coin(coin);
  state = ClientState::kCoinRevealed;
  return reply;
}

std::optional<std::string> SecAggClient::Impl::WrongCoin(const v1::CoinList& list) const {
  if (static_cast<size_t>(list.coins_size()) != entries.size()) {
    return absl::StrCat(list.coins_size(), " coins for ", entries.size(), " listed clients");
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const v1::ListedCoin& listed = list.coins(static_cast<int>(i));
    const std::string& id = entries[i].client_id();
    if (listed.client_id() != id) {
      return absl::StrCat("coin ", i + 1, " is labelled ", listed.client_id(), ", the list has ",
                          id, " there");
    }
    if (listed.coin().size() != kCoinBytes || CoinCommitment(setup_digest, id, listed.coin()) !=
                                                  entries[i].advertisement().coin_commitment()) {
      return absl::StrCat("the coin of ", id, " does not match its commitment");
    }
  }
  return std::nullopt;
}

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::OnCoins(const v1::CoinList& list) {
  if (std::optional<std::string> wrong = WrongCoin(list)) {
    return Abort(v1::SECAGG_WRONG_COIN, *std::move(wrong));
  }
  coins = list;
  RETURN_IF_ERROR(DrawNeighbours());
  ASSIGN_OR_RETURN(std::vector<Peer> checked, CheckEntries());
  return ShareKeys(std::move(checked));
}

absl::Status SecAggClient::Impl::DrawNeighbours() {
  // This client's row of the graph only: O(n), where the whole graph is O(n k).
  const v1::AdvertisementEntry* self_entry = EntryOf(self());
  const std::vector<v1::ListedCoin> listed(coins.coins().begin(), coins.coins().end());
  absl::StatusOr<std::vector<uint32_t>> mine =
      NeighboursOf(GraphSeed(session_id, listed), static_cast<uint32_t>(entries.size()),
                   setup.sparse().neighbours(), static_cast<uint32_t>(self_entry - entries.data()));
  if (!mine.ok()) {
    return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                 absl::StrCat("no graph for this list: ", mine.status().message()));
  }
  neighbours.clear();
  for (uint32_t position : *mine) neighbours.insert(entries[position].client_id());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SecAggClient::Impl::Peer>> SecAggClient::Impl::CheckEntries() {
  std::vector<Peer> checked;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& id = entries[i].client_id();
    if (id != self() && !IsNeighbour(id)) continue;
    ASSIGN_OR_RETURN(Peer peer, CheckEntry(entries[i], static_cast<uint32_t>(i + 1)));
    checked.push_back(std::move(peer));
  }
  return checked;
}

absl::StatusOr<SecAggClient::Impl::Peer> SecAggClient::Impl::CheckEntry(
    const v1::AdvertisementEntry& entry, uint32_t point) {
  // Certificate of the federation CA naming that client, signature over the setup it
  // claims, and that setup being this session's.
  const v1::KeyAdvertisement& ad = entry.advertisement();
  const std::string& id = entry.client_id();
  if (id != self()) {
    if (absl::Status trusted = CheckCertificate(id, ListedCertificate(entry)); !trusted.ok()) {
      return Abort(v1::SECAGG_UNTRUSTED_CERTIFICATE, std::string(trusted.message()));
    }
  }
  absl::StatusOr<Peer> peer = PeerFrom(entry, point);
  if (!peer.ok()) {
    return Abort(v1::SECAGG_UNTRUSTED_CERTIFICATE,
                 absl::StrCat("the certificate of ", id, ": ", peer.status().message()));
  }
  if (id != self()) {
    if (!peer->verifier
             ->Verify(AdvertisementSigningInput(ad.setup_digest(), id, ad.channel_public_key(),
                                                ad.mask_public_key(), ad.coin_commitment()),
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
  return peer;
}

std::string SecAggClient::Impl::ListedCertificate(const v1::AdvertisementEntry& entry) const {
  const v1::KeyAdvertisement& ad = entry.advertisement();
  if (entry.client_id() == self()) return identity.certificate_pem;
  if (!ad.certificate_sha256().empty() && Sha256(ad.certificate()) != ad.certificate_sha256()) {
    return std::string();
  }
  return ad.certificate();
}

absl::Status SecAggClient::Impl::CheckCertificate(const std::string& id,
                                                  const std::string& pem) const {
  if (pem.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "no certificate of ", id,
        " matches the digest the advertisement list gives (the site could not get it, or got "
        "another one)"));
  }
  auto info = VerifyCertificate(pem, identity.ca_cert_pem, now);
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the certificate of ", id, ": ", info.status().message()));
  }
  if (info->node_id != id) {
    return absl::UnauthenticatedError(
        absl::StrCat("the entry for ", id, " carries a certificate for ", info->node_id));
  }
  RETURN_IF_ERROR(RequireRole(*info, Role::kInstitution));
  if (identity.revocations != nullptr) {
    if (auto revoked = identity.revocations->Find(info->serial_hex)) {
      return absl::UnauthenticatedError(
          absl::StrCat("the advertisement of ", id, " is refused: the ",
                       crypto::DescribeRevocation(*info, *revoked), " (CRL number ",
                       identity.revocations->number(), ")"));
    }
  }
  return absl::OkStatus();
}

bool SecAggClient::Impl::SignatureValid(const std::string& id, const std::string& message,
                                        const std::string& signature) const {
  if (auto it = peer_index.find(id); it != peer_index.end() && peers[it->second].verifier) {
    return peers[it->second].verifier->Verify(message, signature).ok();
  }
  std::string pem;
  if (id == self()) {
    pem = identity.certificate_pem;  // its key is its certificate's
  } else {
    // SecAgg+: a listed client this client does not work with; its certificate checked now.
    const v1::AdvertisementEntry* entry = EntryOf(id);
    if (entry == nullptr) return false;
    pem = ListedCertificate(*entry);
    if (!CheckCertificate(id, pem).ok()) return false;
  }
  auto verifier = Verifier::Create(pem);
  return verifier.ok() && verifier->Verify(message, signature).ok();
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

  // Shares at the points (1-based list positions) of the peers, this client included: every
  // listed client, or in SecAgg+ its closed neighbourhood. In `peers` order.
  std::vector<uint32_t> points;
  points.reserve(peers.size());
  for (const Peer& peer : peers) points.push_back(peer.point);
  const int t = static_cast<int>(share_threshold());
  ASSIGN_OR_RETURN(std::vector<ShamirShare> key_shares,
                   ShamirSplitAt(mask_key->bytes(), t, points));
  ASSIGN_OR_RETURN(std::vector<ShamirShare> seed_shares, ShamirSplitAt(seed, t, points));

  v1::SecAggClientMessage reply;
  v1::ShareKeysResponse* response = reply.mutable_share_keys();
  for (size_t i = 0; i < peers.size(); ++i) {
    const Peer& peer = peers[i];
    if (!IsNeighbour(peer.id)) continue;
    absl::StatusOr<SecretBytes> key = ChannelKey(peer);
    if (!key.ok()) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                   absl::StrCat("no share channel with ", peer.id, ": ", key.status().message()));
    }
    channel_keys.insert_or_assign(peer.id, key->Clone());
    ASSIGN_OR_RETURN(crypto::AesGcm256 channel, crypto::AesGcm256::Create(*std::move(key)));
    const SecretBytes plaintext = SharePlaintext(self(), peer.id, key_shares[i], seed_shares[i]);
    ASSIGN_OR_RETURN(
        std::string ciphertext,
        channel.Encrypt(plaintext.view(), ShareAssociatedData(session_id, self(), peer.id)));
    v1::EncryptedShare* share = response->add_shares();
    share->set_sender(self());
    share->set_receiver(peer.id);
    share->set_ciphertext(std::move(ciphertext));
  }
  const size_t me = peer_index.at(self());
  HeldShares& kept = held[self()];
  kept.mask_key = key_shares[me];
  kept.seed = seed_shares[me];
  response->set_self_mask_commitment(SelfMaskCommitment(session_id, self(), seed));
  state = ClientState::kSharesSent;
  return reply;
}

}  // namespace tessera::secagg
