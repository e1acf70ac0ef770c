#include "client/secure_sessions.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "secagg/vector_codec.h"

namespace tessera::client {
namespace {

// A session may be left open this long after its step deadline (clock skew, slow steps).
constexpr absl::Duration kGrace = absl::Minutes(5);

SessionAnswer Declined(v1::Decline::Reason reason, std::string detail) {
  SessionAnswer a;
  a.decline.set_reason(reason);
  a.decline.set_detail(std::move(detail));
  return a;
}

}  // namespace

SecureSessions::SecureSessions(secagg::ClientIdentity identity, uint32_t min_threshold)
    : identity_(std::move(identity)), min_threshold_(min_threshold) {}

SecureSessions::~SecureSessions() = default;

SessionAnswer SecureSessions::Abort(const std::string& session, v1::SecAggClientAbort reason,
                                    const std::string& detail) {
  sessions_.erase(session);
  common::LogWarning("secagg_aborted")
      .With("session", session)
      .With("reason", v1::SecAggClientAbort_Name(reason))
      .With("detail", detail);
  return Declined(v1::Decline::SECURE_AGGREGATION_ABORTED,
                  absl::StrCat(v1::SecAggClientAbort_Name(reason), ": ", detail));
}

SessionAnswer SecureSessions::Start(const v1::WorkItem& item, std::span<const double> values,
                                    absl::Time now) {
  const std::string& session = item.secagg_session();
  if (!item.secagg().has_setup() || item.secagg().round() != v1::SECAGG_ADVERTISE_KEYS) {
    return Declined(v1::Decline::BAD_WORK_ITEM, "the first step carries no session set-up");
  }
  const v1::SecAggSetup& setup = item.secagg().setup();
  // The set-up must describe this very work item.
  if (setup.task_id() != item.task_id() || setup.round() != item.round() ||
      setup.stage() != static_cast<uint32_t>(item.stage()) ||
      setup.model_hash() != item.model_hash()) {
    return Abort(session, v1::SECAGG_BAD_SETUP, "the set-up does not match its work item");
  }
  if (secagg::EncodedValues(setup.encoding()) != values.size()) {
    return Abort(session, v1::SECAGG_BAD_SETUP,
                 absl::StrCat("the encoding holds ", secagg::EncodedValues(setup.encoding()),
                              " values, this stage's vector has ", values.size()));
  }
  if (absl::Status valid =
          secagg::ValidateEncoding(setup.encoding(), static_cast<uint32_t>(setup.invited_size()));
      !valid.ok()) {
    return Abort(session, v1::SECAGG_BAD_SETUP, std::string(valid.message()));
  }
  const crypto::SecretBytes rounding_key =
      RoundingKey(item.spec().seed(), item.round(), item.stage(), identity_.client_id);
  auto words = secagg::EncodeVector(values, setup.encoding(), &rounding_key);
  if (!words.ok()) {
    // E.g. a value out of the encoding's range: said without the value.
    return Declined(v1::Decline::COMPUTE_ERROR,
                    absl::StrCat("cannot encode this site's vector: ", words.status().message()));
  }
  secagg::ClientPolicy policy;
  policy.min_threshold = min_threshold_;
  v1::SecAggClientMessage reply;
  v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  auto client =
      secagg::SecAggClient::Start(identity_, policy, setup, std::move(*words), now, &reply, &abort);
  if (!client.ok()) {
    return Abort(session,
                 abort == v1::SECAGG_CLIENT_ABORT_UNSPECIFIED ? v1::SECAGG_BAD_SETUP : abort,
                 std::string(client.status().message()));
  }
  sessions_[session] =
      Session{std::move(*client), absl::FromUnixMillis(item.deadline_unix_ms()) + kGrace};
  SessionAnswer answer;
  answer.message = std::move(reply);
  return answer;
}

SessionAnswer SecureSessions::Continue(const v1::WorkItem& item) {
  const std::string& session = item.secagg_session();
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    // Restarted since the session began, or never took part: nothing to answer with.
    return Declined(v1::Decline::SECURE_AGGREGATION_ABORTED,
                    "no open session here (the site restarted or did not start it)");
  }
  auto reply = it->second.client->Handle(item.secagg());
  if (!reply.ok()) {
    v1::SecAggClientAbort reason = it->second.client->abort_reason();
    std::string detail = it->second.client->abort_detail();
    return Abort(session, reason, detail);
  }
  it->second.expires =
      std::max(it->second.expires, absl::FromUnixMillis(item.deadline_unix_ms()) + kGrace);
  if (it->second.client->state() == secagg::ClientState::kCompleted) {
    // Keep a completed session until it expires: a second unmasking request must be
    // refused as such, not mistaken for an unknown session.
    common::LogInfo("secagg_completed").With("session", session);
  }
  SessionAnswer answer;
  answer.message = std::move(*reply);
  return answer;
}

crypto::SecretBytes SecureSessions::RoundingKey(uint64_t task_seed, uint32_t round, v1::Stage stage,
                                                const std::string& client_id) {
  std::string digest = crypto::Sha256(absl::StrCat("tessera/rounding/v1/", task_seed, "/", round,
                                                   "/", static_cast<int>(stage), "/", client_id));
  digest.resize(16);
  return crypto::SecretBytes(std::move(digest));
}

void SecureSessions::ExpireBefore(absl::Time now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.expires < now) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace tessera::client
