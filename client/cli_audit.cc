// tessera-client audit verify|show|export|provenance: the site's staff (and, with a bundle,
// a data-protection officer elsewhere) check the egress ledger (client/ledger.h), and the
// coordinator's round provenance against it (client/provenance_check.h). Every
// command reads the site store read-only (OpenSiteStoreReadOnly), so it works while the
// daemon runs. Nothing printed is a payload: names, counts, sizes and digests.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/audit_summary.h"
#include "client/config_reload.h"
#include "client/ledger.h"
#include "client/provenance_check.h"
#include "client/site_store.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/pki.h"
#include "crypto/signature.h"
#include "crypto/tls.h"
#include "proto/config.pb.h"
#include "proto/labels.h"
#include "proto/provenance.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/validation.h"
#include "secagg/provenance.h"

namespace tessera::client {

absl::Status AuditMain(const std::vector<std::string>& args);

namespace {

using common::FlagParser;

constexpr char kAuditUsage[] =
    "usage: tessera-client audit COMMAND [flags]\n\n"
    "The site's egress ledger: every message this site sent to the coordinator, recorded\n"
    "(hash-chained) before it left, sealed by checkpoints signed with the site's key.\n\n"
    "commands:\n"
    "  verify      re-walk the chain and the signed checkpoints (of the store, or a bundle)\n"
    "  show        what left, per task: stages, messages, bytes, sessions and their cohorts\n"
    "  export      write a signed bundle that verifies elsewhere with only the CA certificate\n"
    "  provenance  check a round's provenance from the coordinator ('tessera tasks\n"
    "              provenance ID --round N --out FILE') against this site's own ledger\n\n"
    "Run 'tessera-client audit COMMAND --help' for a command's flags.\n";

absl::StatusOr<bool> Parse(FlagParser& flags, const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(std::vector<std::string> positional, flags.Parse(args));
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return false;
  }
  if (!positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", positional[0], "'"));
  }
  return true;
}

// Where the ledger is: --config (its data_dir, its CA) or --store DIR (with --ca FILE).
struct Where {
  std::string config_path;
  std::string store_dir;
  std::string ca_path;

  void AddFlags(FlagParser& flags, bool with_ca = false) {
    flags.AddString("config", &config_path, "the daemon's ClientConfig file (its data_dir and CA)");
    flags.AddString("store", &store_dir, "the site store's directory instead of --config");
    if (with_ca) flags.AddString("ca", &ca_path, "the federation CA certificate (PEM)");
  }

  absl::StatusOr<v1::ClientConfig> Config() const { return LoadClientConfig(config_path); }

  // The site's name: from the config's certificate, else empty.
  absl::StatusOr<std::string> SiteId() const {
    if (config_path.empty()) return std::string();
    ASSIGN_OR_RETURN(v1::ClientConfig config, Config());
    ASSIGN_OR_RETURN(std::string cert, common::ReadFile(config.tls().cert()));
    ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificate(cert));
    return info.node_id;
  }

  // Fills store_dir and ca_path from the config when one is given.
  absl::Status Resolve(bool need_ca) {
    if (config_path.empty() == store_dir.empty()) {
      return absl::InvalidArgumentError("give either --config FILE or --store DIR");
    }
    if (!config_path.empty()) {
      ASSIGN_OR_RETURN(v1::ClientConfig config, Config());
      store_dir = config.data_dir();
      if (ca_path.empty()) ca_path = config.tls().ca_cert();
    }
    if (need_ca && ca_path.empty()) {
      return absl::InvalidArgumentError("--store needs --ca FILE (the federation CA certificate)");
    }
    return absl::OkStatus();
  }
};

void PrintVerification(const LedgerVerification& v) {
  std::printf("entries:     %llu, checkpoints: %llu, signed through entry %llu\n",
              static_cast<unsigned long long>(v.entries),
              static_cast<unsigned long long>(v.checkpoints),
              static_cast<unsigned long long>(v.signed_through));
  if (v.signed_through < v.entries) {
    std::printf("unsigned:    entries %llu..%llu (chained; the next checkpoint signs them)\n",
                static_cast<unsigned long long>(v.signed_through) + 1,
                static_cast<unsigned long long>(v.entries));
  }
  if (!v.site_id.empty()) std::printf("site:        %s\n", v.site_id.c_str());
  if (!v.head_hash.empty()) std::printf("head:        %s\n", crypto::ToHex(v.head_hash).c_str());
  std::printf("ok\n");
}

absl::Status VerifyBundleFile(const std::string& path, const std::string& ca_path) {
  ASSIGN_OR_RETURN(std::string ca, common::ReadFile(ca_path));
  ASSIGN_OR_RETURN(std::string bytes, common::ReadFile(path));
  v1::LedgerBundle bundle;
  if (!bundle.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("bundle ", path, " does not parse"));
  }
  auto verified = VerifyLedgerBundle(bundle, ca);
  if (!verified.ok()) {
    return common::Annotate(verified.status(), absl::StrCat("bundle ", path, " does not verify"));
  }
  std::printf("bundle:      %s (exported %s)\n", path.c_str(),
              absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                               absl::FromUnixMillis(bundle.exported_unix_ms()), absl::UTCTimeZone())
                  .c_str());
  PrintVerification(*verified);
  return absl::OkStatus();
}

absl::Status Verify(const std::vector<std::string>& args) {
  Where where;
  std::string bundle;
  FlagParser flags(
      "tessera-client audit verify [--config FILE | --store DIR --ca FILE | --bundle FILE --ca "
      "FILE]",
      "Re-walks the egress ledger: every entry chains to the one before, every checkpoint's\n"
      "signature checks with a certificate of the federation (CA) over the chain at its\n"
      "entry. Exits non-zero naming the first entry that is changed, missing or moved.\n"
      "With --bundle, checks an exported bundle with only the CA certificate.");
  where.AddFlags(flags, /*with_ca=*/true);
  flags.AddString("bundle", &bundle, "a bundle written by 'tessera-client audit export'");
  ASSIGN_OR_RETURN(bool go, Parse(flags, args));
  if (!go) return absl::OkStatus();
  if (!bundle.empty()) {
    if (where.ca_path.empty()) return absl::InvalidArgumentError("--bundle needs --ca FILE");
    return VerifyBundleFile(bundle, where.ca_path);
  }
  RETURN_IF_ERROR(where.Resolve(/*need_ca=*/true));
  ASSIGN_OR_RETURN(std::string ca, common::ReadFile(where.ca_path));
  ASSIGN_OR_RETURN(std::unique_ptr<SiteStore> store, OpenSiteStoreReadOnly(where.store_dir));
  ASSIGN_OR_RETURN(std::vector<v1::LedgerEntry> entries, store->ListLedgerEntries());
  ASSIGN_OR_RETURN(std::vector<v1::LedgerCheckpoint> checkpoints, store->ListLedgerCheckpoints());
  auto verified = VerifyLedger(entries, checkpoints, ca);
  if (!verified.ok()) {
    return common::Annotate(verified.status(), absl::StrCat("the egress ledger in ",
                                                            where.store_dir, " does not verify"));
  }
  std::printf("ledger:      %s\n", where.store_dir.c_str());
  PrintVerification(*verified);
  return absl::OkStatus();
}

std::string Members(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return absl::StrCat(ids.size(), " (", absl::StrJoin(ids, ","), ")");
}

void PrintSummary(const v1::AuditSummary& summary) {
  std::printf(
      "entries: %llu; connection (Hello, PullWork, PullModelChunk, FetchCertificates): %llu "
      "messages, %llu bytes\n",
      static_cast<unsigned long long>(summary.entries()),
      static_cast<unsigned long long>(summary.connection_messages()),
      static_cast<unsigned long long>(summary.connection_bytes()));
  for (const v1::AuditTask& task : summary.tasks()) {
    std::printf("task %s: %llu messages, %llu bytes, stages %s, %d sessions\n",
                task.task_id().c_str(), static_cast<unsigned long long>(task.messages()),
                static_cast<unsigned long long>(task.bytes()),
                absl::StrJoin(task.stages(), ",").c_str(), task.sessions_size());
    for (const v1::AuditSession& s : task.sessions()) {
      std::string line = absl::StrCat(
          "  ", s.session(), ": ", s.messages(), " messages, ", s.bytes(), " bytes, last step ",
          s.declined() ? "declined"
                       : proto::StepLabel(static_cast<v1::SecAggRound>(s.last_step())));
      if (!s.state().empty()) absl::StrAppend(&line, ", ", s.state());
      if (s.cohort_size() > 0) absl::StrAppend(&line, ", cohort ", Members(s.cohort()));
      if (s.survivors_size() > 0) absl::StrAppend(&line, ", survivors ", Members(s.survivors()));
      if (s.dropped_size() > 0) absl::StrAppend(&line, ", dropped ", Members(s.dropped()));
      std::printf("%s\n", line.c_str());
    }
  }
}

absl::Status Show(const std::vector<std::string>& args) {
  Where where;
  std::string task;
  bool json = false;
  FlagParser flags("tessera-client audit show [--config FILE | --store DIR] [--task ID] [--json]",
                   "Summarises what left the site, per task: stages, messages, bytes, and per\n"
                   "session the cohort the site exchanged shares with and the survivors its sum\n"
                   "was released with. Sizes and names only, never a payload.");
  where.AddFlags(flags);
  flags.AddString("task", &task, "only this task");
  flags.AddBool("json", &json, "print an AuditSummary (proto/site_ledger.proto) as JSON");
  ASSIGN_OR_RETURN(bool go, Parse(flags, args));
  if (!go) return absl::OkStatus();
  RETURN_IF_ERROR(where.Resolve(/*need_ca=*/false));
  ASSIGN_OR_RETURN(std::string site_id, where.SiteId());
  ASSIGN_OR_RETURN(std::unique_ptr<SiteStore> store, OpenSiteStoreReadOnly(where.store_dir));
  ASSIGN_OR_RETURN(v1::AuditSummary summary, SummariseEgress(*store, task, site_id));
  if (!task.empty() && summary.tasks().empty()) {
    return absl::NotFoundError(absl::StrCat("nothing left the site for task ", task));
  }
  if (json) {
    std::printf("%s\n", common::ToJson(summary).c_str());
  } else {
    PrintSummary(summary);
  }
  return absl::OkStatus();
}

const char* OutcomeLabel(v1::ProvenanceSessionCheck::Outcome outcome) {
  switch (outcome) {
    case v1::ProvenanceSessionCheck::OK:
      return "ok";
    case v1::ProvenanceSessionCheck::MISMATCH:
      return "mismatch";
    default:
      return "note";
  }
}

// Exit 0 if `check` is ok; else FAILED_PRECONDITION naming the mismatched sessions.
absl::Status ReportCheck(const v1::ProvenanceCheck& check, bool json) {
  std::vector<std::string> mismatched;
  for (const v1::ProvenanceSessionCheck& s : check.sessions()) {
    if (s.outcome() == v1::ProvenanceSessionCheck::MISMATCH) mismatched.push_back(s.detail());
    if (!json)
      std::printf("%-9s %s: %s\n", OutcomeLabel(s.outcome()), s.session().c_str(),
                  s.detail().c_str());
  }
  if (json) {
    std::printf("%s\n", common::ToJson(check).c_str());
  } else if (check.ok()) {
    std::printf("ok\n");
  }
  if (check.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the coordinator's provenance of ", check.task_id(), " round ", check.round(),
                   " does not match this site's ledger: ", absl::StrJoin(mismatched, "; ")));
}

absl::Status Provenance(const std::vector<std::string>& args) {
  Where where;
  std::string site;
  bool json = false;
  FlagParser flags(
      "tessera-client audit provenance FILE [--config FILE | --store DIR --ca FILE --site NAME] "
      "[--json]",
      "Checks a round's provenance (written by 'tessera tasks provenance ID --round N --out\n"
      "FILE') with the federation CA certificate, then against this site's own ledger and\n"
      "session records: where this site sent a masked input, it must be a survivor and the\n"
      "signature the coordinator holds for it must be the one it sent; where it sent none,\n"
      "it must not be listed. Exits 1 naming each session that does not match.");
  where.AddFlags(flags, /*with_ca=*/true);
  flags.AddString("site", &site, "this site's name (default: from the config's certificate)");
  flags.AddBool("json", &json, "print a ProvenanceCheck (proto/site_ledger.proto) as JSON");
  ASSIGN_OR_RETURN(std::vector<std::string> positional, flags.Parse(args));
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return absl::OkStatus();
  }
  if (positional.size() != 1) {
    return absl::InvalidArgumentError("give one provenance FILE (see --help)");
  }
  const std::string& path = positional[0];
  RETURN_IF_ERROR(where.Resolve(/*need_ca=*/true));
  if (site.empty()) {
    ASSIGN_OR_RETURN(site, where.SiteId());
  }
  if (site.empty()) return absl::InvalidArgumentError("--store needs --site NAME");
  v1::RoundProvenance round;
  RETURN_IF_ERROR(common::LoadProtoFile(path, &round));
  ASSIGN_OR_RETURN(std::string ca, common::ReadFile(where.ca_path));
  if (absl::Status st = secagg::VerifyRoundProvenance(round, ca); !st.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("provenance ", path, " does not verify: ", st.message()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SiteStore> store, OpenSiteStoreReadOnly(where.store_dir));
  ASSIGN_OR_RETURN(v1::AuditSummary summary, SummariseEgress(*store, round.task_id(), site));
  if (!json) {
    std::printf("provenance: %s: task %s round %u, %d session%s, verified with the CA\n",
                path.c_str(), round.task_id().c_str(), round.round(), round.sessions_size(),
                round.sessions_size() == 1 ? "" : "s");
    std::printf("site:       %s\n", site.c_str());
  }
  return ReportCheck(CheckRoundProvenance(round, site, summary), json);
}

absl::Status Export(const std::vector<std::string>& args) {
  Where where;
  std::string out;
  FlagParser flags("tessera-client audit export --config FILE --out FILE",
                   "Writes the whole egress ledger (entries, checkpoints, the site certificate)\n"
                   "signed with the site's key, for 'tessera-client audit verify --bundle FILE\n"
                   "--ca ca.crt' anywhere, without the store or the config.");
  where.AddFlags(flags);
  flags.AddString("out", &out, "the bundle file to write (not replaced if it exists)");
  flags.Require("config");
  flags.Require("out");
  ASSIGN_OR_RETURN(bool go, Parse(flags, args));
  if (!go) return absl::OkStatus();
  ASSIGN_OR_RETURN(v1::ClientConfig config, where.Config());
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(crypto::TlsMaterial tls,
                   crypto::LoadTlsMaterial(config.tls(), crypto::Role::kInstitution, now));
  ASSIGN_OR_RETURN(crypto::Signer signer, crypto::Signer::Create(tls.key_pem));
  ASSIGN_OR_RETURN(std::unique_ptr<SiteStore> store, OpenSiteStoreReadOnly(config.data_dir()));
  ASSIGN_OR_RETURN(v1::LedgerBundle bundle,
                   ExportLedgerBundle(*store, signer, tls.cert_pem, tls.identity.node_id, now));
  // What the site exports must verify: a broken ledger is reported, not signed over.
  auto verified = VerifyLedgerBundle(bundle, tls.ca_cert_pem);
  if (!verified.ok()) {
    return common::Annotate(verified.status(), "the egress ledger does not verify; not exported");
  }
  RETURN_IF_ERROR(common::WriteNewFile(out, bundle.SerializeAsString(), 0644));
  std::printf("bundle:      %s: %llu entries, %llu checkpoints, site %s\n", out.c_str(),
              static_cast<unsigned long long>(verified->entries),
              static_cast<unsigned long long>(verified->checkpoints), tls.identity.node_id.c_str());
  std::printf("verify with: tessera-client audit verify --bundle %s --ca ca.crt\n", out.c_str());
  return absl::OkStatus();
}

}  // namespace

absl::Status AuditMain(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kAuditUsage, args.empty() ? stderr : stdout);
    return args.empty() ? absl::InvalidArgumentError("audit: a command is required")
                        : absl::OkStatus();
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return Verify(rest);
  if (args[0] == "show") return Show(rest);
  if (args[0] == "export") return Export(rest);
  if (args[0] == "provenance") return Provenance(rest);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown audit command '", args[0], "' (verify, show, export or provenance; see --help)"));
}

}  // namespace tessera::client
