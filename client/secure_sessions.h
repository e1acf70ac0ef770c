// The site's side of secure aggregation across the steps of each session. One SecAggClient
// (secagg/client.h) per open session, keyed by the work item's session label: it
// starts on the set-up step with the vector the WorkProcessor computed from local data,
// encoded per the session's encoding, and answers the later steps. A session ends when it
// completes or aborts, or when it outlives its deadline.
//
// Before starting a session the site checks that the set-up describes the work item it
// came with (task, round, stage, model hash, vector length): a coordinator cannot attach a
// foreign set-up to a work item. Every abort becomes a Decline naming the reason; nothing
// secret or computed from data is ever put in one.
//
// Not thread-safe: used by the daemon's one work loop.
#ifndef TESSERA_CLIENT_SECURE_SESSIONS_H_
#define TESSERA_CLIENT_SECURE_SESSIONS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/time/time.h"
#include "crypto/secret.h"
#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"
#include "secagg/client.h"

namespace tessera::client {

struct SessionAnswer {
  // Set when the site answers the step.
  std::optional<v1::SecAggClientMessage> message;
  // Set (reason != REASON_UNSPECIFIED) when the site leaves the session.
  v1::Decline decline;
};

class SecureSessions {
 public:
  // `identity.signer` must outlive this object. `min_threshold`: the site's minimum cohort.
  SecureSessions(secagg::ClientIdentity identity, uint32_t min_threshold);
  ~SecureSessions();

  // The set-up step: `values` is this site's contribution for the item's stage.
  SessionAnswer Start(const v1::WorkItem& item, std::span<const double> values, absl::Time now);

  // A later step of an open session.
  SessionAnswer Continue(const v1::WorkItem& item);

  // Forgets sessions whose last step deadline passed before `now` (wiping their secrets).
  void ExpireBefore(absl::Time now);

  size_t open_sessions() const { return sessions_.size(); }

  // The key of the stochastic rounding of this site's vector for a stage: the first 16 bytes
  // of SHA-256("tessera/rounding/v1", task seed, round, stage, site). Deterministic, so that
  // with the same seeds the same task gives the same model; the rounding protects nothing.
  static crypto::SecretBytes RoundingKey(uint64_t task_seed, uint32_t round, v1::Stage stage,
                                         const std::string& client_id);

 private:
  struct Session {
    std::unique_ptr<secagg::SecAggClient> client;
    absl::Time expires;
  };
  SessionAnswer Abort(const std::string& session, v1::SecAggClientAbort reason,
                      const std::string& detail);

  const secagg::ClientIdentity identity_;
  const uint32_t min_threshold_;
  std::map<std::string, Session> sessions_;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_SECURE_SESSIONS_H_
