#include "client/site_agent.h"

#include <string>
#include <utility>
#include <vector>

#include "client/contribution_key.h"

namespace tessera::client {
namespace {

secagg::ClientIdentity Identity(const std::string& client_id, std::string certificate_pem,
                                std::string ca_cert_pem, const crypto::Signer* signer,
                                const crypto::RevocationList* revocations) {
  secagg::ClientIdentity identity;
  identity.client_id = client_id;
  identity.certificate_pem = std::move(certificate_pem);
  identity.signer = signer;
  identity.ca_cert_pem = std::move(ca_cert_pem);
  identity.revocations = revocations;
  return identity;
}

}  // namespace

SiteAgent::SiteAgent(const v1::ClientConfig& config, const std::string& client_id,
                     std::string certificate_pem, std::string ca_cert_pem,
                     const crypto::Signer* signer, std::unique_ptr<SiteStore> store,
                     const crypto::RevocationList* revocations)
    : store_(std::move(store)),
      approvals_(store_.get()),
      processor_(client_id, config),
      sessions_(Identity(client_id, std::move(certificate_pem), std::move(ca_cert_pem), signer,
                         revocations),
                config.policy(), store_.get()) {
  processor_.SetApprovalGate([this](const v1::WorkItem& item, const v1::LocalPolicy& policy) {
    return approvals_.Admit(item.task_id(), item.spec(), item.spec_hash(), policy, now_);
  });
}

void SiteAgent::SetPolicy(const v1::LocalPolicy& policy) {
  processor_.SetPolicy(policy);
  sessions_.SetPolicy(policy);
}

SiteAgent::~SiteAgent() = default;

v1::PushResultRequest SiteAgent::Answer(const v1::WorkItem& item, absl::Time now) {
  now_ = now;
  sessions_.ExpireBefore(now);
  const v1::SecAggRound step = item.secagg().round();
  if (step == v1::SECAGG_ADVERTISE_KEYS) {
    // The first step: the set-up and the store first (a repeated request is answered as
    // before; a contribution already sent is refused before any data is read), then the
    // task and the local data, then the session.
    const std::vector<std::string> keys =
        ContributionKeys(item.spec(), item.stage(), item.model_hash());
    if (auto early = sessions_.Precheck(item, keys)) return *std::move(early);
    WorkOutcome outcome = processor_.Process(item);
    if (outcome.contribution.has_value()) {
      return sessions_.Start(item, *outcome.contribution, keys, now);
    }
    v1::PushResultRequest declined;
    declined.set_work_id(item.work_id());
    *declined.mutable_decline() = std::move(outcome.decline);
    return declined;
  }
  if (step != v1::SECAGG_ROUND_UNSPECIFIED) return sessions_.Continue(item, now);
  v1::PushResultRequest declined;
  declined.set_work_id(item.work_id());
  declined.mutable_decline()->set_reason(v1::Decline::BAD_WORK_ITEM);
  declined.mutable_decline()->set_detail("work item without a secure-aggregation step");
  return declined;
}

}  // namespace tessera::client
