// `tessera admin backup DIR`: a consistent copy of a running coordinator's store, streamed
// over the admin service into DIR on the operator's machine (coordinator/store_backup.h;
// docs/operations.md, "Backup, restore and upgrade"). The coordinator keeps running and
// its tasks go on meanwhile. DIR must not exist or be an empty folder; a stream that fails
// leaves nothing behind, so a folder with a manifest is always a whole, checked backup.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "console/console.h"
#include "console/internal.h"
#include "coordinator/store_backup.h"

namespace tessera::console {
namespace {

constexpr char kAdminUsage[] =
    "usage: tessera admin SUBCOMMAND [flags]\n\n"
    "subcommands:\n"
    "  admin backup  copy the running coordinator's store into a new folder\n\n"
    "Restore: stop the coordinator, then tessera-coordinator --config FILE --restore-from DIR\n"
    "into an empty data_dir (docs/operations.md, \"Backup, restore and upgrade\").\n"
    "Run 'tessera admin SUBCOMMAND --help' for flags.\n";

// Longest a backup stream may take: a store of many large models crosses a slow link.
constexpr absl::Duration kBackupTimeout = absl::Hours(6);

absl::Status BackupCommand(const std::vector<std::string>& args) {
  internal::Connection conn;
  common::FlagParser flags(
      "tessera admin backup [flags] DIR",
      "Copies the coordinator's whole store, as of one instant, into DIR (created 0700; it\n"
      "must not exist or be empty) while the coordinator runs: DIR/store/ holds the files of\n"
      "a RocksDB checkpoint and DIR/manifest.textproto their sizes and SHA-256, the store's\n"
      "schema version and the coordinator's version. Every file is checked against the\n"
      "manifest before the manifest is written; a failed backup leaves nothing behind.");
  conn.Register(flags);
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("admin backup needs a folder DIR");
  const std::string& dir = positional[0];
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  ASSIGN_OR_RETURN(std::unique_ptr<coordinator::BackupWriter> writer,
                   coordinator::BackupWriter::Create(dir));
  const absl::Time started = absl::Now();
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(started + kBackupTimeout));
  std::unique_ptr<grpc::ClientReader<v1::BackupStoreChunk>> reader =
      stub->BackupStore(&ctx, v1::BackupStoreRequest());
  v1::BackupStoreChunk chunk;
  absl::Status written;
  while (written.ok() && reader->Read(&chunk)) written = writer->Add(chunk);
  if (!written.ok()) ctx.TryCancel();
  const grpc::Status finished = reader->Finish();
  absl::Status st = written.ok() ? internal::CallStatus(finished) : written;
  if (st.ok() && !writer->complete()) {
    st = absl::DataLossError("the coordinator ended the backup stream without its manifest");
  }
  if (!st.ok()) {
    writer->Abandon();
    return absl::Status(st.code(),
                        absl::StrCat("backup failed, nothing kept in ", dir, ": ", st.message()));
  }
  const v1::StoreBackupManifest& manifest = writer->manifest();
  std::printf(
      "backup written to %s: %d files, %llu bytes, %u tasks (%u unfinished), store schema "
      "version %u, coordinator %s, taken %s UTC, in %lld ms\n",
      dir.c_str(), manifest.files_size(), static_cast<unsigned long long>(writer->bytes()),
      manifest.tasks(), manifest.unfinished_tasks(), manifest.schema_version(),
      manifest.coordinator_version().c_str(), internal::FormatMillis(manifest.created_ms()).c_str(),
      static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - started)));
  return absl::OkStatus();
}

}  // namespace

absl::Status AdminCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (args.empty())
      return absl::InvalidArgumentError("admin needs a subcommand: backup (--help)");
    std::fputs(kAdminUsage, stdout);
    return absl::OkStatus();
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "backup") return BackupCommand(rest);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown admin subcommand '", args[0].substr(0, 40), "' (backup; see --help)"));
}

}  // namespace tessera::console
