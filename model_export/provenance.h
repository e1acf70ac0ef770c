// Model provenance (proto/model_provenance.proto): the record the coordinator signs for an
// exported model file, and its verification with the federation CA certificate alone.
//
// The design: the coordinator builds the export file itself (deterministically, from the
// committed checkpoint, the stored spec and pooled standardisation:
// model_export/exported_model.h), puts the SHA-256 of the file's bytes and of the
// checkpoint in the record's body with the spec, the rounds' cohorts and survivor sets, ε
// and the final metrics, and signs SigningInput(body) with its certificate's key. The
// console writes the file and, next to it, the record (ProvenancePath: FILE.provenance,
// text format, exactly as RecordText renders it). VerifyModelFile then proves "this file
// is the model the federation committed": the certificate chains to the CA and has the
// coordinator role, the signature covers the body, and the file hashes to the body's
// export_sha256 (see VerifyModelFile for the full list). Any changed byte in the file
// fails the hash check; any changed byte in the record fails parsing, the canonical-form
// check or the signature.
//
// Pure functions over their arguments; thread-safe.
#ifndef TESSERA_MODEL_EXPORT_PROVENANCE_H_
#define TESSERA_MODEL_EXPORT_PROVENANCE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model_export/exported_model.h"
#include "proto/model_provenance.pb.h"
#include "proto/state.pb.h"

namespace tessera::crypto {
class Signer;
}  // namespace tessera::crypto

namespace tessera::model_export {

// The domain-separated bytes that are signed: "tessera.v1.ModelProvenance" NUL, then the
// deterministic serialisation of `body`.
std::string SigningInput(const v1::ModelProvenanceBody& body);

// Where the record of FILE goes: FILE + ".provenance".
std::string ProvenancePath(const std::string& file);

struct ProvenanceInput {
  // The task as stored, and its committed rounds (with RoundRecord.provenance), any order.
  const v1::TaskRecord* task = nullptr;
  std::span<const v1::RoundRecord> rounds;
  // The exported round (committed, >= 1) and its checkpoint's hash.
  uint32_t round = 0;
  std::string model_hash;
  Format format = Format::kOnnx;
  std::string_view file;
  std::string code_version;
  std::string coordinator_id;
  int64_t now_unix_ms = 0;
};

// The body for `input`: rounds 0..round summarised in order, ε as described in the proto.
// FAILED_PRECONDITION if `round` is not among the committed rounds; INVALID_ARGUMENT for a
// privacy spec the accountant refuses.
absl::StatusOr<v1::ModelProvenanceBody> BuildProvenanceBody(const ProvenanceInput& input);

// Signs `body` with `signer`, the key of `certificate_pem`; the record holds that
// certificate as CanonicalCertificatePem writes it (INVALID_ARGUMENT if it is not a PEM
// certificate).
absl::StatusOr<v1::ModelProvenance> SignProvenance(v1::ModelProvenanceBody body,
                                                   const crypto::Signer& signer,
                                                   const std::string& certificate_pem);

// The record file's contents (text format), and its parsing: INVALID_ARGUMENT
// "record: ..." if it does not parse, is not exactly RecordText of what it parses to, or
// holds its certificate in another PEM layout than CanonicalCertificatePem's (crypto/pki.h).
std::string RecordText(const v1::ModelProvenance& record);
absl::StatusOr<v1::ModelProvenance> ParseRecordText(const std::string& text,
                                                    const std::string& source_name);

// Checks, in this order, each failure naming its check:
//   "certificate: ..."  the signer's certificate chains to `ca_pem` as of
//                       body.signed_unix_ms (UNAUTHENTICATED) and has the coordinator role
//                       (PERMISSION_DENIED);
//   "signature: ..."    the signature verifies over SigningInput(body) (UNAUTHENTICATED);
//   "file: ..."         `file`'s size and SHA-256 equal body.export_size/export_sha256
//                       (DATA_LOSS);
//   "record: ..."       the body is coherent: spec_hash is the spec's hash, the last round
//                       summarised is body.round with the body's model_hash
//                       (FAILED_PRECONDITION).
absl::Status VerifyModelFile(const v1::ModelProvenance& record, std::string_view file,
                             const std::string& ca_pem);

}  // namespace tessera::model_export

#endif  // TESSERA_MODEL_EXPORT_PROVENANCE_H_
