#include "client/cli_renew.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "crypto/pki.h"
#include "crypto/tls.h"
#include "proto/config.pb.h"
#include "proto/config_paths.h"

namespace tessera::client {

absl::Status RenewCommand(const std::vector<std::string>& args) {
  std::string config_path;
  common::FlagParser flags(
      "tessera-client renew --config FILE",
      "Makes a new private key and certificate signing request for this site, next to the\n"
      "current certificate (CERT.renew.key, mode 0600, and CERT.renew.csr), never\n"
      "overwriting a file. The current certificate keeps working. Send the .csr to the\n"
      "operator; install the signed certificate and the new key in place of the old ones\n"
      "and restart the daemon; then the operator revokes the old serial.");
  flags.AddString("config", &config_path, "the site's ClientConfig file");
  flags.Require("config");
  ASSIGN_OR_RETURN(std::vector<std::string> positional, flags.Parse(args));
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return absl::OkStatus();
  }
  if (!positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", positional[0], "'"));
  }
  v1::ClientConfig config;
  RETURN_IF_ERROR(common::LoadProtoFile(config_path, &config));
  proto::ResolveRelativePaths(config_path, &config);
  ASSIGN_OR_RETURN(crypto::TlsMaterial current,
                   crypto::LoadTlsMaterial(config.tls(), crypto::Role::kInstitution, absl::Now()));
  std::string base = config.tls().cert();
  if (absl::EndsWith(base, ".crt")) base.resize(base.size() - 4);
  const std::string key_path = base + ".renew.key";
  const std::string csr_path = base + ".renew.csr";
  for (const std::string& path : {key_path, csr_path}) {
    if (common::PathExists(path)) {
      return absl::AlreadyExistsError(
          absl::StrCat(path,
                       " already exists: a renewal is under way (send its .csr to the operator, or "
                       "move both files away to start again)"));
    }
  }
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
  ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key, current.identity.node_id));
  RETURN_IF_ERROR(common::WriteNewFile(key_path, key.view(), 0600));
  RETURN_IF_ERROR(common::WriteNewFile(csr_path, csr, 0644));
  std::printf(
      "new key:     %s\nrequest:     %s\ncurrent certificate %s (serial %s) valid until %s\n",
      key_path.c_str(), csr_path.c_str(), config.tls().cert().c_str(),
      current.identity.serial_hex.c_str(),
      absl::FormatTime("%Y-%m-%d", current.identity.not_after, absl::UTCTimeZone()).c_str());
  return absl::OkStatus();
}

}  // namespace tessera::client
