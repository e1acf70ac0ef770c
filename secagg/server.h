// The server side of a secure-aggregation session, as a pure state machine: no transport,
// no storage, no clock. The round driver feeds it the clients' messages, closes each round
// when everyone expected has answered or the round's deadline has passed, and posts the
// messages it produces.
//
//   kCollecting(ADVERTISE_KEYS) --CloseRound--> [kCollecting(REVEAL_COINS), SecAgg+ only]
//   --CloseRound--> kCollecting(SHARE_KEYS) --> ... -->
//   kCollecting(UNMASKING) --CloseRound--> kCompleted (sum available)
//   any kCollecting --CloseRound with fewer than threshold clients left,
//                  or unrecoverable shares, or Cancel()--> kAborted (abort_reason())
//
// A client whose message fails a check is dropped from the session with a recorded
// reason; the others go on. The server keeps a running sum of the masked inputs (memory
// O(vector length), not O(clients x length)); it never sees an unmasked input: the masked
// inputs it receives are indistinguishable from uniform words, and it removes only the
// masks whose secrets t or more clients released.
//
// SecAgg+ (setup.sparse): REVEAL_COINS posts the advertisement list and collects every
// listed client's coin (checked against its commitment); a listed client without one
// aborts the session (SECAGG_SERVER_COIN_MISSING: no share was sent, a new attempt without
// it can start). SHARE_KEYS then posts the coins; the graph is drawn as the clients draw
// it; shares are expected for, and relayed between, neighbours only; unmasking answers
// hold shares of the answering client's neighbours (and its own), and each secret is
// rebuilt from t_k of its owner's neighbourhood.
//
// Durable sessions: Snapshot() at each step boundary and Restore() continue the same
// session (same cohort, nonce and session id) after a coordinator restart.
//
// Not thread-safe: the caller serialises calls.
#ifndef TESSERA_SECAGG_SERVER_H_
#define TESSERA_SECAGG_SERVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/provenance.pb.h"
#include "proto/secagg.pb.h"
#include "proto/secagg_state.pb.h"

namespace tessera::secagg {

enum class ServerState { kCollecting, kCompleted, kAborted };

struct ServerOptions {
  // The federation CA every client's certificate must chain to.
  std::string ca_cert_pem;
  // How many colluding sites the threshold must withstand besides a cheating coordinator
  // (secagg/protocol.h SafeThreshold). Unset: the default rule, t >= floor(2n/3) + 1. A
  // protocol parameter for analysis and tests; the daemons never set it.
  std::optional<uint32_t> assumed_colluders;
  // When certificates are checked.
  absl::Time now;
  // Threads used to expand masks when unmasking (1 = the calling thread only).
  int unmasking_threads = 1;
};

struct ClientDrop {
  std::string client_id;
  v1::SecAggRound round = v1::SECAGG_ROUND_UNSPECIFIED;
  v1::SecAggDropReason reason = v1::SECAGG_DROP_REASON_UNSPECIFIED;
  std::string detail;
};

class SecAggServer {
 public:
  // INVALID_ARGUMENT for a malformed setup (threshold above the invited count or below
  // SafeThreshold(n, options.assumed_colluders) — by default floor(2n/3) + 1 — no invited
  // clients, an encoding whose total words differ from vector_words or that could overflow
  // for the invited count, a wrong nonce size) or options (no CA, no unmasking thread).
  static absl::StatusOr<std::unique_ptr<SecAggServer>> Create(const v1::SecAggSetup& setup,
                                                              ServerOptions options);
  ~SecAggServer();

  ServerState state() const;
  // The round whose answers are being collected (while kCollecting).
  v1::SecAggRound round() const;

  // The messages of the current round, one per client expected to answer it.
  std::map<std::string, v1::SecAggServerMessage> Outgoing() const;
  // The same messages serialized, each in two parts: `head`, then the share relay's bytes
  // (MASKED_INPUT; null in every other round) as this server keeps them, shared rather
  // than copied (n shares a client, n² in all). `head` followed by `*relay` parses as
  // Outgoing()'s message for its client. The relays are not changed once built; the
  // server lets go of its references when the round closes.
  struct OutgoingMessage {
    std::string head;
    std::shared_ptr<const std::string> relay;

    std::string Joined() const { return relay == nullptr ? head : head + *relay; }
  };
  std::map<std::string, OutgoingMessage> OutgoingBytes() const;

  // The current round's one message when every client expected to answer it gets the same
  // (every round but MASKED_INPUT, whose share relays differ): what Outgoing() gives each
  // of Recipients(), made once — for a large cohort the advertisement list is n
  // certificates, and n copies of it would be O(n^2). nullopt for MASKED_INPUT and once
  // the session is over.
  std::optional<v1::SecAggServerMessage> Broadcast() const;
  // The clients Outgoing() has a message for, sorted; empty once the session is over.
  std::vector<std::string> Recipients() const;

  // The clients expected to answer the current round that have not yet answered.
  std::set<std::string> Pending() const;

  // A client's answer to the current round. OK if accepted. A message that fails a check
  // (or is empty) drops the client (recorded) and returns INVALID_ARGUMENT /
  // UNAUTHENTICATED with the reason; so does a message of another round's kind
  // (SECAGG_DROP_WRONG_ROUND): the driver hands over only answers to the current round's
  // work, one per client, so a wrong kind is the client's wrong answer and the round need
  // not wait for it. FAILED_PRECONDITION, with nothing changed, if the client is not
  // expected to answer now (not in the round's set, already answered or dropped, or the
  // session is over).
  // Checks: ADVERTISE_KEYS — certificate of the federation CA, CN = `client_id`, role
  // institution; 32-byte keys that are not small-order points; signature over this
  // session's setup; keys distinct from every key accepted before. SHARE_KEYS — one
  // share of the right size for every other advertised client, labelled from this client;
  // a 32-byte commitment. MASKED_INPUT — exactly vector_words words. CONSISTENCY_CHECK —
  // the signature verifies over the survivor set. UNMASKING — exactly one well-formed share
  // at this client's point for every survivor (seed) and every dropped share holder (key).
  absl::Status Receive(const std::string& client_id, const v1::SecAggClientMessage& message);

  // The client will not answer (it declined, aborted or is known to be gone). Ignored
  // unless the client is expected in the current round and not yet dropped. A client
  // dropped after its masked input was added stays a survivor (its input is in the sum);
  // in any other round an answer already received from it is discarded.
  void Drop(const std::string& client_id, v1::SecAggDropReason reason, const std::string& detail);

  // Ends the current round: drops every client still pending (SECAGG_DROP_NO_ANSWER), then
  // either prepares the next round's messages or, after UNMASKING, rebuilds the secrets
  // and computes the sum. Aborts with a reason when fewer than threshold clients remain or
  // a secret cannot be rebuilt. Each secret is rebuilt from threshold shares and checked
  // (a seed against its commitment, a mask key against the advertised public key); if the
  // check fails, other threshold-subsets of the shares received are tried (all of them when
  // there are at most 64, else cyclic windows then random subsets, 64 attempts in all)
  // before aborting with SECAGG_SERVER_RECONSTRUCTION_FAILED. Returns the state after the
  // call; a no-op once the session is over.
  ServerState CloseRound();

  // Stops the session (SECAGG_SERVER_CANCELLED) unless it already ended.
  void Cancel();

  // The certificates (PEM) of listed clients with SHA-256 `sha256s` (the digests the list
  // gives in protocol version 2), in that order, for listed client `requester`, who needs
  // them to check its peers (Federation.FetchCertificates). Certificates are public, but
  // only a session's own clients get its list's: PERMISSION_DENIED if `requester` is not
  // listed (or, before the list is fixed, has no accepted advertisement), then
  // FAILED_PRECONDITION before the list is fixed, NOT_FOUND (naming the digest's
  // first bytes) for a digest that is not a listed certificate's. Any state, even ended.
  absl::StatusOr<std::vector<std::string>> ListedCertificates(
      const std::string& requester, std::span<const std::string> sha256s) const;

  // The session at a step boundary, so that a restarted coordinator continues the same
  // session (proto/secagg_state.proto). Only right after Create or CloseRound, before any
  // answer of the current round was accepted (drops and refused answers may have happened
  // since), or once aborted; FAILED_PRECONDITION otherwise, and always once completed (the
  // unmasked sum is never in a snapshot). It holds no secret: public keys, certificates
  // and signatures, share ciphertexts only clients can open, self-mask commitments, the
  // running sum of masked inputs and the bookkeeping (who is expected, who was dropped,
  // when and why) — never a plaintext unmasking share, which exists only while UNMASKING
  // answers are being collected. Changes nothing.
  absl::StatusOr<v1::SecAggServerSnapshot> Snapshot() const;

  // Snapshot(), serialized: what a caller that stores it needs, built without a message
  // copy of the share relays (n² shares at the masked-input boundary, kept here as bytes).
  // Parses as the message Snapshot() returns (its fields in another order); same errors.
  absl::StatusOr<std::string> SnapshotBytes() const;

  // SnapshotBytes() as pieces to be written one after the other (e.g. as
  // rocksdb::SliceParts): the share relays and the running sum are viewed where this server
  // keeps them, never copied (megabytes: n² shares at the masked-input boundary, 4 bytes a
  // word of the sum after it); the rest is owned by the result. The views are valid until
  // the next non-const call on this server or its destruction. Same errors as Snapshot().
  class SnapshotPieces {
   public:
    SnapshotPieces() = default;
    const std::vector<std::string_view>& pieces() const { return pieces_; }
    size_t size() const;
    std::string Joined() const;

   private:
    friend class SecAggServer;
    // On the heap, so that moving this object keeps the views into it valid.
    std::unique_ptr<std::string> owned_;
    std::vector<std::string_view> pieces_;
  };
  absl::StatusOr<SnapshotPieces> SnapshotInPieces() const;

  // A server that continues from `snapshot`: Outgoing() returns exactly what the original
  // returned at that boundary (byte-identical under deterministic serialisation), and fed
  // the same answers the session completes with the same sum. `options` as for Create (the
  // masked-input observer is not restored). DATA_LOSS for a malformed or inconsistent
  // snapshot: another version, a setup Create would refuse with these options, an unknown
  // state or round, or bookkeeping that does not fit the round (a session id that does not
  // match the clients' advertisements, a relay or share holder missing, a sum of the wrong
  // size, an unmasking request for another survivor set). INTERNAL if the random source
  // fails.
  static absl::StatusOr<std::unique_ptr<SecAggServer>> Restore(
      const v1::SecAggServerSnapshot& snapshot, ServerOptions options);

  // After kCompleted: the unmasked sum of the survivors' inputs (vector_words words) and
  // the survivors (clients whose inputs are in it), sorted.
  const std::vector<uint32_t>& sum() const;
  const std::vector<std::string>& survivors() const;

  // Once the consistency check has closed (collecting UNMASKING, restored there or not, or
  // kCompleted): the session's provenance (proto/provenance.proto, checked by
  // secagg/provenance.h) — its setup and digest, session id, threshold, every advertisement
  // of the key list, the survivors and their consistency signatures — with task, round,
  // stage, attempt and model hash from the setup; the caller sets `session` (its label).
  // FAILED_PRECONDITION before, and once aborted. Implemented in provenance.cc.
  absl::StatusOr<v1::SessionProvenance> Provenance() const;

  // After kAborted.
  v1::SecAggServerAbort abort_reason() const;
  const std::string& abort_detail() const;

  const std::vector<ClientDrop>& drops() const;

  // Called with every masked input as it arrives (before it is added to the sum). For the
  // test that checks the server only ever holds uniform-looking words.
  void set_masked_input_observer(
      std::function<void(const std::string& client_id, std::span<const uint32_t> words)> observer);

 private:
  struct Impl;
  explicit SecAggServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_SERVER_H_
