// The client's rounds after the advertisement list: the share relay (shares checked, then
// the masked input), the survivor list (the consistency signature) and the unmasking
// request (the shares released).
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "secagg/client.h"
#include "secagg/internal/client_impl.h"
#include "secagg/internal/wire.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"

namespace tessera::secagg {

using crypto::AesGcm256;
using crypto::MaskGenerator;
using crypto::SecretBytes;
using crypto::ShamirShare;
using crypto::Verifier;
using internal::FieldReader;
using internal::StrictlySorted;

absl::StatusOr<SecretBytes> SecAggClient::Impl::ChannelKey(const Peer& peer) const {
  if (auto kept = channel_keys.find(peer.id); kept != channel_keys.end()) {
    return kept->second.Clone();
  }
  ASSIGN_OR_RETURN(SecretBytes shared, channel_key->Agree(*peer.channel_key));
  return ShareChannelKey(shared, session_id, self(), peer.id);
}

absl::StatusOr<AesGcm256> SecAggClient::Impl::Channel(const Peer& peer) const {
  ASSIGN_OR_RETURN(SecretBytes key, ChannelKey(peer));
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
    if (!Listed(id)) {
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
  if (sparse()) {
    // This client's own secrets are rebuilt from its neighbourhood only.
    const auto holding =
        std::count_if(holders.begin(), holders.end(),
                      [this](const std::string& id) { return id == self() || IsNeighbour(id); });
    if (static_cast<uint32_t>(holding) < share_threshold()) {
      return Abort(v1::SECAGG_TOO_FEW_CLIENTS,
                   absl::StrCat(holding, " share holders in this client's neighbourhood, ",
                                "neighbourhood threshold ", share_threshold()));
    }
  }

  RETURN_IF_ERROR(TakeShares(relay));
  ASSIGN_OR_RETURN(std::vector<uint32_t> masked, MaskedInput(holders));
  std::fill(input.begin(), input.end(), 0u);
  input.clear();
  channel_keys.clear();  // every share this client will get has been opened
  share_holders.assign(holders.begin(), holders.end());

  v1::SecAggClientMessage reply;
  reply.mutable_masked_input()->set_masked_input(internal::WordsToBytes(masked));
  state = ClientState::kMaskedInputSent;
  return reply;
}

absl::Status SecAggClient::Impl::TakeShares(const v1::ShareRelay& relay) {
  const auto& holders = relay.share_holders();
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
    if (!IsNeighbour(share.sender())) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE,
                   absl::StrCat("a share from ", share.sender(),
                                ", who is not a neighbour of this client in the session's graph"));
    }
    if (!by_sender.emplace(share.sender(), &share).second) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE, absl::StrCat("two shares from ", share.sender()));
    }
  }
  for (const std::string& id : holders) {
    if (IsNeighbour(id) && !by_sender.contains(id)) {
      return Abort(v1::SECAGG_MALFORMED_MESSAGE, absl::StrCat("no share from ", id));
    }
  }

  // Then every share must authenticate as from its claimed sender to this client, before
  // the masked input leaves. A share that fails here, and was not relabelled, names its
  // sender as the culprit (Blame): the AEAD binds sender and receiver, so only the sender
  // (or a coordinator damaging its ciphertext in transit) can have caused it.
  const uint32_t my_point = peers[peer_index.at(self())].point;
  for (const auto& [sender_id, share] : by_sender) {
    RETURN_IF_ERROR(TakeShare(sender_id, *share, my_point));
  }

  return absl::OkStatus();
}

absl::Status SecAggClient::Impl::TakeShare(const std::string& sender_id,
                                           const v1::EncryptedShare& share, uint32_t my_point) {
  const Peer& sender = peers[peer_index.at(sender_id)];
  auto plaintext = OpenShare(sender, share.ciphertext());
  if (!plaintext.ok()) {
    // A share that authenticates under another client's channel was relabelled; one that
    // authenticates under none was damaged.
    for (const Peer& other : peers) {
      if (other.id == self() || other.id == sender_id) continue;
      if (OpenShare(other, share.ciphertext()).ok()) {
        return Abort(
            v1::SECAGG_RELABELLED_CIPHERTEXT,
            absl::StrCat("the share labelled as from ", sender_id, " comes from ", other.id));
      }
    }
    return Blame(sender_id, v1::SECAGG_CORRUPTED_SHARE,
                 absl::StrCat("the share from ", sender_id, " does not authenticate"));
  }
  FieldReader reader(plaintext->view());
  const auto from = reader.Next();
  const auto to = reader.Next();
  const auto key_bytes = reader.Next();
  const auto seed_bytes = reader.Next();
  if (!seed_bytes.has_value() || !reader.AtEnd()) {
    return Blame(sender_id, v1::SECAGG_CORRUPTED_SHARE,
                 absl::StrCat("the share from ", sender_id, " is malformed"));
  }
  if (*from != sender_id || *to != self()) {
    // It authenticated under the channel with the sender and this client's pair of
    // labels: only the sender can have written it.
    return Blame(
        sender_id, v1::SECAGG_RELABELLED_CIPHERTEXT,
        absl::StrCat("the share from ", sender_id, " names another sender or receiver inside"));
  }
  auto key_share = ShamirShare::Parse(*key_bytes);
  auto seed_share = ShamirShare::Parse(*seed_bytes);
  if (!key_share.ok() || !seed_share.ok() || key_share->x != my_point ||
      seed_share->x != my_point) {
    return Blame(sender_id, v1::SECAGG_CORRUPTED_SHARE,
                 absl::StrCat("the share from ", sender_id, " holds no valid Shamir share for ",
                              "this client's point"));
  }
  HeldShares& slot = held[sender_id];
  slot.mask_key = *key_share;
  slot.seed = *seed_share;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> SecAggClient::Impl::MaskedInput(
    const google::protobuf::RepeatedPtrField<std::string>& holders) {
  std::vector<uint32_t> masked = input;
  {
    ASSIGN_OR_RETURN(SecretBytes self_key, SelfMaskKey(seed, session_id, self()));
    ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(self_key));
    generator.AddTo(0, masked);
  }
  for (const std::string& id : holders) {
    if (!IsNeighbour(id)) continue;
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
  return masked;
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

namespace {

// `count` distinct indices below `population`, uniformly at random (a partial Fisher-Yates
// shuffle on the system's CSPRNG; rejection sampling keeps each draw unbiased).
absl::StatusOr<std::vector<size_t>> SampleIndices(size_t population, size_t count) {
  std::vector<size_t> order(population);
  for (size_t i = 0; i < population; ++i) order[i] = i;
  for (size_t i = 0; i < count && i + 1 < population; ++i) {
    const uint64_t range = population - i;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t draw = 0;
    do {
      ASSIGN_OR_RETURN(draw, crypto::RandomUint64());
    } while (draw >= limit);
    std::swap(order[i], order[i + draw % range]);
  }
  order.resize(std::min(count, population));
  return order;
}

}  // namespace

absl::Status SecAggClient::Impl::CheckConsistencySignatures(const v1::UnmaskingRequest& request) {
  const std::string signed_input = ConsistencySigningInput(session_id, signed_survivors);
  // One signature per distinct survivor (a repeat is ignored).
  std::vector<const v1::ConsistencySignature*> listed;
  std::set<std::string> signers;
  for (const v1::ConsistencySignature& signature : request.signatures()) {
    if (std::binary_search(signed_survivors.begin(), signed_survivors.end(),
                           signature.client_id()) &&
        signers.insert(signature.client_id()).second) {
      listed.push_back(&signature);
    }
  }
  const uint32_t sample =
      sparse() ? ConsistencySampleSize(setup.sparse(), static_cast<uint32_t>(setup.invited_size()),
                                       static_cast<uint32_t>(entries.size()), threshold())
               : threshold();
  if (listed.size() >= threshold() && sample < listed.size()) {
    // SecAgg+: a random sample must all verify (ConsistencySampleSize).
    // No randomness is this client's trouble, not the coordinator's: an error, no abort.
    ASSIGN_OR_RETURN(const std::vector<size_t> drawn, SampleIndices(listed.size(), sample));
    for (size_t i : drawn) {
      if (!SignatureValid(listed[i]->client_id(), signed_input, listed[i]->signature())) {
        return Abort(v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES,
                     absl::StrCat("the consistency signature of ", listed[i]->client_id(),
                                  " does not verify over the survivor set"));
      }
    }
    return absl::OkStatus();
  }
  std::set<std::string> valid;
  for (const v1::ConsistencySignature& signature : request.signatures()) {
    if (valid.contains(signature.client_id()) ||
        !std::binary_search(signed_survivors.begin(), signed_survivors.end(),
                            signature.client_id())) {
      continue;
    }
    if (SignatureValid(signature.client_id(), signed_input, signature.signature())) {
      valid.insert(signature.client_id());
    }
  }
  if (valid.size() < threshold()) {
    return Abort(v1::SECAGG_MISMATCHED_CONSISTENCY_SIGNATURES,
                 absl::StrCat(valid.size(), " valid signatures on the survivor set, threshold ",
                              threshold()));
  }
  return absl::OkStatus();
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
  RETURN_IF_ERROR(CheckConsistencySignatures(request));

  v1::SecAggClientMessage reply;
  v1::UnmaskingResponse* response = reply.mutable_unmasking();
  // The shares this client holds: of itself and its neighbours.
  for (const std::string& id : signed_survivors) {
    if (id != self() && !IsNeighbour(id)) continue;
    v1::UnmaskingShare* share = response->add_shares();
    share->set_owner(id);
    share->set_kind(v1::UnmaskingShare::SELF_MASK_SEED);
    share->set_share(std::string(held.at(id).seed.Serialize().view()));
  }
  for (const std::string& id : dropped) {
    if (!IsNeighbour(id)) continue;
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
