#include "common/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::common {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> json_format{false};
std::mutex sink_mu;
std::function<void(const std::string&)> sink;  // guarded by sink_mu; empty = file or stderr
int file_fd = -1;                              // guarded by sink_mu; -1 = stderr
std::string file_path;                         // guarded by sink_mu

// Whether stderr is the journal, decided once (the environment does not change).
bool StderrIsJournal() {
  static const bool journal = IsJournalStream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO);
  return journal;
}

// Whether logfmt lines go to the journal: to stderr, without a file or a sink.
bool ToJournal() {
  if (!StderrIsJournal()) return false;
  std::lock_guard<std::mutex> lock(sink_mu);
  return !sink && file_fd < 0;
}

// syslog priorities (sd-daemon(3) prefixes).
const char* JournalPrefix(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "<7>";
    case LogLevel::kInfo:
      return "<6>";
    case LogLevel::kWarning:
      return "<4>";
    case LogLevel::kError:
      return "<3>";
  }
  return "<6>";
}

// `v` in double quotes with quote, backslash and control characters escaped; other control
// characters as \xHH (logfmt) or \u00HH (JSON).
void AppendQuoted(std::string& out, std::string_view v, bool json) {
  out.push_back('"');
  for (char c : v) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || (json && c == 0x7f)) {
          out.append(json ? absl::StrFormat("\\u%04x", static_cast<unsigned char>(c))
                          : absl::StrFormat("\\x%02x", static_cast<unsigned char>(c)));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void AppendJsonString(std::string& out, std::string_view v) { AppendQuoted(out, v, true); }

void WriteAll(int fd, const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

absl::StatusOr<int> OpenLogFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open log file ", path, ": ", std::strerror(errno)));
  }
  return fd;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

void AppendValue(std::string& out, std::string_view v) {
  if (!NeedsQuotes(v)) {
    out.append(v);
    return;
  }
  AppendQuoted(out, v, false);
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
}

}  // namespace

LogLine::LogLine(LogLevel level, std::string_view event)
    : enabled_(static_cast<int>(level) >= min_level.load(std::memory_order_relaxed)),
      json_(json_format.load(std::memory_order_relaxed)) {
  if (!enabled_) return;
  if (json_) {
    line_ = absl::StrCat("{\"ts\":\"", Timestamp(), "\",\"level\":\"", LevelName(level),
                         "\",\"event\":");
    AppendJsonString(line_, event);
    return;
  }
  if (ToJournal()) {
    line_ = absl::StrCat(JournalPrefix(level), "level=", LevelName(level), " event=");
  } else {
    line_ = absl::StrCat(Timestamp(), " level=", LevelName(level), " event=");
  }
  AppendValue(line_, event);
}

LogLine::~LogLine() {
  if (!enabled_) return;
  if (json_) line_.push_back('}');
  std::lock_guard<std::mutex> lock(sink_mu);
  if (sink) {
    sink(line_);
    return;
  }
  line_.push_back('\n');
  // One write(2) per line so that lines from several processes sharing stderr (or the
  // file) do not interleave either.
  WriteAll(file_fd >= 0 ? file_fd : STDERR_FILENO, line_);
}

void LogLine::AppendKey(std::string_view key) {
  if (json_) {
    line_.push_back(',');
    AppendJsonString(line_, key);
    line_.push_back(':');
  } else {
    line_.push_back(' ');
    line_.append(key);
    line_.push_back('=');
  }
}

LogLine& LogLine::With(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  AppendKey(key);
  if (json_) {
    AppendJsonString(line_, value);
  } else {
    AppendValue(line_, value);
  }
  return *this;
}

LogLine& LogLine::WithRaw(std::string_view key, std::string_view literal) {
  if (!enabled_) return *this;
  if (!json_) return With(key, literal);
  AppendKey(key);
  line_.append(literal);
  return *this;
}

LogLine& LogLine::With(std::string_view key, int64_t value) {
  return WithRaw(key, std::string_view(absl::StrCat(value)));
}

LogLine& LogLine::With(std::string_view key, uint64_t value) {
  return WithRaw(key, std::string_view(absl::StrCat(value)));
}

LogLine& LogLine::With(std::string_view key, double value) {
  const std::string text = absl::StrFormat("%.6g", value);
  // JSON has no NaN or infinity: those go as strings.
  if (!std::isfinite(value)) return With(key, std::string_view(text));
  return WithRaw(key, std::string_view(text));
}

LogLine& LogLine::With(std::string_view key, bool value) {
  return WithRaw(key, std::string_view(value ? "true" : "false"));
}

void SetMinLogLevel(LogLevel level) {
  min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

void SetLogSink(std::function<void(const std::string&)> new_sink) {
  std::lock_guard<std::mutex> lock(sink_mu);
  sink = std::move(new_sink);
}

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "logfmt") return LogFormat::kLogfmt;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format '", std::string(name), "' (logfmt or json)"));
}

void SetLogFormat(LogFormat format) {
  json_format.store(format == LogFormat::kJson, std::memory_order_relaxed);
}

absl::Status SetLogFile(const std::string& path) {
  if (path.empty()) {
    std::lock_guard<std::mutex> lock(sink_mu);
    if (file_fd >= 0) ::close(file_fd);
    file_fd = -1;
    file_path.clear();
    return absl::OkStatus();
  }
  absl::StatusOr<int> fd = OpenLogFile(path);
  if (!fd.ok()) return fd.status();
  std::lock_guard<std::mutex> lock(sink_mu);
  if (file_fd >= 0) ::close(file_fd);
  file_fd = *fd;
  file_path = path;
  return absl::OkStatus();
}

absl::Status ReopenLogFile() {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(sink_mu);
    if (file_fd < 0) return absl::OkStatus();
    path = file_path;
  }
  return SetLogFile(path);
}

absl::Status ConfigureLogging(const std::string& format, const std::string& file) {
  if (!format.empty()) {
    absl::StatusOr<LogFormat> parsed = ParseLogFormat(format);
    if (!parsed.ok()) return parsed.status();
    SetLogFormat(*parsed);
  }
  if (!file.empty()) return SetLogFile(file);
  return absl::OkStatus();
}

bool IsJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  std::string_view v(journal_stream);
  size_t colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  uint64_t dev = 0;
  uint64_t ino = 0;
  if (!absl::SimpleAtoi(std::string(v.substr(0, colon)), &dev) ||
      !absl::SimpleAtoi(std::string(v.substr(colon + 1)), &ino)) {
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

}  // namespace tessera::common
