#include "secagg/protocol.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/mask_generator.h"
#include "proto/deterministic.h"
#include "proto/secagg.pb.h"
#include "secagg/internal/check.h"
#include "secagg/internal/wire.h"

namespace tessera::secagg {

using crypto::HkdfSha256;
using crypto::MaskGenerator;
using crypto::SecretBytes;
using crypto::Sha256;
namespace {

using internal::AppendField;
using internal::AppendUint32;

// Domain tags: one per kind of string, so that no signature, hash or key of one kind can
// stand for another.
constexpr char kAdvertiseTag[] = "tessera/secagg/v1/advertise";
constexpr char kSessionTag[] = "tessera/secagg/v1/session";
constexpr char kConsistencyTag[] = "tessera/secagg/v1/consistency";
constexpr char kShareAdTag[] = "tessera/secagg/v1/share";
constexpr char kShareChannelTag[] = "tessera/secagg/v1/share-channel";
constexpr char kPairwiseMaskTag[] = "tessera/secagg/v1/pairwise-mask";
constexpr char kSelfMaskKeyTag[] = "tessera/secagg/v1/self-mask-key";
constexpr char kSelfMaskTag[] = "tessera/secagg/v1/self-mask";
constexpr char kCoinTag[] = "tessera/secagg/v1/coin";
constexpr char kGraphTag[] = "tessera/secagg/v1/graph";

constexpr size_t kShareChannelKeyBytes = 32;  // AES-256-GCM

// The info of a key shared by two clients: tag, then both ids in sorted order, so that
// either end derives the same key.
std::string PairInfo(const char* tag, const std::string& a, const std::string& b) {
  std::string info;
  AppendField(&info, tag);
  const bool a_first = a < b;
  AppendField(&info, a_first ? a : b);
  AppendField(&info, a_first ? b : a);
  return info;
}

}  // namespace

std::string SetupDigest(const v1::SecAggSetup& setup) {
  // Serialising an in-memory message to a string only fails on allocation failure.
  absl::StatusOr<std::string> serialized = proto::DeterministicBytes(setup, "the set-up");
  TESSERA_SECAGG_CHECK(serialized.ok());
  return Sha256(*serialized);
}

int StepIndex(v1::SecAggRound step) {
  switch (step) {
    case v1::SECAGG_ADVERTISE_KEYS:
      return 0;
    case v1::SECAGG_REVEAL_COINS:
      return 1;
    case v1::SECAGG_SHARE_KEYS:
      return 2;
    case v1::SECAGG_MASKED_INPUT:
      return 3;
    case v1::SECAGG_CONSISTENCY_CHECK:
      return 4;
    case v1::SECAGG_UNMASKING:
      return 5;
    default:
      break;
  }
  return -1;
}

std::string AdvertisementSigningInput(const std::string& setup_digest, const std::string& client_id,
                                      const std::string& channel_public_key,
                                      const std::string& mask_public_key,
                                      const std::string& coin_commitment) {
  std::string out;
  AppendField(&out, kAdvertiseTag);
  AppendField(&out, setup_digest);
  AppendField(&out, client_id);
  AppendField(&out, channel_public_key);
  AppendField(&out, mask_public_key);
  if (!coin_commitment.empty()) AppendField(&out, coin_commitment);
  return out;
}

std::string CoinCommitment(const std::string& setup_digest, const std::string& client_id,
                           const std::string& coin) {
  std::string out;
  AppendField(&out, kCoinTag);
  AppendField(&out, setup_digest);
  AppendField(&out, client_id);
  AppendField(&out, coin);
  return Sha256(out);
}

std::string GraphSeed(const std::string& session_id, std::span<const v1::ListedCoin> coins) {
  std::string out;
  AppendField(&out, kGraphTag);
  AppendField(&out, session_id);
  AppendUint32(&out, static_cast<uint32_t>(coins.size()));
  for (const v1::ListedCoin& coin : coins) {
    AppendField(&out, coin.client_id());
    AppendField(&out, coin.coin());
  }
  return Sha256(out);
}

std::string SessionId(const std::string& setup_digest,
                      std::span<const v1::AdvertisementEntry> entries) {
  std::string out;
  AppendField(&out, kSessionTag);
  AppendField(&out, setup_digest);
  AppendUint32(&out, static_cast<uint32_t>(entries.size()));
  for (const v1::AdvertisementEntry& entry : entries) {
    const v1::KeyAdvertisement& ad = entry.advertisement();
    AppendField(&out, entry.client_id());
    AppendField(&out, ad.channel_public_key());
    AppendField(&out, ad.mask_public_key());
    AppendField(&out, ad.setup_digest());
    AppendField(&out, ad.signature());
    AppendField(
        &out, ad.certificate_sha256().empty() ? Sha256(ad.certificate()) : ad.certificate_sha256());
    if (!ad.coin_commitment().empty()) AppendField(&out, ad.coin_commitment());
  }
  return Sha256(out);
}

std::string ConsistencySigningInput(const std::string& session_id,
                                    std::span<const std::string> survivors) {
  std::string out;
  AppendField(&out, kConsistencyTag);
  AppendField(&out, session_id);
  AppendUint32(&out, static_cast<uint32_t>(survivors.size()));
  for (const std::string& id : survivors) AppendField(&out, id);
  return out;
}

std::string ShareAssociatedData(const std::string& session_id, const std::string& sender,
                                const std::string& receiver) {
  std::string out;
  AppendField(&out, kShareAdTag);
  AppendField(&out, session_id);
  AppendField(&out, sender);
  AppendField(&out, receiver);
  return out;
}

absl::StatusOr<SecretBytes> ShareChannelKey(const SecretBytes& shared_secret,
                                            const std::string& session_id, const std::string& a,
                                            const std::string& b) {
  return HkdfSha256(shared_secret, session_id, PairInfo(kShareChannelTag, a, b),
                    kShareChannelKeyBytes);
}

absl::StatusOr<SecretBytes> PairwiseMaskKey(const SecretBytes& shared_secret,
                                            const std::string& session_id, const std::string& a,
                                            const std::string& b) {
  return HkdfSha256(shared_secret, session_id, PairInfo(kPairwiseMaskTag, a, b),
                    MaskGenerator::kKeyBytes);
}

absl::StatusOr<SecretBytes> SelfMaskKey(const SecretBytes& seed, const std::string& session_id,
                                        const std::string& client_id) {
  std::string info;
  AppendField(&info, kSelfMaskKeyTag);
  AppendField(&info, client_id);
  return HkdfSha256(seed, session_id, info, MaskGenerator::kKeyBytes);
}

std::string SelfMaskCommitment(const std::string& session_id, const std::string& client_id,
                               const SecretBytes& seed) {
  std::string input;
  // Reserved up front so that no reallocation leaves a copy of the seed behind unwiped.
  input.reserve(4 * 4 + sizeof(kSelfMaskTag) + session_id.size() + client_id.size() + seed.size());
  AppendField(&input, kSelfMaskTag);
  AppendField(&input, session_id);
  AppendField(&input, client_id);
  AppendField(&input, seed.view());
  std::string digest = Sha256(input);
  // The input held the seed.
  SecretBytes wipe(std::move(input));
  return digest;
}

int PairwiseMaskSign(const std::string& self, const std::string& peer) {
  return self < peer ? +1 : -1;
}

uint32_t SafeThreshold(uint32_t num_invited, std::optional<uint32_t> assumed_colluders) {
  const uint64_t n = num_invited;
  const uint64_t t =
      assumed_colluders.has_value() ? (n + *assumed_colluders) / 2 + 1 : 2 * n / 3 + 1;
  return static_cast<uint32_t>(std::min<uint64_t>(t, UINT32_MAX));
}

std::string ThresholdRuleName(std::optional<uint32_t> assumed_colluders) {
  if (!assumed_colluders.has_value()) return "floor(2n/3) + 1";
  return absl::StrCat("floor((n + c)/2) + 1 with c = ", *assumed_colluders);
}

uint32_t MinimumSafeThreshold(uint32_t num_invited) {
  return SafeThreshold(num_invited, std::nullopt);
}

uint32_t DefaultThreshold(uint32_t num_invited) { return MinimumSafeThreshold(num_invited); }

}  // namespace tessera::secagg
