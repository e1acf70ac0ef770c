#include "client/site_agent.h"

#include <utility>

namespace tessera::client {
namespace {

secagg::ClientIdentity Identity(const std::string& client_id, std::string certificate_pem,
                                std::string ca_cert_pem, const crypto::Signer* signer) {
  secagg::ClientIdentity identity;
  identity.client_id = client_id;
  identity.certificate_pem = std::move(certificate_pem);
  identity.signer = signer;
  identity.ca_cert_pem = std::move(ca_cert_pem);
  return identity;
}

}  // namespace

SiteAgent::SiteAgent(v1::ClientConfig config, std::string client_id, std::string certificate_pem,
                     std::string ca_cert_pem, const crypto::Signer* signer)
    : processor_(client_id, config),
      sessions_(Identity(client_id, std::move(certificate_pem), std::move(ca_cert_pem), signer),
                config.policy().min_cohort()) {}

v1::PushResultRequest SiteAgent::Answer(const v1::WorkItem& item, absl::Time now) {
  sessions_.ExpireBefore(now);
  SessionAnswer answer;
  const v1::SecAggRound step = item.secagg().round();
  if (step == v1::SECAGG_ADVERTISE_KEYS) {
    // The first step: decide on the task, compute this site's vector, join the session.
    WorkOutcome outcome = processor_.Process(item);
    if (outcome.contribution.has_value()) {
      answer = sessions_.Start(item, *outcome.contribution, now);
    } else {
      answer.decline = std::move(outcome.decline);
    }
  } else if (step != v1::SECAGG_ROUND_UNSPECIFIED) {
    answer = sessions_.Continue(item);
  } else {
    answer.decline.set_reason(v1::Decline::BAD_WORK_ITEM);
    answer.decline.set_detail("work item without a secure-aggregation step");
  }
  v1::PushResultRequest result;
  result.set_work_id(item.work_id());
  if (answer.message.has_value()) {
    *result.mutable_secagg() = std::move(*answer.message);
  } else {
    *result.mutable_decline() = std::move(answer.decline);
  }
  return result;
}

}  // namespace tessera::client
