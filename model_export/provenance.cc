#include "model_export/provenance.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/pki.h"
#include "crypto/signature.h"
#include "dp/rdp.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace tessera::model_export {
namespace {

constexpr std::string_view kDomain("tessera.v1.ModelProvenance\0", 27);

v1::ModelProvenanceRound Summarise(const v1::RoundRecord& r) {
  v1::ModelProvenanceRound out;
  out.set_round(r.round());
  *out.mutable_fit_participants() = r.fit_participants();
  *out.mutable_eval_participants() = r.eval_participants();
  for (const v1::SessionProvenance& s : r.provenance().sessions()) {
    v1::ModelProvenanceRound::Session* session = out.add_sessions();
    session->set_session(s.session());
    *session->mutable_invited() = s.setup().invited();
    *session->mutable_survivors() = s.survivors();
  }
  out.set_model_hash(r.model_hash());
  *out.mutable_metrics() = r.metrics();
  out.set_committed_unix_ms(r.committed_unix_ms());
  out.set_statistics_from(r.statistics_from());
  return out;
}

void AddReleases(const v1::RoundRecord& r, std::vector<double>* sigmas) {
  for (const v1::PrivacyRelease& release : r.releases()) {
    sigmas->push_back(release.noise_multiplier());
  }
}

}  // namespace

std::string SigningInput(const v1::ModelProvenanceBody& body) {
  std::string out(kDomain);
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  body.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

std::string ProvenancePath(const std::string& file) { return file + ".provenance"; }

absl::StatusOr<v1::ModelProvenanceBody> BuildProvenanceBody(const ProvenanceInput& input) {
  const v1::TaskRecord& task = *input.task;
  std::vector<const v1::RoundRecord*> rounds;
  for (const v1::RoundRecord& r : input.rounds) rounds.push_back(&r);
  std::sort(rounds.begin(), rounds.end(),
            [](const auto* a, const auto* b) { return a->round() < b->round(); });
  v1::ModelProvenanceBody body;
  body.set_version(1);
  body.set_task_id(task.task_id());
  body.set_round(input.round);
  *body.mutable_spec() = task.spec();
  body.set_spec_hash(task.spec_hash());
  body.set_code_version(input.code_version);
  body.set_strategy(v1::StrategySpec::Kind_Name(task.spec().strategy().kind()));
  std::vector<double> at_round, whole_task;
  const v1::RoundRecord* exported = nullptr;
  for (const v1::RoundRecord* r : rounds) {
    AddReleases(*r, &whole_task);
    if (r->round() > input.round) continue;
    AddReleases(*r, &at_round);
    *body.add_rounds() = Summarise(*r);
    if (r->round() == input.round) exported = r;
  }
  if (exported == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(task.task_id(), " has no committed round ", input.round));
  }
  for (const v1::PrivacyRelease& r : task.uncommitted_releases()) {
    whole_task.push_back(r.noise_multiplier());
  }
  if (task.spec().has_privacy()) {
    const double delta = task.spec().privacy().delta();
    body.set_differential_privacy(true);
    body.set_delta(delta);
    ASSIGN_OR_RETURN(double eps_round, dp::EpsilonOfReleases(at_round, delta));
    ASSIGN_OR_RETURN(double eps_task, dp::EpsilonOfReleases(whole_task, delta));
    body.set_epsilon_at_round(eps_round);
    body.set_epsilon_task(eps_task);
  }
  *body.mutable_final_metrics() = exported->metrics();
  body.set_model_hash(input.model_hash);
  body.set_export_format(FormatName(input.format));
  body.set_export_sha256(crypto::Sha256(input.file));
  body.set_export_size(input.file.size());
  *body.mutable_standardization() = task.standardization();
  body.set_signed_unix_ms(input.now_unix_ms);
  body.set_coordinator_id(input.coordinator_id);
  body.set_task_state(task.state());
  return body;
}

absl::StatusOr<v1::ModelProvenance> SignProvenance(v1::ModelProvenanceBody body,
                                                   const crypto::Signer& signer,
                                                   const std::string& certificate_pem) {
  v1::ModelProvenance record;
  ASSIGN_OR_RETURN(std::string signature, signer.Sign(SigningInput(body)));
  *record.mutable_body() = std::move(body);
  record.set_signature(std::move(signature));
  // As the record's canonical form requires it (ParseRecordText).
  ASSIGN_OR_RETURN(*record.mutable_certificate_pem(),
                   crypto::CanonicalCertificatePem(certificate_pem));
  return record;
}

std::string RecordText(const v1::ModelProvenance& record) { return common::ToTextProto(record); }

absl::StatusOr<v1::ModelProvenance> ParseRecordText(const std::string& text,
                                                    const std::string& source_name) {
  v1::ModelProvenance record;
  if (absl::Status st = common::ParseTextProto(text, source_name, &record, nullptr); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("record: ", st.message()));
  }
  // The text as RecordText writes it, and the signer's certificate as OpenSSL writes it:
  // another layout of the same certificate (line width, unused bits of the base64) would
  // leave every check below passing on bytes nobody wrote.
  absl::StatusOr<std::string> certificate =
      crypto::CanonicalCertificatePem(record.certificate_pem());
  if (RecordText(record) != text ||
      (certificate.ok() && *certificate != record.certificate_pem())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record: ", source_name,
        " is not byte for byte the record tessera models export wrote (edited or damaged)"));
  }
  return record;
}

absl::Status VerifyModelFile(const v1::ModelProvenance& record, std::string_view file,
                             const std::string& ca_pem) {
  const v1::ModelProvenanceBody& body = record.body();
  const absl::Time at = absl::FromUnixMillis(body.signed_unix_ms());
  auto info = crypto::VerifyCertificate(record.certificate_pem(), ca_pem, at);
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        absl::StrCat("certificate: the signer's certificate does not verify "
                                     "with the CA: ",
                                     info.status().message()));
  }
  if (absl::Status st = crypto::RequireRole(*info, crypto::Role::kCoordinator); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("certificate: ", st.message()));
  }
  ASSIGN_OR_RETURN(crypto::Verifier verifier, crypto::Verifier::Create(record.certificate_pem()));
  if (absl::Status st = verifier.Verify(SigningInput(body), record.signature()); !st.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("signature: the record is not signed by coordinator ", info->node_id,
                     " (the record was altered after signing)"));
  }
  if (file.size() != body.export_size() || crypto::Sha256(file) != body.export_sha256()) {
    return absl::DataLossError(absl::StrCat(
        "file: its SHA-256 is ", crypto::ToHex(crypto::Sha256(file)), " (", file.size(),
        " bytes), the signed record says ", crypto::ToHex(body.export_sha256()), " (",
        body.export_size(), " bytes): the file was altered or is not this export"));
  }
  if (crypto::HashTaskSpec(body.spec()) != body.spec_hash()) {
    return absl::FailedPreconditionError("record: spec_hash is not the hash of the spec");
  }
  if (body.rounds().empty() || body.rounds().rbegin()->round() != body.round() ||
      body.rounds().rbegin()->model_hash() != body.model_hash()) {
    return absl::FailedPreconditionError(
        "record: the last round summarised is not the exported round with its model hash");
  }
  return absl::OkStatus();
}

}  // namespace tessera::model_export
