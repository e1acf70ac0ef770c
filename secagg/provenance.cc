#include "secagg/provenance.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "crypto/pki.h"
#include "crypto/signature.h"
#include "proto/labels.h"
#include "proto/provenance.pb.h"
#include "secagg/internal/server_impl.h"
#include "secagg/protocol.h"
#include "secagg/server.h"

namespace tessera::secagg {
namespace {

constexpr size_t kDigestBytes = 32;

// Errors of one session, each prefixed with its name (and the site's, when one is at fault).
class SessionErrors {
 public:
  explicit SessionErrors(std::string name) : name_(std::move(name)) {}
  absl::Status Invalid(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", what));
  }
  absl::Status Invalid(const std::string& site, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", site, ": ", what));
  }
  absl::Status Unauthenticated(const std::string& site, const std::string& what) const {
    return absl::UnauthenticatedError(absl::StrCat(name_, ": ", site, ": ", what));
  }

 private:
  const std::string name_;
};

// Check 1: complete, and the summary fields say what the setup says.
absl::Status CheckSummary(const v1::SessionProvenance& p, const SessionErrors& err) {
  if (!p.has_setup()) return err.Invalid("the record has no setup");
  const v1::SecAggSetup& setup = p.setup();
  if (p.task_id() != setup.task_id() || p.round() != setup.round() ||
      static_cast<uint32_t>(p.stage()) != setup.stage() || p.attempt() != setup.attempt()) {
    return err.Invalid("task, round, stage or attempt differ from the setup's");
  }
  if (p.model_hash() != setup.model_hash()) {
    return err.Invalid("the model hash differs from the setup's");
  }
  if (p.threshold() != setup.threshold()) {
    return err.Invalid(
        absl::StrCat("threshold ", p.threshold(), " differs from the setup's ", setup.threshold()));
  }
  if (p.setup_digest().size() != kDigestBytes || p.session_id().size() != kDigestBytes) {
    return err.Invalid("the setup digest or the session id is not 32 bytes");
  }
  if (SetupDigest(setup) != p.setup_digest()) {
    return err.Invalid("the setup digest is not the SHA-256 of the setup");
  }
  const uint32_t n = static_cast<uint32_t>(setup.invited_size());
  if (p.threshold() < MinimumSafeThreshold(n) || p.threshold() > n) {
    return err.Invalid(absl::StrCat(
        "threshold ", p.threshold(), " for ", n,
        " invited sites is outside floor(2n/3) + 1 = ", MinimumSafeThreshold(n), " .. n"));
  }
  return absl::OkStatus();
}

// Check 4: every advertisement, by a certified site of the invitation, for this setup.
// Fills `verifiers` by client id.
absl::Status CheckAdvertisements(const v1::SessionProvenance& p, const std::string& ca_cert_pem,
                                 absl::Time at, const SessionErrors& err,
                                 std::map<std::string, crypto::Verifier>* verifiers) {
  const std::set<std::string> invited(p.setup().invited().begin(), p.setup().invited().end());
  const std::string* previous = nullptr;
  for (const v1::AdvertisementEntry& entry : p.advertisements()) {
    const std::string& id = entry.client_id();
    if (previous != nullptr && !(*previous < id)) {
      return err.Invalid(id, "the advertisements are not sorted by client id without repeats");
    }
    previous = &id;
    if (!invited.contains(id)) return err.Invalid(id, "advertised but not invited by the setup");
    const v1::KeyAdvertisement& ad = entry.advertisement();
    absl::StatusOr<crypto::CertificateInfo> info =
        crypto::VerifyCertificate(ad.certificate(), ca_cert_pem, at);
    if (!info.ok()) {
      return err.Unauthenticated(id, absl::StrCat("certificate: ", info.status().message()));
    }
    if (info->node_id != id) {
      return err.Unauthenticated(id, absl::StrCat("the certificate names ", info->node_id));
    }
    if (absl::Status role = crypto::RequireRole(*info, crypto::Role::kInstitution); !role.ok()) {
      return err.Unauthenticated(id, std::string(role.message()));
    }
    if (ad.setup_digest() != p.setup_digest()) {
      return err.Invalid(id, "the advertisement was signed for another setup");
    }
    if (!ad.certificate_sha256().empty() &&
        ad.certificate_sha256() != crypto::Sha256(ad.certificate())) {
      return err.Invalid(id, "the certificate digest is not the certificate's SHA-256");
    }
    absl::StatusOr<crypto::Verifier> verifier = crypto::Verifier::Create(ad.certificate());
    if (!verifier.ok()) {
      return err.Unauthenticated(id, absl::StrCat("certificate: ", verifier.status().message()));
    }
    if (!verifier
             ->Verify(AdvertisementSigningInput(p.setup_digest(), id, ad.channel_public_key(),
                                                ad.mask_public_key(), ad.coin_commitment()),
                      ad.signature())
             .ok()) {
      return err.Unauthenticated(id, "the key advertisement's signature does not verify");
    }
    verifiers->emplace(id, *std::move(verifier));
  }
  return absl::OkStatus();
}

// Checks 6 and 7: the survivors, and their signatures over (session id, survivors).
absl::Status CheckSurvivors(const v1::SessionProvenance& p,
                            const std::map<std::string, crypto::Verifier>& verifiers,
                            const SessionErrors& err) {
  const std::vector<std::string> survivors(p.survivors().begin(), p.survivors().end());
  for (size_t i = 0; i < survivors.size(); ++i) {
    if (i > 0 && !(survivors[i - 1] < survivors[i])) {
      return err.Invalid(survivors[i], "the survivors are not sorted without repeats");
    }
    if (!verifiers.contains(survivors[i])) {
      return err.Invalid(survivors[i], "a survivor that did not advertise keys in the session");
    }
  }
  if (survivors.size() < p.threshold()) {
    return err.Invalid(
        absl::StrCat(survivors.size(), " survivors, fewer than the threshold ", p.threshold()));
  }
  const std::string signed_input = ConsistencySigningInput(p.session_id(), survivors);
  const std::set<std::string> survivor_set(survivors.begin(), survivors.end());
  const std::string* previous = nullptr;
  for (const v1::ConsistencySignature& s : p.signatures()) {
    const std::string& id = s.client_id();
    if (previous != nullptr && !(*previous < id)) {
      return err.Invalid(id, "the signatures are not sorted by signer without repeats");
    }
    previous = &id;
    if (!survivor_set.contains(id)) {
      return err.Invalid(id, "signed the consistency check but is not among the survivors");
    }
    if (!verifiers.at(id).Verify(signed_input, s.signature()).ok()) {
      return err.Unauthenticated(
          id, "the consistency signature does not verify over the session id and survivor set");
    }
  }
  if (static_cast<uint32_t>(p.signatures_size()) < p.threshold()) {
    return err.Invalid(absl::StrCat(
        p.signatures_size(), " consistency signatures, fewer than the threshold ", p.threshold()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SessionName(const v1::SessionProvenance& session) {
  return absl::StrCat(proto::StageLabel(session.stage()), " session ",
                      session.session().empty() ? "(unlabelled)" : session.session());
}

absl::Status VerifySessionProvenance(const v1::SessionProvenance& session,
                                     const std::string& ca_cert_pem, absl::Time at) {
  const SessionErrors err(SessionName(session));
  if (absl::Status s = CheckSummary(session, err); !s.ok()) return s;
  std::map<std::string, crypto::Verifier> verifiers;
  if (absl::Status s = CheckAdvertisements(session, ca_cert_pem, at, err, &verifiers); !s.ok()) {
    return s;
  }
  const std::vector<v1::AdvertisementEntry> entries(session.advertisements().begin(),
                                                    session.advertisements().end());
  if (SessionId(session.setup_digest(), entries) != session.session_id()) {
    return err.Invalid("the session id does not follow from the setup and the advertisements");
  }
  return CheckSurvivors(session, verifiers, err);
}

absl::Status VerifyRoundProvenance(const v1::RoundProvenance& round,
                                   const std::string& ca_cert_pem) {
  const std::string name = absl::StrCat(round.task_id(), " round ", round.round());
  if (round.version() != kProvenanceVersion) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": provenance version ", round.version(),
                                                   ", expected ", kProvenanceVersion));
  }
  std::set<int> stages;
  bool evaluated_later = false;
  for (const v1::SessionProvenance& session : round.sessions()) {
    // One session per round: the next round's FIT_EVALUATE session evaluated this round's
    // model (it ran on it: its setup's model hash, signed by the sites, is the round's).
    const bool evaluation_of_this_round = session.stage() == v1::STAGE_FIT_EVALUATE &&
                                          session.round() == round.round() + 1 &&
                                          session.task_id() == round.task_id();
    if (evaluation_of_this_round) {
      if (session.model_hash() != round.model_hash()) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": ", SessionName(session), " did not run on the round's model"));
      }
      if (evaluated_later) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": two fit_evaluate sessions of round ", session.round()));
      }
      evaluated_later = true;
      continue;
    }
    if (session.task_id() != round.task_id() || session.round() != round.round()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", SessionName(session), " is of ",
                                                     session.task_id(), " round ",
                                                     session.round()));
    }
    if (!stages.insert(session.stage()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": two ", proto::StageLabel(session.stage()), " sessions"));
    }
  }
  // A record with its sessions left out would otherwise verify vacuously.
  if (round.round() == 0 && round.statistics_from().empty() &&
      !stages.contains(v1::STAGE_STATISTICS)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": round 0 has no statistics session and reused no statistics"));
  }
  if (round.round() > 0 && !stages.contains(v1::STAGE_FIT) &&
      !stages.contains(v1::STAGE_FIT_EVALUATE) && !stages.contains(v1::STAGE_ANALYTICS) &&
      !stages.contains(v1::STAGE_GLM)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": the round has neither a fit, a glm nor an analytics session"));
  }
  for (const v1::SessionProvenance& session : round.sessions()) {
    // The evaluation (and the test session of a round a validation split selected) ran on
    // the round's new model: its setup, which the sites signed, binds the checkpoint.
    if ((session.stage() == v1::STAGE_EVALUATE || session.stage() == v1::STAGE_TEST) &&
        session.model_hash() != round.model_hash()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": the ",
                                                     proto::StageLabel(session.stage()),
                                                     " session's model is not the round's model"));
    }
  }
  const absl::Time at = absl::FromUnixMillis(round.committed_unix_ms());
  for (const v1::SessionProvenance& session : round.sessions()) {
    if (absl::Status s = VerifySessionProvenance(session, ca_cert_pem, at); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SessionProvenance> SecAggServer::Provenance() const {
  const Impl& s = *impl_;
  if (s.state != ServerState::kCompleted &&
      !(s.state == ServerState::kCollecting && s.round == v1::SECAGG_UNMASKING)) {
    return absl::FailedPreconditionError(
        "a session's provenance exists once its consistency check has closed");
  }
  v1::SessionProvenance p;
  p.set_task_id(s.setup.task_id());
  p.set_round(s.setup.round());
  p.set_stage(static_cast<v1::Stage>(s.setup.stage()));
  p.set_attempt(s.setup.attempt());
  p.set_model_hash(s.setup.model_hash());
  *p.mutable_setup() = s.setup;
  p.set_setup_digest(s.setup_digest);
  p.set_session_id(s.session_id);
  p.set_threshold(s.setup.threshold());
  // `clients` holds exactly the advertisement list, in its (client id) order.
  for (const auto& [id, client] : s.clients) {
    v1::AdvertisementEntry* entry = p.add_advertisements();
    entry->set_client_id(id);
    *entry->mutable_advertisement() = client.advertisement;
    entry->mutable_advertisement()->clear_certificate_sha256();  // the certificate is there
  }
  p.mutable_survivors()->Add(s.survivors.begin(), s.survivors.end());
  *p.mutable_signatures() = s.unmasking_request.signatures();
  return p;
}

}  // namespace tessera::secagg
