// The one logging facade: one line per event, to stderr, a file (SetLogFile) or a sink
// installed by tests, in one of two formats (SetLogFormat):
//   logfmt (default): `key=value` pairs; values with spaces, quotes or '=' are quoted
//     2026-11-28T14:05:59.123Z level=info event=round_committed task=task-1 round=3
//   json: one JSON object per line (JSON Lines), strings escaped per RFC 8259, numbers and
//     booleans unquoted, non-finite numbers as strings
//     {"ts":"2026-11-28T14:05:59.123Z","level":"info","event":"round_committed","task":"task-1","round":3}
// Under systemd (stderr is the journal: $JOURNAL_STREAM names stderr's device and inode),
// logfmt lines written to stderr drop the timestamp, which the journal records itself, and
// start with the level as a syslog priority ("<6>level=info event=..."), which journald
// turns into the entry's PRIORITY. JSON lines are never changed.
// gRPC's own log lines come through here too (proto/grpc_log.h).
//
// Never pass a key, share, mask, model update or data record as a value: log identifiers,
// counts and sizes only.
//
// Thread-safe: lines from several threads never interleave.
#ifndef TESSERA_COMMON_LOG_H_
#define TESSERA_COMMON_LOG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Builds one line; emits it when destroyed (at the end of the full expression):
//   LogInfo("round_committed").With("task", id).With("round", r);
class LogLine {
 public:
  LogLine(LogLevel level, std::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& With(std::string_view key, std::string_view value);
  LogLine& With(std::string_view key, const std::string& value) {
    return With(key, std::string_view(value));
  }
  LogLine& With(std::string_view key, const char* value) {
    return With(key, std::string_view(value));
  }
  LogLine& With(std::string_view key, int64_t value);
  LogLine& With(std::string_view key, uint64_t value);
  LogLine& With(std::string_view key, int value) { return With(key, int64_t{value}); }
  LogLine& With(std::string_view key, unsigned value) { return With(key, uint64_t{value}); }
  LogLine& With(std::string_view key, long long value) {
    return With(key, static_cast<int64_t>(value));
  }
  LogLine& With(std::string_view key, unsigned long long value) {
    return With(key, static_cast<uint64_t>(value));
  }
  LogLine& With(std::string_view key, double value);
  LogLine& With(std::string_view key, bool value);

 private:
  void AppendKey(std::string_view key);
  // A JSON number or literal (json format only), unquoted.
  LogLine& WithRaw(std::string_view key, std::string_view literal);

  bool enabled_;
  bool json_;
  std::string line_;
};

inline LogLine LogDebug(std::string_view event) { return LogLine(LogLevel::kDebug, event); }
inline LogLine LogInfo(std::string_view event) { return LogLine(LogLevel::kInfo, event); }
inline LogLine LogWarning(std::string_view event) { return LogLine(LogLevel::kWarning, event); }
inline LogLine LogError(std::string_view event) { return LogLine(LogLevel::kError, event); }

// Lines below `level` are dropped. Default kInfo.
void SetMinLogLevel(LogLevel level);

// Replaces where lines go (default: stderr, one write per line). The sink receives the
// line without its trailing newline. Pass nullptr to restore stderr. For tests.
void SetLogSink(std::function<void(const std::string&)> sink);

enum class LogFormat { kLogfmt, kJson };
// "logfmt" or "json"; INVALID_ARGUMENT naming the value and the choices otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name);
// For lines started after the call. Default kLogfmt.
void SetLogFormat(LogFormat format);

// Appends lines to `path` instead of stderr (created with mode 0640 if missing; O_APPEND,
// so several writers and logrotate's copytruncate are safe). Errors name the file. An
// empty path goes back to stderr.
absl::Status SetLogFile(const std::string& path);
// Opens the log file's path again (after logrotate moved the file away) and writes there
// from now on; the daemons call it on SIGHUP. OK and nothing done when logging to stderr.
absl::Status ReopenLogFile();

// A daemon's logging set-up from its flags or config: `format` "" or "logfmt" or "json",
// `file` "" (stderr) or a path. Errors as ParseLogFormat and SetLogFile.
absl::Status ConfigureLogging(const std::string& format, const std::string& file);

// Whether `fd` is the stream $JOURNAL_STREAM ("<device>:<inode>", `journal_stream`; null
// when unset) names: systemd connected it to the journal. Exposed for tests.
bool IsJournalStream(const char* journal_stream, int fd);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_LOG_H_
