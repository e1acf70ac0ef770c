// tessera-coordinator: the federation's coordinator daemon.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/proto_text.h"
#include "common/service_notify.h"
#include "common/signals.h"
#include "common/version.h"
#include "coordinator/server.h"
#include "coordinator/store_backup.h"
#include "coordinator/store_repair.h"
#include "crypto/grpc_log.h"
#include "crypto/tls.h"
#include "proto/config.pb.h"
#include "proto/config_paths.h"
#include "proto/validation.h"

namespace {

// --restore-from: docs/operations.md, "Backup, restore and upgrade".
absl::Status Restore(const std::string& backup_dir, const std::string& data_dir) {
  auto restored = tessera::coordinator::RestoreStoreBackup(backup_dir, data_dir);
  if (!restored.ok()) return restored.status();
  std::printf(
      "restored %s into %s: %u tasks (%u unfinished; they resume when the coordinator starts), "
      "store schema version %u, backup taken by tessera-coordinator %s at %s\n",
      backup_dir.c_str(), data_dir.c_str(), restored->tasks, restored->unfinished_tasks,
      restored->manifest.schema_version(), restored->manifest.coordinator_version().c_str(),
      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                       absl::FromUnixMillis(restored->manifest.created_ms()), absl::UTCTimeZone())
          .c_str());
  return absl::OkStatus();
}

// --repair-store: docs/operations.md, "A damaged store".
absl::Status Repair(const std::string& data_dir, bool confirm) {
  auto report = tessera::coordinator::RepairRocksDbStore(data_dir, confirm);
  if (!report.ok()) return report.status();
  std::fputs(report->c_str(), stdout);
  return absl::OkStatus();
}

// The flags that override a field of the config file (empty: the file's value).
struct ConfigOverrides {
  std::string listen;
  std::string ready_file;
  std::string data_dir;
  std::string log_format;
  std::string log_file;
  std::string metrics_listen;
  std::string metrics_ready_file;
};

// The config file with its relative paths resolved and `overrides` applied, validated
// (errors name the file's line) and with its defaults filled in.
absl::StatusOr<tessera::v1::CoordinatorConfig> LoadConfig(const std::string& path,
                                                          const ConfigOverrides& overrides) {
  tessera::v1::CoordinatorConfig config;
  tessera::common::TextLocations where;
  if (auto st = tessera::common::LoadProtoFile(path, &config, &where); !st.ok()) return st;
  tessera::proto::ResolveRelativePaths(path, &config);
  if (!overrides.listen.empty()) config.set_listen_address(overrides.listen);
  if (!overrides.ready_file.empty()) config.set_ready_file(overrides.ready_file);
  if (!overrides.data_dir.empty()) config.set_data_dir(overrides.data_dir);
  if (!overrides.log_format.empty()) config.set_log_format(overrides.log_format);
  if (!overrides.log_file.empty()) config.set_log_file(overrides.log_file);
  if (!overrides.metrics_listen.empty()) {
    config.set_metrics_listen_address(overrides.metrics_listen);
  }
  if (!overrides.metrics_ready_file.empty()) {
    config.set_metrics_ready_file(overrides.metrics_ready_file);
  }
  if (auto st = tessera::common::FieldErrorsToStatus(
          tessera::proto::ValidateCoordinatorConfig(config), path, &where);
      !st.ok()) {
    return st;
  }
  tessera::proto::ApplyCoordinatorDefaults(&config);
  return config;
}

absl::Status Main(int argc, char** argv, bool* help_shown) {
  using tessera::common::FlagParser;
  std::string config_path;
  ConfigOverrides overrides;
  bool verbose = false;
  std::string restore_from;
  bool repair_store = false;
  bool confirm_data_loss = false;
  FlagParser flags(
      "tessera-coordinator --config FILE [flags]",
      "Runs the federation coordinator: one TLS 1.3 port with client certificates required,\n"
      "the federation service for institutions and the admin service for operators.\n"
      "State lives in RocksDB under data_dir; unfinished tasks resume on start.");
  flags.AddString("config", &config_path, "CoordinatorConfig file (text format or .json)");
  flags.AddString("listen", &overrides.listen, "override listen_address (host:port, port 0 = any)");
  flags.AddString("ready-file", &overrides.ready_file, "override ready_file");
  flags.AddString("data-dir", &overrides.data_dir, "override data_dir");
  flags.AddBool("verbose", &verbose, "log debug events too");
  flags.AddString("log-format", &overrides.log_format, "override log_format: logfmt or json");
  flags.AddString("log-file", &overrides.log_file,
                  "override log_file (append; reopened on SIGHUP)");
  flags.AddString("metrics-listen", &overrides.metrics_listen,
                  "override metrics_listen_address (/metrics, /healthz, /readyz)");
  flags.AddString("metrics-ready-file", &overrides.metrics_ready_file,
                  "override metrics_ready_file");
  flags.AddString("restore-from", &restore_from,
                  "restore a backup (tessera admin backup) into the empty data_dir, then exit");
  flags.AddBool("repair-store", &repair_store,
                "a store whose write-ahead log is damaged: say what a repair keeps and drops, "
                "then exit (changes nothing without --confirm-data-loss)");
  flags.AddBool("confirm-data-loss", &confirm_data_loss,
                "with --repair-store: repair, dropping the damaged log record and every later "
                "one (logged)");
  flags.Require("config");
  std::vector<std::string> args(argv + 1, argv + argc);
  auto positional = flags.Parse(args);
  if (!positional.ok()) return positional.status();
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    *help_shown = true;
    return absl::OkStatus();
  }
  if (!positional->empty()) {
    return absl::InvalidArgumentError("unexpected argument '" + positional->front() + "'");
  }
  if (verbose) tessera::common::SetMinLogLevel(tessera::common::LogLevel::kDebug);
  tessera::crypto::RouteGrpcLogs();

  absl::StatusOr<tessera::v1::CoordinatorConfig> loaded = LoadConfig(config_path, overrides);
  if (!loaded.ok()) return loaded.status();
  const tessera::v1::CoordinatorConfig& config = *loaded;
  if (!restore_from.empty()) return Restore(restore_from, config.data_dir());
  if (auto st = tessera::common::ConfigureLogging(config.log_format(), config.log_file());
      !st.ok()) {
    return st;
  }
  if (confirm_data_loss && !repair_store) {
    return absl::InvalidArgumentError("--confirm-data-loss goes with --repair-store");
  }
  if (repair_store) return Repair(config.data_dir(), confirm_data_loss);

  static absl::Notification stop;
  // SIGHUP reopens the log file (logrotate) and re-reads crl_file; blocked before any
  // thread starts.
  tessera::common::BlockHangup();
  tessera::common::StopOnTerminationSignal(&stop);
  return tessera::coordinator::RunCoordinator(config, &stop, nullptr, /*reload_on_hangup=*/true);
}

}  // namespace

int main(int argc, char** argv) {
  // Blocks of 256 KiB or more (models, masked inputs in assembly, even those of a
  // 10^5-parameter model) are mapped and returned to the system when freed. glibc's default raises
  // this threshold at the first such free, after which freed vectors stay in the heap of whichever
  // worker thread held them: with uploads handled on several threads, that kept some 80 MiB more
  // resident than was ever live; at 1 MiB instead of 256 KiB the blocks in between stayed in the
  // heaps as free memory (docs/performance.md, "Coordinator memory, 6 December 2026 (noon)").
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  // One heap per two cores instead of glibc's up to 8 per core: gRPC's threads read the
  // sites' messages into buffers freed by other threads, and each heap kept its own free
  // memory: at n = 50, d = 10^5 the coordinator's peak grew with the rounds it ran (104 MiB
  // after 4 rounds, 130 after 12; with two heaps 106, with one 98). On two cores, one:
  // threads that cannot run at once do not contend for it (docs/performance.md).
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(1U, std::thread::hardware_concurrency() / 2)));
  // Debian's abseil is built without NDEBUG: every absl::Mutex lock would also run the
  // deadlock detection meant for debug builds (GraphCycles, 0.3 % of a busy federation's CPU
  // samples). The unit tests, which run no daemon's main, keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Read buffers sized by each read, not by a connection's largest ones (crypto/tls.h).
  tessera::crypto::KeepGrpcReadBuffersSmall();
  // First, before anything uses OpenSSL: it stays up until the process ends (crypto/tls.h).
  if (absl::Status st = tessera::crypto::KeepOpenSslUntilExit(); !st.ok()) {
    std::fprintf(stderr, "tessera-coordinator: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  if (tessera::common::VersionRequested(std::vector<std::string>(argv + 1, argv + argc))) {
    std::fputs(tessera::common::VersionLine("tessera-coordinator").c_str(), stdout);
    return 0;
  }
  bool help_shown = false;
  absl::Status st = Main(argc, argv, &help_shown);
  if (!st.ok()) {
    std::fprintf(stderr, "tessera-coordinator: %s\n", std::string(st.message()).c_str());
    return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
