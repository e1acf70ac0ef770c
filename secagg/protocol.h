// The shared definitions of Tessera's secure-aggregation protocol (v1): the byte strings
// that are signed, hashed and used as associated data, the key derivations, the mask sign
// convention and the masking graph. The client and server state machines (client.h,
// server.h) and the tests that play a malicious coordinator all build on these, so that
// both sides compute exactly the same bytes.
//
// Every variable-length field inside a signed or hashed string is length-prefixed
// (4-byte little-endian length), and every string starts with a domain tag, so no two
// different inputs share an encoding.
//
// Pure functions; thread-safe.
#ifndef TESSERA_SECAGG_PROTOCOL_H_
#define TESSERA_SECAGG_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::v1 {
class SecAggSetup;
class AdvertisementEntry;
class ListedCoin;
enum SecAggRound : int;
}  // namespace tessera::v1

namespace tessera::secagg {

// The protocol version a server sets up sessions with. Version 2 names each certificate of
// the advertisement list by its SHA-256 (KeyAdvertisement.certificate_sha256) instead of
// carrying it; version 1, which carries them, is still accepted by clients and servers.
inline constexpr uint32_t kProtocolVersion = 2;
inline constexpr uint32_t kOldestProtocolVersion = 1;
inline constexpr size_t kSessionNonceBytes = 32;
inline constexpr size_t kSelfMaskSeedBytes = 32;
// SecAgg+: the random bytes each client commits to in its advertisement.
inline constexpr size_t kCoinBytes = 32;

// The steps in the order a session runs them: ADVERTISE_KEYS 0, REVEAL_COINS 1 (SecAgg+
// only), SHARE_KEYS 2, MASKED_INPUT 3, CONSISTENCY_CHECK 4, UNMASKING 5; -1 for any other
// value. Compare steps with this, never by enum value (REVEAL_COINS is 6 on the wire).
int StepIndex(v1::SecAggRound step);

// SHA-256 of the setup's deterministic serialisation.
std::string SetupDigest(const v1::SecAggSetup& setup);

// What a client signs in ADVERTISE_KEYS; `coin_commitment` (SecAgg+ only) is appended when
// non-empty.
std::string AdvertisementSigningInput(const std::string& setup_digest, const std::string& client_id,
                                      const std::string& channel_public_key,
                                      const std::string& mask_public_key,
                                      const std::string& coin_commitment = {});

// SecAgg+: a client's commitment to its coin, SHA-256 over "tessera/secagg/v1/coin" |
// setup digest | client id | coin.
std::string CoinCommitment(const std::string& setup_digest, const std::string& client_id,
                           const std::string& coin);

// SecAgg+: the seed of the session's graph, SHA-256 over "tessera/secagg/v1/graph" |
// session id | every listed client's id and coin in list order. The coordinator fixes the
// list (the session id) before any honest coin is revealed, and colluders commit to theirs
// before they see the honest ones, so no party can steer the graph; all it can do is
// abort the session (docs/secure-aggregation.md, "The graph").
std::string GraphSeed(const std::string& session_id, std::span<const v1::ListedCoin> coins);

// The session id: SHA-256 over the setup digest and every entry of the advertisement list
// in order (client id, both public keys, the digest it signed, its signature, SHA-256 of
// its certificate, and its coin commitment when there is one). Every client computes it from what
// it received, so a coordinator that shows different clients different setups or lists splits them
// into sessions whose shares do not decrypt and whose signatures do not match.
std::string SessionId(const std::string& setup_digest,
                      std::span<const v1::AdvertisementEntry> entries);

// What a client signs in CONSISTENCY_CHECK: the session id and the sorted survivor ids.
std::string ConsistencySigningInput(const std::string& session_id,
                                    std::span<const std::string> survivors);

// Associated data of the share ciphertext from `sender` to `receiver`.
std::string ShareAssociatedData(const std::string& session_id, const std::string& sender,
                                const std::string& receiver);

// AES-256-GCM key of the share channel between two clients: HKDF-SHA256 of their X25519
// shared secret (channel keys), salt = session id, info names the protocol and the pair in
// sorted order (so both ends derive the same key).
absl::StatusOr<crypto::SecretBytes> ShareChannelKey(const crypto::SecretBytes& shared_secret,
                                                    const std::string& session_id,
                                                    const std::string& a, const std::string& b);

// AES-128-CTR key of the pairwise mask between two clients: HKDF-SHA256 of their X25519
// shared secret (mask keys), salt = session id, info names the protocol and the pair.
absl::StatusOr<crypto::SecretBytes> PairwiseMaskKey(const crypto::SecretBytes& shared_secret,
                                                    const std::string& session_id,
                                                    const std::string& a, const std::string& b);

// AES-128-CTR key of a client's self mask, from its 32-byte seed.
absl::StatusOr<crypto::SecretBytes> SelfMaskKey(const crypto::SecretBytes& seed,
                                                const std::string& session_id,
                                                const std::string& client_id);

// The commitment to a self-mask seed a client sends in SHARE_KEYS.
std::string SelfMaskCommitment(const std::string& session_id, const std::string& client_id,
                               const crypto::SecretBytes& seed);

// +1 if `self` adds the pairwise mask it shares with `peer`, -1 if it subtracts it: the
// client whose id sorts first adds. Summed over both ends the masks cancel.
int PairwiseMaskSign(const std::string& self, const std::string& peer);

// ---- thresholds ----
//
// Why t >= floor(2n/3) + 1. The coordinator may cheat in any way and collude with up to c
// of the n invited sites. Its strongest attack on one session is a split view: it tells
// one group of sites that the survivors are S1 and another group that they are S2, so
// that one group releases a target's self-mask seed shares (the target "survived" in S1)
// and the other its mask-key shares (the target "dropped" in S2); with both secrets the
// target's masked input is unmasked. A site releases shares only after it has seen t
// valid consistency signatures on the very set it signed itself, so the attack needs t
// signatures on S1 and t on S2. An honest site signs one survivor set per session; a
// colluding site can sign both. With h = n - c honest sites the two sets can gather at
// most h + 2c = n + c signatures, so the split view needs n + c >= 2t. Any
// t >= floor((n + c)/2) + 1 makes 2t > n + c and rules it out. Tessera's threat model
// promises safety against c < n/3 colluding sites (c <= floor((n - 1)/3)); t > 2n/3, i.e.
// t = floor(2n/3) + 1, gives 2t > 4n/3 > n + c for every such c. The same t also keeps
// the sum over at least t sites' inputs and keeps the c colluders (fewer than t) from
// rebuilding any honest site's secrets by themselves.

// The least threshold that is safe for `num_invited` sites. Unset `assumed_colluders`:
// the default rule floor(2n/3) + 1 (a cheating coordinator plus any c < n/3 colluding
// sites). Set to c: floor((n + c)/2) + 1, which is never below a strict majority (c = 0)
// and may exceed n (then no threshold is safe). `assumed_colluders` is a protocol
// parameter for analysis and tests; the daemons never set it.
uint32_t SafeThreshold(uint32_t num_invited, std::optional<uint32_t> assumed_colluders);

// The rule SafeThreshold applies, for messages: "floor(2n/3) + 1" or
// "floor((n + c)/2) + 1 with c = 2".
std::string ThresholdRuleName(std::optional<uint32_t> assumed_colluders);

// The least threshold a site accepts by default: SafeThreshold(n, nullopt) =
// floor(2n/3) + 1.
uint32_t MinimumSafeThreshold(uint32_t num_invited);

// The threshold the coordinator proposes for n invited sites: the least safe one,
// floor(2n/3) + 1, so that up to n - t = ceil(n/3) - 1 sites may drop out.
uint32_t DefaultThreshold(uint32_t num_invited);

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_PROTOCOL_H_
