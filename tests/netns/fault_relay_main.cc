// tessera-fault-relay: the fault-injecting TCP relay (tests/testing/fault_relay.h) as a
// program, for the network-namespace suite. Test code; never installed.
//
//   tessera-fault-relay --listen 10.0.0.1:0 --upstream 10.0.0.2:7443
//       --up delay=50ms,jitter=10ms --down delay=50ms,jitter=10ms
//       --schedule reset@2s,cut@5s,restore@8s --ready-file R --control-file C --stats-file S
//
// It writes the bound host:port to --ready-file once it listens; executes every new line
// appended to --control-file (polled every 10 ms: cut, refuse, restore, reset, up|down|both
// FAULTS); rewrites --stats-file (RelayStats::ToString) when the counts change and on exit.
// SIGTERM / SIGINT stop it with exit code 0; a bad flag or command exits 2.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/signals.h"
#include "common/status.h"
#include "tests/testing/fault_relay.h"

namespace tessera::testing {
namespace {

struct Flags {
  RelayOptions options;
  std::string up;
  std::string down;
  std::string schedule;
  std::string max_resets = "-1";
  uint64_t seed = 1;
  std::string ready_file;
  std::string control_file;
  std::string stats_file;
};

absl::Status ParseOptions(Flags* flags) {
  ASSIGN_OR_RETURN(flags->options.up, ParseDirectionFaults(flags->up));
  ASSIGN_OR_RETURN(flags->options.down, ParseDirectionFaults(flags->down));
  ASSIGN_OR_RETURN(flags->options.schedule, ParseRelaySchedule(flags->schedule));
  if (!absl::SimpleAtoi(flags->max_resets, &flags->options.max_resets) ||
      flags->options.max_resets < -1) {
    return absl::InvalidArgumentError("--max-resets: not a count (or -1 for no limit)");
  }
  flags->options.seed = flags->seed;
  return absl::OkStatus();
}

// Executes the control file's complete lines after the first `*done`.
absl::Status RunNewCommands(FaultRelay& relay, const std::string& path, size_t* done) {
  absl::StatusOr<std::string> text = common::ReadFile(path);
  if (!text.ok()) return absl::OkStatus();  // not written yet
  std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  lines.pop_back();  // the part after the last newline is not complete yet
  for (; *done < lines.size(); ++*done) {
    if (lines[*done].empty()) continue;
    RETURN_IF_ERROR(relay.Command(lines[*done]));
    std::fprintf(stderr, "relay_command line=\"%s\"\n", lines[*done].c_str());
  }
  return absl::OkStatus();
}

absl::Status Run(Flags& flags, absl::Notification& stop) {
  RETURN_IF_ERROR(ParseOptions(&flags));
  ASSIGN_OR_RETURN(std::unique_ptr<FaultRelay> relay, FaultRelay::Start(flags.options));
  std::fprintf(stderr, "relay_listening address=%s upstream=%s\n", relay->address().c_str(),
               flags.options.upstream.c_str());
  if (!flags.ready_file.empty()) {
    RETURN_IF_ERROR(common::WriteReadyFile(flags.ready_file, relay->address() + "\n"));
  }
  size_t done = 0;
  std::string last_stats;
  while (true) {
    const bool stopping = stop.WaitForNotificationWithTimeout(absl::Milliseconds(10));
    if (!flags.control_file.empty()) {
      RETURN_IF_ERROR(RunNewCommands(*relay, flags.control_file, &done));
    }
    // The last counts are taken once the relay has stopped: a write it finished just before
    // is then counted (its peer may already have the bytes).
    if (stopping) relay->Stop();
    const std::string stats = absl::StrCat(relay->stats().ToString(), " commands=", done, "\n");
    if (!flags.stats_file.empty() && stats != last_stats) {
      RETURN_IF_ERROR(common::WriteFileAtomic(flags.stats_file, stats));
      last_stats = stats;
    }
    if (stopping) break;
  }
  std::fprintf(stderr, "relay_stopped %s", last_stats.c_str());
  if (!flags.ready_file.empty()) RETURN_IF_ERROR(common::RemoveReadyFile(flags.ready_file));
  return absl::OkStatus();
}

}  // namespace
}  // namespace tessera::testing

int main(int argc, char** argv) {
  static absl::Notification stop;
  tessera::common::StopOnTerminationSignal(&stop);
  tessera::testing::Flags flags;
  tessera::common::FlagParser parser(
      "tessera-fault-relay --listen HOST:PORT --upstream HOST:PORT [flags]",
      "Forwards TCP connections to --upstream, injecting delay, jitter, stalls, resets, a "
      "bandwidth limit and link cuts per direction (test tool).");
  parser.AddString("listen", &flags.options.listen, "host:port to listen on (port 0: any)");
  parser.AddString("upstream", &flags.options.upstream, "host:port to forward to");
  parser.AddString("up", &flags.up,
                   "client->upstream faults: delay=50ms,jitter=10ms,rate=10mbit,"
                   "reset_after=BYTES,stall=AT+FOR");
  parser.AddString("down", &flags.down, "upstream->client faults, as --up");
  parser.AddString("schedule", &flags.schedule, "reset@TIME,cut@TIME,restore@TIME,...");
  parser.AddString("max-resets", &flags.max_resets, "most reset_after resets (-1: no limit)");
  parser.AddUint("seed", &flags.seed, "seed of the jitter");
  parser.AddString("ready-file", &flags.ready_file, "written with the bound host:port");
  parser.AddString("control-file", &flags.control_file, "commands, one per appended line");
  parser.AddString("stats-file", &flags.stats_file, "rewritten with the relay's counts");
  parser.Require("upstream");
  absl::StatusOr<std::vector<std::string>> rest =
      parser.Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (rest.ok() && parser.help_requested()) {
    std::printf("%s", parser.Help().c_str());
    return 0;
  }
  if (rest.ok() && !rest->empty()) {
    rest = absl::InvalidArgumentError("unexpected argument " + rest->front());
  }
  absl::Status status = rest.ok() ? tessera::testing::Run(flags, stop) : rest.status();
  if (!status.ok()) {
    std::fprintf(stderr, "tessera-fault-relay: %s\n", status.ToString().c_str());
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
