// `tessera tasks provenance ID --round N [--json] [--out FILE] [--verify-ca FILE]`: fetches
// a committed round's provenance (which sites' inputs make up each sum the round used, and
// their signatures over it) through the admin service and verifies it with the federation
// CA certificate alone (secagg/provenance.h). `--file FILE` verifies a record written by
// `--out` instead, without a coordinator. Exits non-zero, naming the check that failed,
// when it does not verify: the coordinator's word is not taken for it.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "console/internal.h"
#include "crypto/hash.h"
#include "proto/labels.h"
#include "proto/provenance.pb.h"
#include "secagg/provenance.h"

namespace tessera::console::internal {
namespace {

constexpr uint64_t kNoRound = std::numeric_limits<uint64_t>::max();

absl::StatusOr<v1::RoundProvenance> FetchProvenance(v1::Admin::Stub& stub, const std::string& id,
                                                    uint32_t round) {
  v1::GetRoundRequest request;
  request.set_task_id(id);
  request.set_round(round);
  v1::GetRoundResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(CallStatus(stub.GetRound(&ctx, request, &response)));
  return response.round().provenance();
}

void PrintSession(const v1::SessionProvenance& s) {
  std::vector<std::string> signers;
  for (const v1::ConsistencySignature& sig : s.signatures()) signers.push_back(sig.client_id());
  std::printf("\n%s\n", secagg::SessionName(s).c_str());
  std::printf("  invited     %s\n", absl::StrJoin(s.setup().invited(), ", ").c_str());
  std::printf("  threshold   %u\n", s.threshold());
  std::printf("  survivors   %s\n", absl::StrJoin(s.survivors(), ", ").c_str());
  std::printf("  signed by   %s\n", absl::StrJoin(signers, ", ").c_str());
  std::printf("  spec        sha256 %s\n", crypto::ToHex(s.setup().spec_hash()).c_str());
  std::printf("  setup       sha256 %s\n", crypto::ToHex(s.setup_digest()).c_str());
  std::printf("  session id  %s\n", crypto::ToHex(s.session_id()).c_str());
}

void PrintRound(const v1::RoundProvenance& p) {
  std::printf("task       %s round %u\n", p.task_id().c_str(), p.round());
  std::printf("model      sha256 %s\n", crypto::ToHex(p.model_hash()).c_str());
  std::printf("committed  %s\n", FormatMillis(p.committed_unix_ms()).c_str());
  if (!p.statistics_from().empty()) {
    std::printf("statistics reused from %s (see its round 0)\n", p.statistics_from().c_str());
  }
  for (const v1::SessionProvenance& s : p.sessions()) PrintSession(s);
}

// The CA certificate file of the console's config (or --ca).
absl::StatusOr<std::string> CaOfConsole(const Connection& conn) {
  ASSIGN_OR_RETURN(v1::ConsoleConfig config, conn.Config());
  return config.tls().ca_cert();
}

}  // namespace

absl::Status ProvenanceCommand(const std::vector<std::string>& args) {
  Connection conn;
  uint64_t round = kNoRound;
  bool json = false;
  std::string out;
  std::string verify_ca;
  std::string file;
  common::FlagParser flags(
      "tessera tasks provenance [flags] TASK_ID --round N\n"
      "       tessera tasks provenance --file FILE [--verify-ca CA_FILE]",
      "Shows which sites' inputs make up each sum a committed round used (its secure-\n"
      "aggregation sessions: invited sites, threshold, survivors and the sites that signed\n"
      "the survivor set) and verifies the sites' certificates and signatures with the\n"
      "federation CA certificate. Exits non-zero, naming the check, if it does not verify.");
  conn.Register(flags);
  flags.AddUint("round", &round, "the committed round (0 is the statistics round)");
  flags.AddBool("json", &json, "print {provenance, verified, error} as JSON");
  flags.AddString("out", &out,
                  "also write the provenance (text format) to this file, for a site to check "
                  "against its egress ledger");
  flags.AddString("verify-ca", &verify_ca,
                  "CA certificate to verify with (default: the console's CA certificate)");
  flags.AddString("file", &file,
                  "verify this provenance file (written by --out) instead of asking the "
                  "coordinator");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  v1::RoundProvenance provenance;
  std::string ca_path = verify_ca;
  if (!file.empty()) {
    if (!positional.empty() || round != kNoRound) {
      return absl::InvalidArgumentError("--file takes neither a TASK_ID nor --round");
    }
    common::TextLocations where;
    RETURN_IF_ERROR(common::LoadProtoFile(file, &provenance, &where));
    if (ca_path.empty()) {
      ASSIGN_OR_RETURN(ca_path, CaOfConsole(conn));
    }
  } else {
    if (positional.empty()) return absl::InvalidArgumentError("tasks provenance needs a TASK_ID");
    if (round == kNoRound) return absl::InvalidArgumentError("tasks provenance needs --round N");
    if (round > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError("--round is out of range");
    }
    if (ca_path.empty()) {
      ASSIGN_OR_RETURN(ca_path, CaOfConsole(conn));
    }
    ASSIGN_OR_RETURN(auto stub, conn.Connect());
    ASSIGN_OR_RETURN(provenance,
                     FetchProvenance(*stub, positional[0], static_cast<uint32_t>(round)));
  }
  ASSIGN_OR_RETURN(std::string ca_pem, common::ReadFile(ca_path));
  if (!out.empty()) {
    RETURN_IF_ERROR(common::WriteFileAtomic(out, common::ToTextProto(provenance)));
  }
  const absl::Status verified = secagg::VerifyRoundProvenance(provenance, ca_pem);
  if (json) {
    v1::ProvenanceReport report;
    *report.mutable_provenance() = provenance;
    report.set_verified(verified.ok());
    report.set_error(std::string(verified.message()));
    std::printf("%s\n", common::ToJson(report).c_str());
  } else {
    PrintRound(provenance);
    if (verified.ok()) {
      std::printf("\nverified   every certificate and signature checks out with %s\n",
                  ca_path.c_str());
    }
  }
  if (!verified.ok()) {
    return absl::Status(verified.code(),
                        absl::StrCat("provenance does not verify: ", verified.message()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::console::internal
