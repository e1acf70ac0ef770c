#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::common {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::mutex sink_mu;
std::function<void(const std::string&)> sink;  // guarded by sink_mu; empty = stderr

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
        if (static_cast<unsigned char>(c) < 0x20) {
          out.append(absl::StrFormat("\\x%02x", static_cast<unsigned char>(c)));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
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
    : enabled_(static_cast<int>(level) >= min_level.load(std::memory_order_relaxed)) {
  if (!enabled_) return;
  line_ = absl::StrCat(Timestamp(), " level=", LevelName(level), " event=");
  AppendValue(line_, event);
}

LogLine::~LogLine() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(sink_mu);
  if (sink) {
    sink(line_);
    return;
  }
  line_.push_back('\n');
  // One write(2) per line so that lines from several processes sharing stderr do not
  // interleave either.
  const char* p = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

LogLine& LogLine::With(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  line_.push_back(' ');
  line_.append(key);
  line_.push_back('=');
  AppendValue(line_, value);
  return *this;
}

LogLine& LogLine::With(std::string_view key, int64_t value) {
  return With(key, std::string_view(absl::StrCat(value)));
}

LogLine& LogLine::With(std::string_view key, uint64_t value) {
  return With(key, std::string_view(absl::StrCat(value)));
}

LogLine& LogLine::With(std::string_view key, double value) {
  return With(key, std::string_view(absl::StrFormat("%.6g", value)));
}

LogLine& LogLine::With(std::string_view key, bool value) {
  return With(key, std::string_view(value ? "true" : "false"));
}

void SetMinLogLevel(LogLevel level) {
  min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

void SetLogSink(std::function<void(const std::string&)> new_sink) {
  std::lock_guard<std::mutex> lock(sink_mu);
  sink = std::move(new_sink);
}

}  // namespace tessera::common
