// `tessera pki ...`: the federation's CA and certificate signing, as local file operations.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/status.h"
#include "console/console.h"
#include "console/internal.h"
#include "crypto/ca_records.h"
#include "crypto/hash.h"
#include "crypto/pki.h"
#include "crypto/pki_files.h"

namespace tessera::console {
namespace {

using common::FlagParser;

absl::Status Init(const std::vector<std::string>& args) {
  std::string dir;
  std::string federation;
  uint64_t days = 3650;
  FlagParser flags("tessera pki init --dir DIR --federation NAME [--days N]",
                   "Creates the federation CA: DIR/ca.key (mode 0600; keep it offline when you\n"
                   "can) and DIR/ca.crt, which every node trusts. Refuses to replace a CA.");
  flags.AddString("dir", &dir, "directory for the CA (created with mode 0700)");
  flags.AddString("federation", &federation, "federation name, put in every certificate");
  flags.AddUint("days", &days, "validity of the CA certificate in days");
  flags.Require("dir");
  flags.Require("federation");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  if (days == 0 || days > 36500) return absl::InvalidArgumentError("--days must be 1..36500");
  RETURN_IF_ERROR(
      crypto::InitCertificateAuthorityDir(dir, federation, static_cast<int>(days), absl::Now()));
  std::printf("federation CA for '%s' created in %s (ca.key, ca.crt)\n", federation.c_str(),
              dir.c_str());
  return absl::OkStatus();
}

absl::Status Keygen(const std::vector<std::string>& args) {
  std::string name;
  std::string out_dir = ".";
  FlagParser flags("tessera pki keygen --name ID [--out-dir DIR]",
                   "Makes a private key (ID.key, mode 0600) and a certificate signing request\n"
                   "(ID.csr), for an operator or the coordinator. Institutions use\n"
                   "'tessera-client keygen' at their own site.");
  flags.AddString("name", &name, "node id, 1..64 characters from [A-Za-z0-9._-]");
  flags.AddString("out-dir", &out_dir, "directory for the key and the CSR");
  flags.Require("name");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto paths, crypto::WriteKeyAndCsr(name, out_dir));
  std::printf("private key: %s\nrequest:     %s\n", paths.key.c_str(), paths.csr.c_str());
  return absl::OkStatus();
}

absl::Status Sign(const std::vector<std::string>& args) {
  std::string ca_dir;
  std::string csr;
  std::string role_name;
  std::string sans;
  std::string out;
  uint64_t days = 365;
  FlagParser flags(
      "tessera pki sign --ca-dir DIR --csr FILE --role ROLE [flags]",
      "Signs a certificate signing request with the federation CA. The role is the\n"
      "signer's decision, not the requester's: institution (may only train), operator (may\n"
      "use the admin service) or coordinator (the server; needs --san).");
  flags.AddString("ca-dir", &ca_dir, "directory made by 'tessera pki init'");
  flags.AddString("csr", &csr, "the request (.csr) to sign");
  flags.AddString("role", &role_name, "institution, operator or coordinator");
  flags.AddString("san", &sans, "coordinator only: comma-separated DNS names / IP addresses");
  flags.AddString("out", &out, "certificate file to write (default: the CSR path with .crt)");
  flags.AddUint("days", &days, "validity in days");
  flags.Require("ca-dir");
  flags.Require("csr");
  flags.Require("role");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  if (days == 0 || days > 36500) return absl::InvalidArgumentError("--days must be 1..36500");
  crypto::SignOptions options;
  ASSIGN_OR_RETURN(options.role, crypto::ParseRole(role_name));
  options.validity_days = static_cast<int>(days);
  if (!sans.empty()) {
    options.subject_alt_names = absl::StrSplit(sans, ',', absl::SkipEmpty());
  }
  if (options.role == crypto::Role::kCoordinator && options.subject_alt_names.empty()) {
    return absl::InvalidArgumentError(
        "a coordinator certificate needs --san: the DNS names and IP addresses clients "
        "connect to (e.g. --san coordinator.example.org,10.0.0.5)");
  }
  if (out.empty()) {
    out = csr.size() > 4 && csr.substr(csr.size() - 4) == ".csr"
              ? csr.substr(0, csr.size() - 4) + ".crt"
              : csr + ".crt";
  }
  ASSIGN_OR_RETURN(crypto::CertificateInfo info,
                   crypto::SignCsrFile(ca_dir, csr, options, out, absl::Now()));
  std::printf("issued %s: %s, role %s, federation %s, valid until %s\nsha256 %s\n", out.c_str(),
              info.node_id.c_str(), crypto::RoleName(info.role), info.federation.c_str(),
              absl::FormatTime("%Y-%m-%d", info.not_after, absl::UTCTimeZone()).c_str(),
              info.fingerprint_hex.c_str());
  return absl::OkStatus();
}

std::string Day(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }

absl::Status Revoke(const std::vector<std::string>& args) {
  std::string ca_dir;
  crypto::RevokeRequest request;
  uint64_t days = crypto::kDefaultCrlDays;
  FlagParser flags(
      "tessera pki revoke NAME|SERIAL --ca-dir DIR [--reason R] [--crl-days N]",
      "Revokes a certificate: writes DIR/crl.pem (atomically), a CRL signed by the CA that\n"
      "keeps every earlier entry, with a CRL number one higher. NAME is a node id from the\n"
      "CA's index of issued certificates ('tessera pki list'); a name with several\n"
      "unrevoked certificates (after a renewal) must be revoked by SERIAL. Give crl.pem to\n"
      "the coordinator (crl_file): it re-reads it on change and hands it to the sites.");
  flags.AddString("ca-dir", &ca_dir, "directory made by 'tessera pki init'");
  flags.AddString("reason", &request.reason,
                  "unspecified, key-compromise, affiliation-changed, superseded or "
                  "cessation-of-operation");
  flags.AddUint("crl-days", &days, "nextUpdate of the CRL, in days from now (1..400)");
  flags.Require("ca-dir");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.size() != 1) {
    return absl::InvalidArgumentError("pki revoke needs the NAME or SERIAL to revoke");
  }
  if (days == 0 || days > 400) return absl::InvalidArgumentError("--crl-days must be 1..400");
  request.name_or_serial = positional.front();
  request.crl_validity = absl::Hours(24 * static_cast<int64_t>(days));
  ASSIGN_OR_RETURN(crypto::RevokeResult result,
                   crypto::RevokeCertificate(ca_dir, request, absl::Now()));
  std::printf("revoked %s%s%s (%s)\nCRL %s: number %llu, %zu revoked, next update %s\n",
              result.entry.serial_hex.c_str(), result.node_id.empty() ? "" : " of ",
              result.node_id.c_str(), result.entry.reason.c_str(), result.crl_path.c_str(),
              static_cast<unsigned long long>(result.crl.number), result.crl.revoked.size(),
              Day(result.crl.next_update).c_str());
  return absl::OkStatus();
}

absl::Status List(const std::vector<std::string>& args) {
  std::string ca_dir;
  FlagParser flags("tessera pki list --ca-dir DIR",
                   "Lists the certificates the CA issued (its index) and their state: valid,\n"
                   "expired or revoked; then the CRL's number and next update.");
  flags.AddString("ca-dir", &ca_dir, "directory made by 'tessera pki init'");
  flags.Require("ca-dir");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<crypto::IssuedCertificate> issued, crypto::ReadIssuedIndex(ca_dir));
  ASSIGN_OR_RETURN(crypto::CrlInfo crl, crypto::ReadCaDirCrl(ca_dir));
  const absl::Time now = absl::Now();
  std::printf("%-32s  %-24s  %-11s  %-10s  %s\n", "SERIAL", "NAME", "ROLE", "NOT AFTER", "STATE");
  for (const crypto::IssuedCertificate& c : issued) {
    std::string state = c.not_after < now ? "expired" : "valid";
    for (const crypto::RevokedCertificate& r : crl.revoked) {
      if (r.serial_hex == c.serial_hex)
        state = absl::StrCat("REVOKED ", Day(r.revoked_at), " ", r.reason);
    }
    std::printf("%-32s  %-24s  %-11s  %-10s  %s\n", c.serial_hex.c_str(), c.node_id.c_str(),
                c.role.c_str(), Day(c.not_after).c_str(), state.c_str());
  }
  if (crl.number == 0) {
    std::printf("no CRL yet (nothing revoked)\n");
  } else {
    std::printf("CRL number %llu, %zu revoked, next update %s%s\n",
                static_cast<unsigned long long>(crl.number), crl.revoked.size(),
                Day(crl.next_update).c_str(),
                crl.next_update < now ? " (PAST: run 'tessera pki crl')" : "");
  }
  return absl::OkStatus();
}

absl::Status Crl(const std::vector<std::string>& args) {
  std::string ca_dir;
  uint64_t days = crypto::kDefaultCrlDays;
  FlagParser flags("tessera pki crl --ca-dir DIR [--crl-days N]",
                   "Re-issues DIR/crl.pem with the same entries, a CRL number one higher and a\n"
                   "new next update; run it before the next update passes (e.g. weekly).");
  flags.AddString("ca-dir", &ca_dir, "directory made by 'tessera pki init'");
  flags.AddUint("crl-days", &days, "nextUpdate of the CRL, in days from now (1..400)");
  flags.Require("ca-dir");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  if (days == 0 || days > 400) return absl::InvalidArgumentError("--crl-days must be 1..400");
  ASSIGN_OR_RETURN(
      crypto::CrlInfo crl,
      crypto::ReissueCrl(ca_dir, absl::Hours(24 * static_cast<int64_t>(days)), absl::Now()));
  std::printf("CRL number %llu, %zu revoked, next update %s\n",
              static_cast<unsigned long long>(crl.number), crl.revoked.size(),
              Day(crl.next_update).c_str());
  return absl::OkStatus();
}

}  // namespace

absl::Status PkiCommand(const std::vector<std::string>& args) {
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "pki needs a subcommand: init, keygen, sign, revoke, list or crl");
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "init") return Init(rest);
  if (args[0] == "keygen") return Keygen(rest);
  if (args[0] == "sign") return Sign(rest);
  if (args[0] == "revoke") return Revoke(rest);
  if (args[0] == "list") return List(rest);
  if (args[0] == "crl") return Crl(rest);
  return absl::InvalidArgumentError(absl::StrCat("unknown pki subcommand '", args[0],
                                                 "' (init, keygen, sign, revoke, list or crl)"));
}

}  // namespace tessera::console
