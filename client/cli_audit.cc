// tessera-client audit verify|show|export: the site's staff (and, with a bundle, a
// data-protection officer elsewhere) check the egress ledger (client/ledger.h). Every
// command reads the site store read-only (OpenSiteStoreReadOnly), so it works while the
// daemon runs. Nothing printed is a payload: names, counts, sizes and digests.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/ledger.h"
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
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"
#include "proto/validation.h"

namespace tessera::client {

absl::Status AuditMain(const std::vector<std::string>& args);

namespace {

using common::FlagParser;

constexpr char kAuditUsage[] =
    "usage: tessera-client audit COMMAND [flags]\n\n"
    "The site's egress ledger: every message this site sent to the coordinator, recorded\n"
    "(hash-chained) before it left, sealed by checkpoints signed with the site's key.\n\n"
    "commands:\n"
    "  verify   re-walk the chain and the signed checkpoints (of the store, or of a bundle)\n"
    "  show     what left, per task: stages, messages, bytes, sessions and their cohorts\n"
    "  export   write a signed bundle that verifies elsewhere with only the CA certificate\n\n"
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

  void AddFlags(FlagParser& flags) {
    flags.AddString("config", &config_path, "the daemon's ClientConfig file (its data_dir and CA)");
    flags.AddString("store", &store_dir, "the site store's directory instead of --config");
  }

  absl::StatusOr<v1::ClientConfig> Config() const {
    v1::ClientConfig config;
    common::TextLocations where;
    RETURN_IF_ERROR(common::LoadProtoFile(config_path, &config, &where));
    RETURN_IF_ERROR(
        common::FieldErrorsToStatus(proto::ValidateClientConfig(config), config_path, &where));
    proto::ApplyClientDefaults(&config);
    return config;
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
                static_cast<unsigned long long>(v.signed_through + 1),
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
  where.AddFlags(flags);
  flags.AddString("ca", &where.ca_path, "the federation CA certificate (PEM)");
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

// The cohort, survivors, dropped and the consistency signature, from the answers the
// session record keeps (only what left the site; no share is copied).
void FromSessionRecord(const v1::SiteSessionRecord& record, const std::string& site_id,
                       v1::AuditSession* out) {
  out->set_state(v1::SiteSessionState_Name(record.state()));
  std::set<std::string> cohort;
  std::set<std::string> survivors;
  std::set<std::string> dropped;
  for (const v1::StepAnswer& answer : record.answers()) {
    if (!answer.answer().has_secagg()) continue;
    const v1::SecAggClientMessage& m = answer.answer().secagg();
    if (m.has_share_keys()) {
      if (!site_id.empty()) cohort.insert(site_id);
      for (const v1::EncryptedShare& s : m.share_keys().shares()) {
        cohort.insert(s.sender());
        cohort.insert(s.receiver());
      }
    } else if (m.has_masked_input()) {
      out->set_masked_input_request_sha256(crypto::HashMessage(answer.answer()));
    } else if (m.has_consistency()) {
      out->set_consistency_signature(m.consistency().signature());
    } else if (m.has_unmasking()) {
      if (!site_id.empty()) survivors.insert(site_id);
      for (const v1::UnmaskingShare& s : m.unmasking().shares()) {
        (s.kind() == v1::UnmaskingShare::MASK_KEY ? dropped : survivors).insert(s.owner());
      }
    }
  }
  for (const std::string& id : cohort) out->add_cohort(id);
  for (const std::string& id : survivors) out->add_survivors(id);
  for (const std::string& id : dropped) out->add_dropped(id);
}

// What left, per task (in the order first sent) and per session.
absl::StatusOr<v1::AuditSummary> Summarise(SiteStore& store, const std::string& task_filter,
                                           const std::string& site_id) {
  ASSIGN_OR_RETURN(std::vector<v1::LedgerEntry> entries, store.ListLedgerEntries());
  v1::AuditSummary summary;
  summary.set_entries(entries.size());
  std::map<std::string, int> task_index;
  std::map<std::pair<int, std::string>, int> session_index;
  for (const v1::LedgerEntry& e : entries) {
    if (e.task_id().empty()) {
      summary.set_connection_messages(summary.connection_messages() + 1);
      summary.set_connection_bytes(summary.connection_bytes() + e.byte_count());
      continue;
    }
    if (!task_filter.empty() && e.task_id() != task_filter) continue;
    auto [t, new_task] = task_index.emplace(e.task_id(), summary.tasks_size());
    if (new_task) summary.add_tasks()->set_task_id(e.task_id());
    v1::AuditTask* task = summary.mutable_tasks(t->second);
    task->set_messages(task->messages() + 1);
    task->set_bytes(task->bytes() + e.byte_count());
    const std::string stage = proto::StageLabel(e.stage());
    if (std::find(task->stages().begin(), task->stages().end(), stage) == task->stages().end()) {
      task->add_stages(stage);
    }
    auto [s, new_session] =
        session_index.emplace(std::make_pair(t->second, e.session()), task->sessions_size());
    if (new_session) {
      v1::AuditSession* session = task->add_sessions();
      session->set_session(e.session());
      session->set_round(e.round());
      session->set_stage(e.stage());
    }
    v1::AuditSession* session = task->mutable_sessions(s->second);
    session->set_messages(session->messages() + 1);
    session->set_bytes(session->bytes() + e.byte_count());
    session->set_last_step(std::max(session->last_step(), e.step()));
    session->set_declined(session->declined() || e.declined());
  }
  for (v1::AuditTask& task : *summary.mutable_tasks()) {
    for (v1::AuditSession& session : *task.mutable_sessions()) {
      auto record = store.GetSession(session.session());
      if (record.ok()) {
        FromSessionRecord(*record, site_id, &session);
      } else if (!absl::IsNotFound(record.status())) {
        return record.status();
      }
    }
  }
  return summary;
}

std::string Members(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return absl::StrCat(ids.size(), " (", absl::StrJoin(ids, ","), ")");
}

void PrintSummary(const v1::AuditSummary& summary) {
  std::printf("entries: %llu; connection (Hello, PullWork): %llu messages, %llu bytes\n",
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
  std::string site_id;
  if (!where.config_path.empty()) {
    ASSIGN_OR_RETURN(v1::ClientConfig config, where.Config());
    ASSIGN_OR_RETURN(std::string cert, common::ReadFile(config.tls().cert()));
    ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificate(cert));
    site_id = info.node_id;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SiteStore> store, OpenSiteStoreReadOnly(where.store_dir));
  ASSIGN_OR_RETURN(v1::AuditSummary summary, Summarise(*store, task, site_id));
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
  return absl::InvalidArgumentError(
      absl::StrCat("unknown audit command '", args[0], "' (verify, show or export; see --help)"));
}

}  // namespace tessera::client
