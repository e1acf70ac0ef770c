// The client side of a secure-aggregation session, as a pure state machine: no transport,
// no storage, no clock (the caller passes the time certificates are checked at).
//
// States and the only message each accepts (anything else aborts with
// SECAGG_UNEXPECTED_MESSAGE, or SECAGG_SECOND_UNMASKING_REQUEST once completed):
//
//   Start(setup)           -> kAdvertised          (reply: KeyAdvertisement)
//   kAdvertised   + AdvertisementList -> kSharesSent        (reply: ShareKeysResponse)
//   SecAgg+ (setup.sparse) instead:
//   kAdvertised   + AdvertisementList -> kCoinRevealed      (reply: CoinReveal)
//   kCoinRevealed + CoinList          -> kSharesSent        (reply: ShareKeysResponse)
//   kSharesSent   + ShareRelay        -> kMaskedInputSent   (reply: MaskedInputResponse)
//   kMaskedInputSent + SurvivorList   -> kConsistencySent   (reply: ConsistencyResponse)
//   kConsistencySent + UnmaskingRequest -> kCompleted       (reply: UnmaskingResponse)
//   any state + a failed check        -> kAborted (terminal; abort_reason() says why,
//                                        culprit() which peer is to blame, if one is)
//
// The checks that make a cheating coordinator fail loudly (each with its own reason):
// every advertisement signed over this session's setup by a certificate of the federation
// CA naming that client and not revoked by the site's newest CRL (FORGED /
// REPLAYED_ADVERTISEMENT, UNTRUSTED_CERTIFICATE); this
// client's own advertisement unchanged; distinct public keys; at least `threshold` clients
// in every round and each round's set inside the previous one (TOO_FEW_CLIENTS,
// NOT_A_SUBSET); shares addressed to this client from the sender they claim
// (RELABELLED_CIPHERTEXT) that decrypt and authenticate (CORRUPTED_SHARE) — checked before
// the masked input leaves; at least `threshold` valid signatures on the very survivor set
// this client signed before any unmasking share is released (SURVIVOR_SET_CHANGED,
// MISMATCHED_CONSISTENCY_SIGNATURES); never both kinds of share for one peer
// (ALIVE_DROPPED_OVERLAP); one unmasking per session.
//
// The setup check: the threshold t must be at least max(SafeThreshold(n,
// policy.assumed_colluders), policy.min_threshold) for n invited clients — by default
// floor(2n/3) + 1, which no split view by a cheating coordinator and fewer than n/3
// colluding sites can satisfy twice (secagg/protocol.h has the derivation).
//
// SecAgg+ (a setup with `sparse`, docs/secure-aggregation.md): the advertisement commits
// to 32 random coin bytes, revealed once the list is fixed; every listed client's coin must
// match its commitment (WRONG_COIN); the graph is drawn from the session id and the coins;
// then certificates and advertisements are checked for this client's k neighbours (and,
// at unmasking, for the signers of the survivor set), shares go to and come from
// neighbours only (a share from another: MALFORMED_MESSAGE), split t_k-of-(k + 1) with t_k
// = floor(2k/3) + 1, masks are pairwise with neighbours only, and the unmasking releases
// shares of neighbours only — after the same check as the complete graph: `threshold`
// valid signatures on the very survivor set this client signed. The setup check adds: k at
// least what ChooseNeighbourhood gives for the setup's gamma, delta, sigma and eta, which
// must be at least the policy's; SmallestLearnableGroup(k) at least the policy's
// min_threshold; and, once the list is fixed, k still enough for the listed count
// (TOO_FEW_CLIENTS otherwise).
//
// Durable sessions: Snapshot() captures everything needed to continue and Restore() makes
// a client that continues exactly like the original (the site keeps a snapshot with each
// answer it gives, so that a restart resumes the same session).
//
// Secrets (input, private keys, seed, received shares) live in SecretBytes-like storage
// and are wiped when the client is destroyed, completes or aborts. Not thread-safe: one
// session per object, one caller.
#ifndef TESSERA_SECAGG_CLIENT_H_
#define TESSERA_SECAGG_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret.h"
#include "proto/secagg.pb.h"
#include "secagg/neighbourhood.h"

namespace tessera::crypto {
class RevocationList;
class Signer;
}  // namespace tessera::crypto

namespace tessera::secagg {

enum class ClientState {
  kAdvertised,
  kCoinRevealed,  // SecAgg+ only
  kSharesSent,
  kMaskedInputSent,
  kConsistencySent,
  kCompleted,
  kAborted,
};
const char* ClientStateName(ClientState state);

struct ClientIdentity {
  // This client's certificate name and PEM certificate.
  std::string client_id;
  std::string certificate_pem;
  // Signs with this client's certificate key. Borrowed; must outlive the client.
  const crypto::Signer* signer = nullptr;
  // The federation CA every peer's certificate must chain to.
  std::string ca_cert_pem;
  // The newest CRL of that CA the site holds (crypto/crl.h): a peer whose certificate it
  // lists is refused (SECAGG_UNTRUSTED_CERTIFICATE, "... revoked"). Borrowed, may be null
  // (nothing revoked); must outlive the client. The CA's signature on it is what makes
  // it trustworthy, whoever relayed it.
  const crypto::RevocationList* revocations = nullptr;
};

struct ClientPolicy {
  // The site's minimum cohort: the threshold must be at least this (and at least
  // SafeThreshold(n, assumed_colluders) whatever this says).
  uint32_t min_threshold = 2;
  // How many colluding sites the threshold must withstand besides a cheating coordinator.
  // Unset: the default rule, t >= floor(2n/3) + 1 (any c < n/3). Set to c: t >=
  // floor((n + c)/2) + 1. A protocol parameter for analysis and tests; the daemons never
  // set it.
  std::optional<uint32_t> assumed_colluders;
  // SecAgg+ sessions: the least colluding fraction (gamma) and security bits (sigma) the
  // setup's k must have been chosen for. A setup stating less is refused (BAD_SETUP).
  double sparse_min_colluding_fraction = 0.05;
  uint32_t sparse_min_security_bits = kSecAggPlusSecurityBits;
  // false: every SecAgg+ setup is refused (BAD_SETUP).
  bool allow_sparse = true;
};

class SecAggClient {
 public:
  // Checks `setup` against the policy and this client's invitation, makes two fresh X25519
  // key pairs and returns the client with its advertisement in `*reply`. `input` is the
  // encoded vector (setup.vector_words words) this client will contribute. `now` is when
  // certificates are checked. On a refused setup returns FAILED_PRECONDITION and fills
  // `*abort` (may be null) with SECAGG_BAD_SETUP (or SECAGG_MALFORMED_MESSAGE); a
  // threshold below the rule gets SECAGG_BAD_SETUP with a detail naming the rule, the
  // threshold and the least one accepted.
  // INVALID_ARGUMENT for the caller's own errors: no signer or reply, or an input whose
  // length is not setup.vector_words (then `*abort` says SECAGG_MALFORMED_MESSAGE).
  static absl::StatusOr<std::unique_ptr<SecAggClient>> Start(
      const ClientIdentity& identity, const ClientPolicy& policy, const v1::SecAggSetup& setup,
      std::vector<uint32_t> input, absl::Time now, v1::SecAggClientMessage* reply,
      v1::SecAggClientAbort* abort);
  ~SecAggClient();

  // Handles the server's message for the current round. Returns this client's reply, or
  // FAILED_PRECONDITION after aborting (abort_reason() and abort_detail() say why; the
  // detail never contains secret material). Once aborted, every call returns
  // FAILED_PRECONDITION and the first reason stays. A message is this round's only if both
  // its `round` and its payload are. Other errors (INTERNAL: the random source or OpenSSL
  // failed) leave the state unchanged.
  absl::StatusOr<v1::SecAggClientMessage> Handle(const v1::SecAggServerMessage& message);

  ClientState state() const;
  v1::SecAggClientAbort abort_reason() const;
  const std::string& abort_detail() const;
  // Once aborted, the peer the abort blames; empty when the blame is not specific. Set only
  // for a share from that peer that does not authenticate, is malformed inside, or names
  // another sender or receiver inside (CORRUPTED_SHARE, RELABELLED_CIPHERTEXT): faults the
  // AEAD pins on the sender — or on a coordinator that damaged the sender's ciphertext,
  // which can thus only cost the sender its place (availability), never a secret. Never
  // set for what only the coordinator can cause (a share relabelled to another sender or
  // receiver, missing or repeated shares, an altered list).
  const std::string& culprit() const;

  // The session id, once known (after the advertisement list); empty before.
  const std::string& session_id() const;

  // This client's whole state as a serialised v1::SecAggClientSnapshot
  // (proto/secagg_state.proto): the setup, state, abort reason, detail and culprit, the certificate
  // check time, this client's advertisement, the advertisement list it checked, the share
  // holders and the survivor set it signed, and — until the session ends — its secrets:
  // the input words, both X25519 private keys, the self-mask seed and the Shamir shares it
  // holds. Hence SecretBytes (wiped when destroyed): keep it only where the site keeps its
  // own secrets. Once completed or aborted the snapshot holds no secret. Changes nothing.
  crypto::SecretBytes Snapshot() const;
  // Snapshot() without the input words, the bulk of it until the masked input is sent and
  // unchanged until then: while the input is due, the snapshot names it by the SHA-256 of
  // InputBytes() instead, and Restore needs those bytes back. For a store that keeps the
  // input once a session rather than at every step. Changes nothing.
  crypto::SecretBytes SnapshotWithoutInput() const;
  // The input words as a snapshot holds them (vector_words little-endian 32-bit words);
  // empty once the masked input was made. SECRET.
  crypto::SecretBytes InputBytes() const;

  // A client that continues the session exactly where Snapshot() was taken: from then on,
  // given the same messages, it gives the same Handle results as the original (same
  // states, abort reasons and replies), except that replies the original would also have
  // drawn fresh randomness for differ in those bytes only — the SHARE_KEYS reply (fresh
  // Shamir coefficients and GCM nonces) and the CONSISTENCY_CHECK signature (ECDSA is
  // randomised); both are equally valid. The site therefore stores every answer it gave
  // and never recomputes a step. Makes no new randomness: peers' verifiers are re-created
  // from their certificates, nothing is re-checked against the clock. `identity` as for
  // Start (it must be this client's). DATA_LOSS if the snapshot
  // does not parse or is inconsistent: another version or client id, keys or shares of the
  // wrong size or not matching the advertisement, a session id that does not match the
  // list, coins that do not match their commitments, data the state needs missing, or a
  // setup this client's policy refuses, or — for a SnapshotWithoutInput whose input is
  // due — `input` missing or not the InputBytes() it was taken with (its SHA-256 differs).
  // `input` is not used for a snapshot that holds its input or needs none.
  // INVALID_ARGUMENT without a signer.
  static absl::StatusOr<std::unique_ptr<SecAggClient>> Restore(
      const ClientIdentity& identity, const ClientPolicy& policy,
      const crypto::SecretBytes& snapshot, const crypto::SecretBytes* input = nullptr);

 private:
  struct Impl;
  explicit SecAggClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_CLIENT_H_
