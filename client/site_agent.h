// Everything a site decides and computes for one work item, apart from any transport: on the
// first step of a session, the SecureSessions' checks of the set-up and of the site store
// (a repeated request, a contribution already sent), then the WorkProcessor's checks (with
// the approval queue's say, client/approvals.h) and computation, then the session's start; on later
// steps the SecureSessions alone. Every answer is recorded in the site store before Answer returns
// it. The daemon moves the answers over gRPC; the simulator (simulation/simulation.h) calls the
// coordinator in process. Both run this same code.
//
// Not thread-safe: one agent per site, one caller.
#ifndef TESSERA_CLIENT_SITE_AGENT_H_
#define TESSERA_CLIENT_SITE_AGENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/approvals.h"
#include "client/secure_sessions.h"
#include "client/site_store.h"
#include "client/work_processor.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"

namespace tessera::crypto {
class Signer;
}  // namespace tessera::crypto

namespace tessera::client {

class EgressLedger;

class SiteAgent {
 public:
  // `signer` signs with the site's certificate key and must outlive the agent. `config`
  // must be validated, defaults applied. `store` is the site store (OpenSiteStore on
  // config.data_dir for a daemon; an in-memory one for a simulation).
  // `revocations` (may be null; must outlive the agent): the site's newest CRL, checked
  // against every peer of a secure-aggregation session.
  SiteAgent(const v1::ClientConfig& config, const std::string& client_id,
            std::string certificate_pem, std::string ca_cert_pem, const crypto::Signer* signer,
            std::unique_ptr<SiteStore> store, const crypto::RevocationList* revocations = nullptr);
  ~SiteAgent();

  // Loads every configured CSV once (errors name the file).
  absl::Status Preload() { return processor_.Preload(); }

  // This site's answer to `item`: its secure-aggregation message for the step, or a
  // reasoned decline, already recorded in the site store. `now` is when certificates are
  // checked.
  v1::PushResultRequest Answer(const v1::WorkItem& item, absl::Time now);

  // Deletes, with their secrets, the records of sessions whose retention ended before
  // `now` (SecureSessions::ExpireBefore; at most once a minute). Answer does it first; the
  // daemon also calls it while no work comes (an idle or unreachable coordinator), so that
  // a session left open does not keep its keys and shares. Same thread as Answer.
  void ExpireSessions(absl::Time now) { sessions_.ExpireBefore(now); }

  // The site store the agent records in (the daemon's egress ledger shares it).
  SiteStore& store() { return *store_; }
  // Replaces the local policy (a reload, validated, defaults applied): items answered
  // afterwards are checked against it. Same thread as Answer.
  void SetPolicy(const v1::LocalPolicy& policy);

  // The daemon's egress ledger over store() (SecureSessions::SetLedger: each answer is
  // written with its PushResult's ledger entry). Must outlive every later Answer; null: none.
  void SetLedger(EgressLedger* ledger) { sessions_.SetLedger(ledger); }

  // The site's approval queue (client/approvals.h): thread-safe, so the control socket's
  // threads may decide while Answer runs. Lives as long as the agent.
  ApprovalQueue* approvals() { return &approvals_; }

 private:
  std::unique_ptr<SiteStore> store_;
  ApprovalQueue approvals_;
  absl::Time now_;  // of the Answer in progress, for the approval gate
  WorkProcessor processor_;
  SecureSessions sessions_;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_SITE_AGENT_H_
