// SecAggServer: closing each round, and the unmasking (rebuilding secrets from shares,
// removing the masks from the running sum).
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/splitmix64.h"
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "secagg/internal/check.h"
#include "secagg/internal/server_impl.h"
#include "secagg/internal/wire.h"
#include "secagg/protocol.h"
#include "secagg/server.h"

namespace tessera::secagg {

using crypto::MaskGenerator;
using crypto::RandomUint64;
using crypto::SecretBytes;
using crypto::ShamirCombine;
using crypto::ShamirShare;
using crypto::X25519PrivateKey;
using crypto::X25519PublicKey;
namespace {

// How many threshold-subsets of a secret's shares are tried before giving up on it.
constexpr int kMaxReconstructionAttempts = 64;
// Mask expansion works on blocks of this many words (256 KiB): every mask stream is added
// to a block while it is in cache.
constexpr size_t kUnmaskBlockWords = size_t{1} << 16;

// A mask generator from a derived key (which fails only on a broken invariant).
MaskGenerator GeneratorFrom(const absl::StatusOr<SecretBytes>& key) {
  TESSERA_SECAGG_CHECK(key.ok());
  absl::StatusOr<MaskGenerator> generator = MaskGenerator::Create(*key);
  TESSERA_SECAGG_CHECK(generator.ok());
  return *std::move(generator);
}

}  // namespace

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
    case v1::SECAGG_REVEAL_COINS:
      s.CloseRevealCoins();
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
  // Points before a possible abort: an aborted session's snapshot lists these clients, and
  // Restore requires points 1..n in order.
  uint32_t point = 0;
  for (auto& [id, client] : clients) client.point = ++point;
  if (!EnoughOrAbort(advertised.size(), "advertisements")) return;
  BuildList();
  expected = std::set<std::string>(advertised.begin(), advertised.end());
  answered.clear();
  round = sparse() ? v1::SECAGG_REVEAL_COINS : v1::SECAGG_SHARE_KEYS;
}

void SecAggServer::Impl::BuildList() {
  advertisement_list.Clear();
  certificate_owners.clear();
  for (auto& [id, client] : clients) {
    v1::AdvertisementEntry* entry = advertisement_list.add_entries();
    entry->set_client_id(id);
    *entry->mutable_advertisement() = client.advertisement;
    certificate_owners[client.advertisement.certificate_sha256()] = id;
  }
  // SessionId takes a contiguous span; a RepeatedPtrField is not one. It hashes the
  // certificates' digests, so the list with or without the certificates gives the same id.
  const std::vector<v1::AdvertisementEntry> entries(advertisement_list.entries().begin(),
                                                    advertisement_list.entries().end());
  session_id = SessionId(setup_digest, entries);
  if (setup.protocol_version() >= 2) {
    for (v1::AdvertisementEntry& entry : *advertisement_list.mutable_entries()) {
      entry.mutable_advertisement()->clear_certificate();
    }
  }
}

void SecAggServer::Impl::CloseRevealCoins() {
  // Every listed client's coin goes into the graph's seed: without one there is no graph.
  std::vector<std::string> missing;
  for (const auto& [id, client] : clients) {
    if (!answered.contains(id) || dropped.contains(id)) missing.push_back(id);
  }
  if (!missing.empty()) {
    std::string names;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) {
      absl::StrAppend(&names, i > 0 ? ", " : "", missing[i]);
    }
    if (missing.size() > 5) absl::StrAppend(&names, " and ", missing.size() - 5, " more");
    Abort(v1::SECAGG_SERVER_COIN_MISSING,
          absl::StrCat(missing.size(), " listed client(s) revealed no valid coin: ", names));
    return;
  }
  if (absl::Status drawn = DrawGraph(); !drawn.ok()) {
    Abort(v1::SECAGG_SERVER_COIN_MISSING, std::string(drawn.message()));
    return;
  }
  advertisement_list.Clear();
  answered.clear();
  round = v1::SECAGG_SHARE_KEYS;
}

absl::Status SecAggServer::Impl::DrawGraph() {
  std::vector<std::string> ids;
  ids.reserve(clients.size());
  coin_list.Clear();
  for (const auto& [id, client] : clients) {
    ids.push_back(id);
    v1::ListedCoin* coin = coin_list.add_coins();
    coin->set_client_id(id);
    coin->set_coin(client.coin);
  }
  const std::vector<v1::ListedCoin> coins(coin_list.coins().begin(), coin_list.coins().end());
  absl::StatusOr<NeighbourGraph> drawn = NeighbourGraph::Create(
      GraphSeed(session_id, coins), std::move(ids), setup.sparse().neighbours());
  if (!drawn.ok()) return drawn.status();
  graph.emplace(*std::move(drawn));
  return absl::OkStatus();
}

void SecAggServer::Impl::CloseShareKeys() {
  holders = Answered();
  if (!EnoughOrAbort(holders.size(), "clients shared their keys")) return;
  v1::ShareRelay head;
  head.mutable_share_holders()->Add(holders.begin(), holders.end());
  const std::string head_bytes = head.SerializeAsString();
  for (const std::string& receiver : holders) {
    // From every other holder, or in SecAgg+ every holder among its neighbours.
    std::vector<std::string*> shares;
    const std::vector<std::string> senders =
        graph.has_value() ? graph->Neighbours(receiver) : holders;
    for (const std::string& sender : senders) {
      if (sender != receiver && std::binary_search(holders.begin(), holders.end(), sender)) {
        shares.push_back(&clients.at(sender).outbox.at(receiver));
      }
    }
    // The relay's wire bytes, in a buffer of their size: its share holders, then each share
    // as a `shares` field (a tag, a length of at most 10 bytes).
    size_t size = head_bytes.size();
    for (const std::string* share : shares) size += 11 + share->size();
    auto relay = std::make_shared<std::string>();
    relay->reserve(size);
    *relay = head_bytes;
    for (std::string* share : shares) {
      internal::AppendProtoField(v1::ShareRelay::kSharesFieldNumber, *share, relay.get());
      std::string().swap(*share);
    }
    relays[receiver] = std::move(relay);
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
  const size_t t = share_threshold();
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

  // The shares of `owner`'s secrets came from the releasers in its closed neighbourhood;
  // fewer than share_threshold() of them and it cannot be rebuilt.
  const auto owner_shares = [&](const std::string& owner, bool seed,
                                std::vector<ShamirShare>& shares) {
    shares.clear();
    std::vector<std::string> holding;
    if (graph.has_value()) {
      holding = graph->Neighbours(owner);
      holding.push_back(owner);
    }
    for (const std::string& id : graph.has_value() ? holding : releasers) {
      if (!std::binary_search(releasers.begin(), releasers.end(), id)) continue;
      const Client& releaser = clients.at(id);
      shares.push_back(seed ? releaser.seed_shares.at(owner) : releaser.key_shares.at(owner));
    }
    if (shares.size() >= share_threshold()) return true;
    Abort(v1::SECAGG_SERVER_RECONSTRUCTION_FAILED,
          absl::StrCat("the ", seed ? "self-mask seed of " : "mask key of dropped client ", owner,
                       " has ", shares.size(), " shares released, ", share_threshold(), " needed"));
    return false;
  };
  std::vector<MaskStream> streams;
  const size_t degree = sparse() ? setup.sparse().neighbours() : survivors.size();
  streams.reserve(survivors.size() + dropped_holders.size() * std::min(degree, survivors.size()));
  std::vector<ShamirShare> shares;
  for (const std::string& owner : survivors) {
    if (!owner_shares(owner, /*seed=*/true, shares)) return;
    const std::string& commitment = clients.at(owner).commitment;
    std::optional<SecretBytes> seed = Rebuild(shares, [&](const SecretBytes& secret) {
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
    if (!owner_shares(owner, /*seed=*/false, shares)) return;
    const std::string& public_key = clients.at(owner).advertisement.mask_public_key();
    std::optional<SecretBytes> secret = Rebuild(shares, [&](const SecretBytes& bytes) {
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
    // Its pairwise masks were with every survivor, or in SecAgg+ with its neighbours.
    const std::vector<std::string> joined =
        graph.has_value() ? graph->Neighbours(owner) : survivors;
    for (const std::string& survivor : joined) {
      if (!std::binary_search(survivors.begin(), survivors.end(), survivor)) continue;
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

  RemoveMasks(streams);
  state = ServerState::kCompleted;
  ClearSessionData();
}

void SecAggServer::Impl::RemoveMasks(const std::vector<MaskStream>& streams) {
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
}

}  // namespace tessera::secagg
