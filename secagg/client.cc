#include "secagg/client.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/key_agreement.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "secagg/internal/client_impl.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"

namespace tessera::secagg {

using crypto::RandomBytes;
using crypto::SecretBytes;
using crypto::X25519PrivateKey;
using internal::SetupRefusal;
using internal::StrictlySorted;
namespace {

const char* MessageKindName(v1::SecAggServerMessage::MessageCase kind) {
  switch (kind) {
    case v1::SecAggServerMessage::kSetup:
      return "setup";
    case v1::SecAggServerMessage::kAdvertisements:
      return "advertisement list";
    case v1::SecAggServerMessage::kShareRelay:
      return "share relay";
    case v1::SecAggServerMessage::kSurvivorList:
      return "survivor list";
    case v1::SecAggServerMessage::kUnmaskingRequest:
      return "unmasking request";
    case v1::SecAggServerMessage::kCoins:
      return "coin list";
    case v1::SecAggServerMessage::MESSAGE_NOT_SET:
      break;
  }
  return "empty message";
}

}  // namespace

const char* ClientStateName(ClientState state) {
  switch (state) {
    case ClientState::kAdvertised:
      return "ADVERTISED";
    case ClientState::kCoinRevealed:
      return "COIN_REVEALED";
    case ClientState::kSharesSent:
      return "SHARES_SENT";
    case ClientState::kMaskedInputSent:
      return "MASKED_INPUT_SENT";
    case ClientState::kConsistencySent:
      return "CONSISTENCY_SENT";
    case ClientState::kCompleted:
      return "COMPLETED";
    case ClientState::kAborted:
      return "ABORTED";
  }
  return "UNKNOWN";
}

namespace {

// CheckSetup's part for SecAgg+.
std::optional<SetupRefusal> CheckSparseSetup(const ClientPolicy& policy,
                                             const v1::SecAggSetup& setup) {
  if (!policy.allow_sparse) {
    return SetupRefusal{v1::SECAGG_BAD_SETUP, "this site takes part in no SecAgg+ session"};
  }
  const v1::SecAggSparse& sparse = setup.sparse();
  const auto invited = static_cast<uint32_t>(setup.invited_size());
  if (absl::Status valid = ValidateSparse(sparse, invited, invited); !valid.ok()) {
    return SetupRefusal{valid.code() == absl::StatusCode::kFailedPrecondition
                            ? v1::SECAGG_BAD_SETUP
                            : v1::SECAGG_MALFORMED_MESSAGE,
                        std::string(valid.message())};
  }
  if (sparse.colluding_fraction() < policy.sparse_min_colluding_fraction ||
      sparse.security_bits() < policy.sparse_min_security_bits) {
    return SetupRefusal{
        v1::SECAGG_BAD_SETUP,
        absl::StrCat("the SecAgg+ graph is chosen for gamma = ", sparse.colluding_fraction(),
                     " and sigma = ", sparse.security_bits(),
                     "; this site requires gamma >= ", policy.sparse_min_colluding_fraction,
                     " and sigma >= ", policy.sparse_min_security_bits)};
  }
  const uint32_t k = sparse.neighbours();
  if (SmallestLearnableGroup(k) < policy.min_threshold) {
    return SetupRefusal{
        v1::SECAGG_BAD_SETUP,
        absl::StrCat("with neighbourhoods of ", k, " a sum over ", SmallestLearnableGroup(k),
                     " sites could be learnt, below this site's minimum cohort ",
                     policy.min_threshold)};
  }
  return std::nullopt;
}

}  // namespace

std::optional<SetupRefusal> internal::CheckSetup(const std::string& client_id,
                                                 const ClientPolicy& policy,
                                                 const v1::SecAggSetup& setup) {
  auto refuse = [](v1::SecAggClientAbort reason, std::string detail) {
    return SetupRefusal{reason, std::move(detail)};
  };
  if (setup.protocol_version() < kOldestProtocolVersion ||
      setup.protocol_version() > kProtocolVersion) {
    return refuse(v1::SECAGG_BAD_SETUP,
                  absl::StrCat("unknown protocol version ", setup.protocol_version()));
  }
  if (setup.session_nonce().size() != kSessionNonceBytes) {
    return refuse(v1::SECAGG_MALFORMED_MESSAGE,
                  absl::StrCat("session nonce must be ", kSessionNonceBytes, " bytes"));
  }
  if (setup.invited().empty() || !StrictlySorted(setup.invited())) {
    return refuse(v1::SECAGG_MALFORMED_MESSAGE,
                  "invited clients must be a non-empty, sorted list without repeats");
  }
  const uint32_t invited = static_cast<uint32_t>(setup.invited_size());
  if (!std::binary_search(setup.invited().begin(), setup.invited().end(), client_id)) {
    return refuse(v1::SECAGG_BAD_SETUP, "this client is not among the invited clients");
  }
  if (setup.threshold() > invited) {
    return refuse(v1::SECAGG_BAD_SETUP, absl::StrCat("threshold ", setup.threshold(),
                                                     " exceeds the ", invited, " invited clients"));
  }
  const uint32_t safe = SafeThreshold(invited, policy.assumed_colluders);
  if (setup.threshold() < safe) {
    return refuse(v1::SECAGG_BAD_SETUP,
                  absl::StrCat("threshold ", setup.threshold(), " is below the safe threshold ",
                               safe, " for ", invited, " invited clients (rule t >= ",
                               ThresholdRuleName(policy.assumed_colluders), ")"));
  }
  if (setup.threshold() < policy.min_threshold) {
    return refuse(v1::SECAGG_BAD_SETUP,
                  absl::StrCat("threshold ", setup.threshold(), " is below this site's minimum ",
                               "cohort ", policy.min_threshold, " (rule t >= min_threshold)"));
  }
  if (absl::Status valid = ValidateEncoding(setup.encoding(), invited); !valid.ok()) {
    return refuse(valid.code() == absl::StatusCode::kFailedPrecondition
                      ? v1::SECAGG_BAD_SETUP
                      : v1::SECAGG_MALFORMED_MESSAGE,
                  std::string(valid.message()));
  }
  if (EncodedWords(setup.encoding()) != setup.vector_words()) {
    return refuse(v1::SECAGG_MALFORMED_MESSAGE,
                  absl::StrCat("vector_words ", setup.vector_words(), " differs from the ",
                               EncodedWords(setup.encoding()), " words of the encoding"));
  }
  if (setup.has_sparse()) return CheckSparseSetup(policy, setup);
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<SecAggClient>> SecAggClient::Start(
    const ClientIdentity& identity, const ClientPolicy& policy, const v1::SecAggSetup& setup,
    std::vector<uint32_t> input, absl::Time now, v1::SecAggClientMessage* reply,
    v1::SecAggClientAbort* abort) {
  if (identity.signer == nullptr || reply == nullptr) {
    return absl::InvalidArgumentError("SecAggClient::Start needs a signer and a reply message");
  }
  if (std::optional<SetupRefusal> refusal = internal::CheckSetup(identity.client_id, policy, setup);
      refusal.has_value()) {
    if (abort != nullptr) *abort = refusal->reason;
    return absl::FailedPreconditionError(absl::StrCat("secure aggregation setup refused (",
                                                      v1::SecAggClientAbort_Name(refusal->reason),
                                                      "): ", refusal->detail));
  }
  if (input.size() != setup.vector_words()) {
    if (abort != nullptr) *abort = v1::SECAGG_MALFORMED_MESSAGE;
    return absl::InvalidArgumentError(absl::StrCat(
        "the input has ", input.size(), " words, the setup says ", setup.vector_words()));
  }

  auto impl = std::make_unique<Impl>();
  impl->identity = identity;
  impl->policy = policy;
  impl->setup = setup;
  impl->setup_digest = SetupDigest(setup);
  impl->now = now;
  impl->input = std::move(input);
  ASSIGN_OR_RETURN(X25519PrivateKey channel_key, X25519PrivateKey::Generate());
  ASSIGN_OR_RETURN(X25519PrivateKey mask_key, X25519PrivateKey::Generate());
  ASSIGN_OR_RETURN(impl->seed, RandomBytes(kSelfMaskSeedBytes));

  v1::KeyAdvertisement& ad = impl->own_advertisement;
  ad.set_certificate(identity.certificate_pem);
  ad.set_channel_public_key(channel_key.public_key().bytes());
  ad.set_mask_public_key(mask_key.public_key().bytes());
  ad.set_setup_digest(impl->setup_digest);
  if (impl->sparse()) {
    ASSIGN_OR_RETURN(SecretBytes coin, RandomBytes(kCoinBytes));
    impl->coin = std::string(coin.view());
    ad.set_coin_commitment(CoinCommitment(impl->setup_digest, identity.client_id, impl->coin));
  }
  ASSIGN_OR_RETURN(std::string signature,
                   identity.signer->Sign(AdvertisementSigningInput(
                       impl->setup_digest, identity.client_id, ad.channel_public_key(),
                       ad.mask_public_key(), ad.coin_commitment())));
  ad.set_signature(std::move(signature));
  impl->channel_key.emplace(std::move(channel_key));
  impl->mask_key.emplace(std::move(mask_key));

  reply->Clear();
  *reply->mutable_advertisement() = ad;
  if (abort != nullptr) *abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  return std::unique_ptr<SecAggClient>(new SecAggClient(std::move(impl)));
}

SecAggClient::SecAggClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SecAggClient::~SecAggClient() = default;

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Handle(
    const v1::SecAggServerMessage& message) {
  return impl_->Handle(message);
}

ClientState SecAggClient::state() const { return impl_->state; }
v1::SecAggClientAbort SecAggClient::abort_reason() const { return impl_->abort_reason; }
const std::string& SecAggClient::abort_detail() const { return impl_->abort_detail; }
const std::string& SecAggClient::culprit() const { return impl_->culprit; }
const std::string& SecAggClient::session_id() const { return impl_->session_id; }

absl::StatusOr<v1::SecAggClientMessage> SecAggClient::Impl::Handle(
    const v1::SecAggServerMessage& message) {
  if (state == ClientState::kAborted) {
    return absl::FailedPreconditionError(absl::StrCat("secure aggregation already aborted (",
                                                      v1::SecAggClientAbort_Name(abort_reason),
                                                      "): ", abort_detail));
  }
  const v1::SecAggServerMessage::MessageCase kind = message.message_case();
  if (state == ClientState::kCompleted && kind == v1::SecAggServerMessage::kUnmaskingRequest) {
    return Abort(v1::SECAGG_SECOND_UNMASKING_REQUEST,
                 "an unmasking request after this client already answered one");
  }
  // The one (round, message) pair each state accepts.
  v1::SecAggRound want_round = v1::SECAGG_ROUND_UNSPECIFIED;
  v1::SecAggServerMessage::MessageCase want_kind = v1::SecAggServerMessage::MESSAGE_NOT_SET;
  switch (state) {
    case ClientState::kAdvertised:
      want_round = sparse() ? v1::SECAGG_REVEAL_COINS : v1::SECAGG_SHARE_KEYS;
      want_kind = v1::SecAggServerMessage::kAdvertisements;
      break;
    case ClientState::kCoinRevealed:
      want_round = v1::SECAGG_SHARE_KEYS;
      want_kind = v1::SecAggServerMessage::kCoins;
      break;
    case ClientState::kSharesSent:
      want_round = v1::SECAGG_MASKED_INPUT;
      want_kind = v1::SecAggServerMessage::kShareRelay;
      break;
    case ClientState::kMaskedInputSent:
      want_round = v1::SECAGG_CONSISTENCY_CHECK;
      want_kind = v1::SecAggServerMessage::kSurvivorList;
      break;
    case ClientState::kConsistencySent:
      want_round = v1::SECAGG_UNMASKING;
      want_kind = v1::SecAggServerMessage::kUnmaskingRequest;
      break;
    case ClientState::kCompleted:
    case ClientState::kAborted:
      break;
  }
  if (kind != want_kind || message.round() != want_round ||
      want_kind == v1::SecAggServerMessage::MESSAGE_NOT_SET) {
    return Abort(
        v1::SECAGG_UNEXPECTED_MESSAGE,
        absl::StrCat("a ", MessageKindName(kind), " for round ",
                     v1::SecAggRound_Name(message.round()), " in state ", ClientStateName(state)));
  }
  switch (kind) {
    case v1::SecAggServerMessage::kAdvertisements:
      return OnAdvertisements(message.advertisements());
    case v1::SecAggServerMessage::kCoins:
      return OnCoins(message.coins());
    case v1::SecAggServerMessage::kShareRelay:
      return OnShareRelay(message.share_relay());
    case v1::SecAggServerMessage::kSurvivorList:
      return OnSurvivors(message.survivor_list());
    case v1::SecAggServerMessage::kUnmaskingRequest:
      return OnUnmasking(message.unmasking_request());
    default:
      break;
  }
  return Abort(v1::SECAGG_UNEXPECTED_MESSAGE, "unreachable message kind");
}

}  // namespace tessera::secagg
