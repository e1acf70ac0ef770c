// The one logging facade: one line per event, `key=value` pairs, to stderr (or a sink
// installed by tests). A line looks like
//   2026-11-28T14:05:59.123Z level=info event=round_committed task=task-1 round=3
// Values with spaces, quotes or '=' are quoted. Never pass a key, share, mask, model
// update or data record as a value: log identifiers, counts and sizes only.
//
// Thread-safe: lines from several threads never interleave.
#ifndef TESSERA_COMMON_LOG_H_
#define TESSERA_COMMON_LOG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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
  bool enabled_;
  std::string line_;
};

inline LogLine LogDebug(std::string_view event) { return LogLine(LogLevel::kDebug, event); }
inline LogLine LogInfo(std::string_view event) { return LogLine(LogLevel::kInfo, event); }
inline LogLine LogWarning(std::string_view event) { return LogLine(LogLevel::kWarning, event); }
inline LogLine LogError(std::string_view event) { return LogLine(LogLevel::kError, event); }

// Lines below `level` are dropped. Default kInfo.
void SetMinLogLevel(LogLevel level);

// Replaces where lines go (default: stderr, one write per line). The sink receives the
// line without its trailing newline. Pass nullptr to restore stderr. For tests and for
// daemons that log to a file.
void SetLogSink(std::function<void(const std::string&)> sink);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_LOG_H_
