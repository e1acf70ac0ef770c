// Private to secagg/: the state of a SecAggClient, shared by the files that implement it
// (client.cc: set-up and dispatch; client_list.cc: the advertisement list, the coins and
// the shares sent; client_rounds.cc: the later rounds; client_snapshot.cc: Snapshot and
// Restore).
#ifndef TESSERA_SECAGG_INTERNAL_CLIENT_IMPL_H_
#define TESSERA_SECAGG_INTERNAL_CLIENT_IMPL_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "crypto/aead.h"
#include "crypto/key_agreement.h"
#include "crypto/secret.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "proto/secagg.pb.h"
#include "secagg/client.h"

namespace tessera::v1 {
class SecAggClientSnapshot;
}  // namespace tessera::v1

namespace tessera::secagg {

namespace internal {

inline constexpr size_t kDigestBytes = 32;

// Ids non-empty, sorted, without repeats.
template <typename Container>
bool StrictlySorted(const Container& ids) {
  for (size_t i = 0; i < static_cast<size_t>(ids.size()); ++i) {
    if (ids[i].empty()) return false;
    if (i > 0 && !(ids[i - 1] < ids[i])) return false;
  }
  return true;
}

// Why a setup is refused: the abort reason and a detail naming the check.
struct SetupRefusal {
  v1::SecAggClientAbort reason = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  std::string detail;
};

// The checks Start applies to a setup (and Restore to a snapshot's): this client invited,
// a threshold within [max(SafeThreshold, policy.min_threshold), n], a well-formed encoding
// that cannot overflow, vector_words matching it. nullopt if the setup is acceptable.
std::optional<SetupRefusal> CheckSetup(const std::string& client_id, const ClientPolicy& policy,
                                       const v1::SecAggSetup& setup);

}  // namespace internal

struct SecAggClient::Impl {
  // A client of the advertisement list, as this client checked it.
  struct Peer {
    std::string id;
    uint32_t point = 0;  // Shamir x: 1-based position in the list
    std::optional<crypto::X25519PublicKey> channel_key;
    std::optional<crypto::X25519PublicKey> mask_key;
    std::optional<crypto::Verifier> verifier;  // unset for this client itself
  };
  // The shares another client sent this one (or this client kept of its own secrets).
  struct HeldShares {
    crypto::ShamirShare mask_key;
    crypto::ShamirShare seed;
  };

  ClientIdentity identity;
  ClientPolicy policy;
  v1::SecAggSetup setup;
  std::string setup_digest;
  absl::Time now;

  ClientState state = ClientState::kAdvertised;
  v1::SecAggClientAbort abort_reason = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  std::string abort_detail;
  // The peer the abort blames (SecAggClient::culprit()); empty if none.
  std::string culprit;

  // Secrets: wiped by WipeSecrets() on completion, abort and destruction.
  std::vector<uint32_t> input;
  // SHA-256 of InputBytes(), computed at the first SnapshotWithoutInput (the input does not
  // change until it is cleared); not secret.
  mutable std::string input_sha256;
  std::optional<crypto::X25519PrivateKey> channel_key;
  std::optional<crypto::X25519PrivateKey> mask_key;
  crypto::SecretBytes seed;
  std::map<std::string, HeldShares> held;  // by owner, this client included
  // The share channel's key with each peer, from share_keys until the masked input: the
  // agreement made to encrypt a peer's share also opens the peer's (ChannelKey).
  std::map<std::string, crypto::SecretBytes> channel_keys;

  v1::KeyAdvertisement own_advertisement;
  std::string session_id;
  std::vector<v1::AdvertisementEntry> entries;  // the advertisement list as checked
  std::vector<Peer> peers;                      // in advertisement-list order
  std::map<std::string, size_t> peer_index;
  std::vector<std::string> share_holders;
  std::vector<std::string> signed_survivors;
  // SecAgg+ only: this client's coin (secret until revealed: the coordinator must fix the
  // list without knowing it), the coin list checked, and this client's neighbours.
  std::string coin;
  v1::CoinList coins;
  std::set<std::string> neighbours;

  ~Impl() { WipeSecrets(); }

  const std::string& self() const { return identity.client_id; }
  uint32_t threshold() const { return setup.threshold(); }
  bool sparse() const { return setup.has_sparse(); }
  // How many shares rebuild a secret: t_k in SecAgg+, threshold otherwise.
  uint32_t share_threshold() const {
    return sparse() ? setup.sparse().neighbour_threshold() : threshold();
  }
  // The entry of `id` in the advertisement list this client checked (sorted), or null.
  const v1::AdvertisementEntry* EntryOf(const std::string& id) const {
    auto it = std::lower_bound(entries.begin(), entries.end(), id,
                               [](const v1::AdvertisementEntry& e, const std::string& key) {
                                 return e.client_id() < key;
                               });
    return it != entries.end() && it->client_id() == id ? &*it : nullptr;
  }
  bool Listed(const std::string& id) const { return EntryOf(id) != nullptr; }
  // Whether this client shares and masks with `id` (another listed client).
  bool IsNeighbour(const std::string& id) const {
    return id != self() && (!sparse() || neighbours.contains(id));
  }

  void WipeSecrets() {
    std::fill(input.begin(), input.end(), 0u);
    input.clear();
    channel_key.reset();
    mask_key.reset();
    seed = crypto::SecretBytes();
    held.clear();
    channel_keys.clear();
  }

  absl::Status Abort(v1::SecAggClientAbort reason, std::string detail) {
    state = ClientState::kAborted;
    abort_reason = reason;
    abort_detail = std::move(detail);
    WipeSecrets();
    return absl::FailedPreconditionError(absl::StrCat(
        "secure aggregation aborted (", v1::SecAggClientAbort_Name(reason), "): ", abort_detail));
  }
  // Abort, naming `peer` as the culprit: only where the fault is the peer's alone (or a
  // coordinator's that tampered with the peer's ciphertext), never for what only the
  // coordinator can cause.
  absl::Status Blame(const std::string& peer, v1::SecAggClientAbort reason, std::string detail) {
    culprit = peer;
    return Abort(reason, std::move(detail));
  }

  absl::StatusOr<v1::SecAggClientMessage> Handle(const v1::SecAggServerMessage& message);
  absl::StatusOr<v1::SecAggClientMessage> OnAdvertisements(const v1::AdvertisementList& list);
  absl::StatusOr<v1::SecAggClientMessage> OnCoins(const v1::CoinList& list);
  absl::StatusOr<v1::SecAggClientMessage> OnShareRelay(const v1::ShareRelay& relay);
  absl::StatusOr<v1::SecAggClientMessage> OnSurvivors(const v1::SurvivorList& list);
  absl::StatusOr<v1::SecAggClientMessage> OnUnmasking(const v1::UnmaskingRequest& request);
  // That `request` carries valid consistency signatures of at least threshold distinct
  // survivors over the signed survivor set: all of them checked until threshold are valid
  // or, in SecAgg+ when ConsistencySampleSize is below their number, a random sample of
  // that size, every one of which must verify. The Abort (MISMATCHED_CONSISTENCY_SIGNATURES)
  // otherwise; INTERNAL, with no abort, if the system has no randomness to draw with.
  absl::Status CheckConsistencySignatures(const v1::UnmaskingRequest& request);

  // The checks of one entry of the list at 1-based `point` (this client's own is only
  // parsed): certificate of the federation CA naming that client with the institution role
  // and not revoked, signature over this session's setup. Returns the peer or the abort.
  absl::StatusOr<Peer> CheckEntry(const v1::AdvertisementEntry& entry, uint32_t point);
  // CheckEntry for every entry of `entries` this client works with (all of them; in
  // SecAgg+ this client and its neighbours), in list order.
  absl::StatusOr<std::vector<Peer>> CheckEntries();
  // Once the entries this client works with passed: fixes the peers and makes the
  // encrypted shares for its neighbours.
  absl::StatusOr<v1::SecAggClientMessage> ShareKeys(std::vector<Peer> checked);
  // SecAgg+: `neighbours` from the coin list (checked) and the session id; the abort if the
  // graph cannot be drawn.
  absl::Status DrawNeighbours();
  // The certificate `entry` of the list stands for: this client's own for its own entry;
  // else the entry's, if it hashes to the entry's certificate_sha256 when that is set;
  // else empty (CheckCertificate then refuses it).
  std::string ListedCertificate(const v1::AdvertisementEntry& entry) const;
  // OK if `pem` is a certificate of the federation CA naming `id`, with the institution
  // role, not revoked by the site's CRL; otherwise why not (for an abort's detail).
  absl::Status CheckCertificate(const std::string& id, const std::string& pem) const;
  // Why a coin list is not the listed clients' coins in list order, each matching its
  // commitment; nullopt if it is.
  std::optional<std::string> WrongCoin(const v1::CoinList& list) const;
  // Whether `signature` by listed client `id` verifies over `message`: with the peer's
  // verifier, or (SecAgg+, a listed client this client does not work with) once its
  // certificate passes the checks CheckEntry applies. False for a client not listed or
  // whose certificate is refused (the signature then does not count).
  bool SignatureValid(const std::string& id, const std::string& message,
                      const std::string& signature) const;
  // OnShareRelay's checks of the shares: stores the shares addressed to this client by its
  // neighbours, or aborts.
  absl::Status TakeShares(const v1::ShareRelay& relay);
  // One share of TakeShares, routed to this client from `sender_id`: authenticated, its
  // Shamir shares (at this client's point `my_point`) parsed and kept in `held`; else an
  // abort, naming the sender as the culprit (Blame) when only the sender can have caused it.
  absl::Status TakeShare(const std::string& sender_id, const v1::EncryptedShare& share,
                         uint32_t my_point);
  // y = x + self mask + sum over neighbouring share holders of +-pairwise mask.
  absl::StatusOr<std::vector<uint32_t>> MaskedInput(
      const google::protobuf::RepeatedPtrField<std::string>& holders);

  // A peer from its checked entry at 1-based `point`: public keys parsed, a verifier made
  // from its certificate unless it is this client. The caller has checked the certificate.
  absl::StatusOr<Peer> PeerFrom(const v1::AdvertisementEntry& entry, uint32_t point) const;
  // Fixes peers and peer_index from `checked` (list order).
  void SetPeers(std::vector<Peer> checked);

  // client_snapshot.cc: the snapshot of this state (secrets included), and this state
  // from a snapshot (identity and policy already set); DATA_LOSS if inconsistent.
  // `with_input`: the input's words, or else (SnapshotWithoutInput) their digest.
  void FillSnapshot(v1::SecAggClientSnapshot& snapshot, bool with_input) const;
  // The input as a snapshot holds it (vector_words little-endian 32-bit words).
  crypto::SecretBytes InputBytes() const;
  absl::Status RestoreFrom(const v1::SecAggClientSnapshot& snapshot);
  absl::Status RestoreSecrets(const v1::SecAggClientSnapshot& snapshot);
  absl::Status RestoreList(const v1::SecAggClientSnapshot& snapshot);
  absl::Status RestoreRounds(const v1::SecAggClientSnapshot& snapshot);

  // The share channel's key with `peer` (an entry of the list other than this client):
  // the one kept in channel_keys, else agreed now.
  absl::StatusOr<crypto::SecretBytes> ChannelKey(const Peer& peer) const;
  // The share channel with `peer`.
  absl::StatusOr<crypto::AesGcm256> Channel(const Peer& peer) const;
  // The plaintext of a share ciphertext from `sender` to this client, or an error if it
  // does not authenticate.
  absl::StatusOr<crypto::SecretBytes> OpenShare(const Peer& sender,
                                                const std::string& ciphertext) const;
};

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_INTERNAL_CLIENT_IMPL_H_
