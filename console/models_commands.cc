// `tessera models export|verify` and `tessera predict`: the committed model out of the
// federation with its signed provenance, the check of that provenance with the CA
// certificate alone, and scoring a CSV locally with an exported model (no network).
//
// Files: `models export ... --out FILE` writes FILE and its provenance record
// FILE.provenance (model_export/provenance.h ProvenancePath); `models verify FILE` reads
// both. Nothing is written unless the record verifies with the console's CA first.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/csv.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "console/console.h"
#include "console/internal.h"
#include "crypto/hash.h"
#include "model_export/exported_model.h"
#include "model_export/provenance.h"
#include "model_export/scorer.h"
#include "proto/config.pb.h"
#include "proto/config_paths.h"

namespace tessera::console {
namespace {

constexpr char kModelsUsage[] =
    "usage: tessera models SUBCOMMAND [flags]\n\n"
    "subcommands:\n"
    "  models export  a committed model as onnx, json or csv, with its signed provenance\n"
    "                 record next to it (FILE.provenance)\n"
    "  models verify  check an exported file against its provenance record with the CA\n\n"
    "Score rows with an exported model: tessera predict MODEL DATA.csv [--out FILE].\n"
    "Run 'tessera models SUBCOMMAND --help' for flags.\n";

// The CA certificate path: --ca, else the console config's (--config or
// $TESSERA_CONSOLE_CONFIG).
absl::StatusOr<std::string> CaPath(const std::string& ca, const std::string& config) {
  if (!ca.empty()) return ca;
  std::string path = config;
  if (const char* env = std::getenv("TESSERA_CONSOLE_CONFIG"); path.empty() && env != nullptr) {
    path = env;
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "models verify needs the federation CA certificate: --ca FILE (or a console config)");
  }
  v1::ConsoleConfig cc;
  RETURN_IF_ERROR(common::LoadProtoFile(path, &cc));
  if (cc.tls().ca_cert().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " names no tls.ca_cert; give --ca"));
  }
  return proto::ResolveConfigPath(path, cc.tls().ca_cert());  // relative to the config's folder
}

void PrintRecord(const v1::ModelProvenance& record, const std::string& file) {
  const v1::ModelProvenanceBody& b = record.body();
  std::printf("file         %s (%s, %llu bytes, sha256 %s)\n", file.c_str(),
              b.export_format().c_str(), static_cast<unsigned long long>(b.export_size()),
              crypto::ToHex(b.export_sha256()).c_str());
  std::printf("task         %s (%s), round %u of %u, %s\n", b.task_id().c_str(),
              b.spec().name().c_str(), b.round(), b.spec().rounds(),
              v1::TaskState_Name(b.task_state()).c_str());
  std::printf("model        sha256 %s\n", crypto::ToHex(b.model_hash()).c_str());
  std::printf("spec         sha256 %s\n", crypto::ToHex(b.spec_hash()).c_str());
  std::printf("strategy     %s; code version %s\n", b.strategy().c_str(), b.code_version().c_str());
  for (const v1::ModelProvenanceRound& r : b.rounds()) {
    std::printf("round %-4u   fit %s; eval %s\n", r.round(),
                absl::StrJoin(r.fit_participants(), ",").c_str(),
                absl::StrJoin(r.eval_participants(), ",").c_str());
  }
  if (b.differential_privacy()) {
    std::printf("privacy      epsilon %.6g at round %u (task so far %.6g), delta %g\n",
                b.epsilon_at_round(), b.round(), b.epsilon_task(), b.delta());
  } else {
    std::printf("privacy      none (no differential privacy)\n");
  }
  std::vector<std::string> metrics;
  for (const v1::Metric& m : b.final_metrics()) {
    metrics.push_back(absl::StrFormat("%s=%.6g", m.name(), m.value()));
  }
  std::printf("metrics      %s\n", absl::StrJoin(metrics, " ").c_str());
  std::printf("signed by    %s at %s\n", b.coordinator_id().c_str(),
              internal::FormatMillis(b.signed_unix_ms()).c_str());
}

absl::Status ExportCommand(const std::vector<std::string>& args) {
  internal::Connection conn;
  uint64_t round = 0;
  std::string format;
  std::string out;
  common::FlagParser flags(
      "tessera models export [flags] TASK_ID --format onnx|json|csv --out FILE",
      "Writes a committed round's model (default: the last) as FILE, standardisation\n"
      "included so it scores raw rows, and FILE.provenance: the coordinator's signed record\n"
      "of the spec, every round's cohort and survivors, epsilon, metrics and the hashes of\n"
      "the model and of FILE. The record is verified with the CA before anything is written.");
  conn.Register(flags);
  flags.AddUint("round", &round, "the committed training round (default: the last one)");
  flags.AddString("format", &format, "onnx, json or csv (csv: linear models only)");
  flags.AddString("out", &out, "the file to write (and OUT.provenance next to it)");
  flags.Require("format");
  flags.Require("out");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("models export needs a TASK_ID");
  if (round > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("--round is out of range");
  }
  RETURN_IF_ERROR(model_export::ParseFormat(format).status());
  ASSIGN_OR_RETURN(v1::ConsoleConfig config, conn.Config());
  ASSIGN_OR_RETURN(std::string ca_pem, common::ReadFile(config.tls().ca_cert()));
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  v1::ExportModelRequest request;
  request.set_task_id(positional[0]);
  request.set_round(static_cast<uint32_t>(round));
  request.set_format(format);
  v1::ExportModelResponse response;
  grpc::ClientContext ctx;
  internal::SetDeadline(&ctx);
  RETURN_IF_ERROR(internal::CallStatus(stub->ExportModel(&ctx, request, &response)));
  if (absl::Status st =
          model_export::VerifyModelFile(response.provenance(), response.file(), ca_pem);
      !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("the coordinator's export does not verify, "
                                                "nothing written: ",
                                                st.message()));
  }
  const std::string record_path = model_export::ProvenancePath(out);
  RETURN_IF_ERROR(common::WriteFileAtomic(out, response.file()));
  RETURN_IF_ERROR(
      common::WriteFileAtomic(record_path, model_export::RecordText(response.provenance())));
  PrintRecord(response.provenance(), out);
  std::printf("wrote        %s and %s\n", out.c_str(), record_path.c_str());
  return absl::OkStatus();
}

absl::Status VerifyCommand(const std::vector<std::string>& args) {
  std::string ca;
  std::string config;
  std::string record_path;
  common::FlagParser flags(
      "tessera models verify [flags] FILE",
      "Checks that FILE is the model the federation committed: its provenance record\n"
      "(FILE.provenance) is signed by a coordinator certificate of the federation CA and\n"
      "names FILE's SHA-256. Exits 0 if verified, non-zero naming the failed check.");
  flags.AddString("ca", &ca, "the federation CA certificate (default: the console config's)");
  flags.AddString("config", &config, "console config to take the CA certificate from");
  flags.AddString("provenance", &record_path, "the record (default: FILE.provenance)");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("models verify needs a FILE");
  const std::string& file = positional[0];
  if (record_path.empty()) record_path = model_export::ProvenancePath(file);
  ASSIGN_OR_RETURN(std::string ca_path, CaPath(ca, config));
  ASSIGN_OR_RETURN(std::string ca_pem, common::ReadFile(ca_path));
  ASSIGN_OR_RETURN(std::string bytes, common::ReadFile(file));
  ASSIGN_OR_RETURN(std::string record_text, common::ReadFile(record_path));
  auto record = model_export::ParseRecordText(record_text, record_path);
  absl::Status st = record.status();
  if (st.ok()) st = model_export::VerifyModelFile(*record, bytes, ca_pem);
  if (!st.ok()) {
    // Not INVALID_ARGUMENT's exit 2 (a usage error): a file that does not verify exits 1.
    return absl::DataLossError(absl::StrCat(file, " does not verify: ", st.message()));
  }
  PrintRecord(*record, file);
  std::printf("verified     signature by %s checks out with %s; the file is the one signed\n",
              record->body().coordinator_id().c_str(), ca_path.c_str());
  return absl::OkStatus();
}

}  // namespace

namespace internal {

absl::StatusOr<std::string> ExportFormatOfPath(const std::string& path) {
  for (const char* format : {"onnx", "json", "csv"}) {
    const std::string ext = absl::StrCat(".", format);
    if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
      return std::string(format);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--export ", path, ": the file name must end in .onnx, .json or .csv"));
}

absl::Status WriteSimulationExport(const std::string& path, const std::string& file,
                                   const v1::ModelProvenance& record, const std::string& ca_pem) {
  if (file.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--export ", path, ": the task committed no training round; nothing written"));
  }
  RETURN_IF_ERROR(model_export::VerifyModelFile(record, file, ca_pem));
  RETURN_IF_ERROR(common::WriteFileAtomic(path, file));
  RETURN_IF_ERROR(common::WriteFileAtomic(model_export::ProvenancePath(path),
                                          model_export::RecordText(record)));
  RETURN_IF_ERROR(common::WriteFileAtomic(path + ".simulation-ca.pem", ca_pem));
  std::fprintf(stderr, "exported %s with %s (verify with --ca %s.simulation-ca.pem)\n",
               path.c_str(), model_export::ProvenancePath(path).c_str(), path.c_str());
  return absl::OkStatus();
}

}  // namespace internal

absl::Status ModelsCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (args.empty()) {
      return absl::InvalidArgumentError("models needs a subcommand: export or verify (--help)");
    }
    std::fputs(kModelsUsage, stdout);
    return absl::OkStatus();
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "export") return ExportCommand(rest);
  if (args[0] == "verify") return VerifyCommand(rest);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown models subcommand '", args[0].substr(0, 40), "' (export or verify; see --help)"));
}

}  // namespace tessera::console
