// Private to secagg/: the state of a SecAggServer, shared by the files that implement it
// (server.cc: set-up and the answers; server_close.cc: closing rounds and unmasking;
// server_snapshot.cc: Snapshot and Restore).
#ifndef TESSERA_SECAGG_INTERNAL_SERVER_IMPL_H_
#define TESSERA_SECAGG_INTERNAL_SERVER_IMPL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/secret.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"
#include "proto/secagg.pb.h"
#include "secagg/neighbourhood.h"
#include "secagg/server.h"

namespace tessera::v1 {
class SecAggServerSnapshot;
}  // namespace tessera::v1

namespace tessera::secagg {

namespace internal {

// The checks Create applies to a setup and options (and Restore to a snapshot's setup):
// INVALID_ARGUMENT naming the field.
absl::Status ValidateServerSetup(const v1::SecAggSetup& setup, const ServerOptions& options);

// The key every server of this process agrees with a client's public keys to refuse
// small-order points (the agreement is all zeros for those whatever the private scalar, so
// one random key serves every session). Made at the first call and kept; INTERNAL only if
// no key could be generated. Thread-safe (X25519PrivateKey::Agree is const).
absl::StatusOr<const crypto::X25519PrivateKey*> SmallOrderProbe();

}  // namespace internal

// One mask stream to take out of the sum.
struct MaskStream {
  crypto::MaskGenerator generator;
  bool subtract;  // true: the survivors added it
};

struct SecAggServer::Impl {
  struct Client {
    v1::KeyAdvertisement advertisement;
    std::optional<crypto::Verifier> verifier;
    uint32_t point = 0;  // Shamir x, once the advertisement list is fixed
    std::string commitment;
    std::string coin;  // SecAgg+: revealed in REVEAL_COINS
    // SHARE_KEYS: the shares this client sent, by receiver, each a serialized
    // v1::EncryptedShare (cleared once relayed). Bytes, not messages: n² of them pass
    // through the server, and a message with its three strings takes about twice the room.
    std::map<std::string, std::string> outbox;
    std::string consistency_signature;
    // UNMASKING: the shares this client released, by owner.
    std::map<std::string, crypto::ShamirShare> seed_shares;
    std::map<std::string, crypto::ShamirShare> key_shares;
  };

  v1::SecAggSetup setup;
  std::string setup_digest;
  ServerOptions options;
  // SecAgg+: the session's graph, once every listed client revealed its coin.
  std::optional<NeighbourGraph> graph;
  v1::CoinList coin_list;
  // To refuse small-order public keys: the process's one probe (SmallOrderProbe).
  const crypto::X25519PrivateKey* probe = nullptr;

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
  // The list as posted (in protocol version 2 each certificate replaced by its digest), and
  // which listed client each certificate digest belongs to.
  v1::AdvertisementList advertisement_list;
  std::map<std::string, std::string> certificate_owners;
  std::vector<std::string> holders;  // answered SHARE_KEYS
  // MASKED_INPUT: each share holder's relay, a serialized v1::ShareRelay, shared with
  // whoever holds it to send it (OutgoingRelays): never copied per site.
  std::map<std::string, std::shared_ptr<const std::string>> relays;
  std::vector<std::uint32_t> sum;            // running sum of masked inputs
  std::vector<std::string> survivors;        // inputs in the sum
  std::vector<std::string> dropped_holders;  // holders not among the survivors
  v1::UnmaskingRequest unmasking_request;
  std::vector<uint32_t> scratch;  // for the observer

  std::function<void(const std::string&, std::span<const uint32_t>)> observer;

  uint32_t threshold() const { return setup.threshold(); }
  bool sparse() const { return setup.has_sparse(); }
  // How many shares rebuild a secret: t_k in SecAgg+, threshold otherwise.
  uint32_t share_threshold() const {
    return sparse() ? setup.sparse().neighbour_threshold() : threshold();
  }
  // Whether two distinct listed clients share and mask with each other.
  bool AreNeighbours(const std::string& a, const std::string& b) const {
    return a != b && (!graph.has_value() || graph->AreNeighbors(a, b));
  }

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
  absl::Status OnCoin(const std::string& id, const v1::CoinReveal& reveal);
  absl::Status OnShareKeys(const std::string& id, const v1::ShareKeysResponse& response);
  absl::Status OnMaskedInput(const std::string& id, const v1::MaskedInputResponse& response);
  absl::Status OnConsistency(const std::string& id, const v1::ConsistencyResponse& response);
  absl::Status OnUnmasking(const std::string& id, const v1::UnmaskingResponse& response);

  void CloseAdvertiseKeys();
  // From `clients` (points set): advertisement_list (certificates replaced by their digests
  // from protocol version 2 on), certificate_owners and session_id.
  void BuildList();
  void CloseRevealCoins();
  // SecAgg+: coin_list from every listed client's coin (all checked against their
  // commitments), and the graph from it and the session id.
  absl::Status DrawGraph();
  void CloseShareKeys();
  void CloseMaskedInput();
  void CloseConsistency();
  void CloseUnmasking();

  // Rebuilds a secret from `shares` (at least share_threshold()), trying subsets of that
  // size until `check` accepts one. nullopt if none does within the attempt budget.
  std::optional<crypto::SecretBytes> Rebuild(
      std::vector<crypto::ShamirShare> shares,
      const std::function<bool(const crypto::SecretBytes&)>& check) const;
  // CloseUnmasking's last step: removes every mask stream from the sum, on up to
  // options.unmasking_threads threads.
  void RemoveMasks(const std::vector<MaskStream>& streams);

  // server_snapshot.cc: this state as a snapshot, and from one (options and probe already
  // set); DATA_LOSS if inconsistent.
  // Without `bulk` the share relays and the running sum are left out (SnapshotBytes
  // appends them as they are, without a copy of each in the message).
  void FillSnapshot(v1::SecAggServerSnapshot& snapshot, bool bulk = true) const;
  // Whether a snapshot holds the running sum: not at the masked-input boundary, where it
  // is zero by construction (no answer yet; megabytes for a large model).
  bool SumInSnapshot() const;
  absl::Status RestoreFrom(const v1::SecAggServerSnapshot& snapshot);
  absl::Status RestoreClients(const v1::SecAggServerSnapshot& snapshot);
  absl::Status RestoreRounds(const v1::SecAggServerSnapshot& snapshot);
};

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_INTERNAL_SERVER_IMPL_H_
