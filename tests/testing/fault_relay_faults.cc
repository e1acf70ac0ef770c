// The relay's fault and schedule specs (ParseDirectionFaults, ParseRelaySchedule) and its
// counters' text (RelayStats::ToString): tests/testing/fault_relay.h.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/fault_relay.h"

namespace tessera::testing {
namespace {

absl::StatusOr<absl::Duration> ParseNonNegativeDuration(absl::string_view key,
                                                        absl::string_view value) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": '", value, "' is not a duration such as 50ms or 2s"));
  }
  return d;
}

// "10mbit" → 1.25e6 bytes per second.
absl::StatusOr<double> ParseRate(absl::string_view value) {
  static constexpr std::pair<absl::string_view, double> kUnits[] = {
      {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}};
  for (const auto& [suffix, scale] : kUnits) {
    if (!absl::EndsWith(value, suffix)) continue;
    double number;
    if (!absl::SimpleAtod(value.substr(0, value.size() - suffix.size()), &number) ||
        !(number > 0)) {
      break;
    }
    return number * scale / 8;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("rate: '", value, "' is not a rate such as 10mbit, 512kbit or 1gbit"));
}

}  // namespace

absl::StatusOr<DirectionFaults> ParseDirectionFaults(absl::string_view text) {
  DirectionFaults faults;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", item, "' is not key=value"));
    }
    const absl::string_view key = item.substr(0, eq);
    const absl::string_view value = item.substr(eq + 1);
    if (key == "delay" || key == "jitter") {
      absl::StatusOr<absl::Duration> d = ParseNonNegativeDuration(key, value);
      if (!d.ok()) return d.status();
      (key == "delay" ? faults.delay : faults.jitter) = *d;
    } else if (key == "rate") {
      absl::StatusOr<double> rate = ParseRate(value);
      if (!rate.ok()) return rate.status();
      faults.rate_bytes_per_second = *rate;
    } else if (key == "reset_after") {
      if (!absl::SimpleAtoi(value, &faults.reset_after_bytes) || faults.reset_after_bytes <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("reset_after: '", value, "' is not a positive byte count"));
      }
    } else if (key == "cut_after") {
      if (!absl::SimpleAtoi(value, &faults.cut_after_bytes) || faults.cut_after_bytes <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("cut_after: '", value, "' is not a positive byte count"));
      }
    } else if (key == "stall") {
      std::vector<absl::string_view> parts = absl::StrSplit(value, '+');
      if (parts.size() != 2) {
        return absl::InvalidArgumentError(
            absl::StrCat("stall: '", value, "' is not AT+FOR such as 2s+500ms"));
      }
      absl::StatusOr<absl::Duration> at = ParseNonNegativeDuration("stall", parts[0]);
      if (!at.ok()) return at.status();
      absl::StatusOr<absl::Duration> length = ParseNonNegativeDuration("stall", parts[1]);
      if (!length.ok()) return length.status();
      faults.stalls.push_back({*at, *length});
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown fault '", key, "' (known: delay, jitter, rate, reset_after, cut_after, stall)"));
    }
  }
  return faults;
}

absl::StatusOr<RelaySchedule> ParseRelaySchedule(absl::string_view text) {
  RelaySchedule schedule;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    const size_t at = item.find('@');
    std::vector<absl::Duration>* list = nullptr;
    const absl::string_view what = item.substr(0, at == absl::string_view::npos ? 0 : at);
    if (what == "reset") list = &schedule.reset_at;
    if (what == "cut") list = &schedule.cut_at;
    if (what == "restore") list = &schedule.restore_at;
    if (list == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", item, "' is not reset@TIME, cut@TIME or restore@TIME"));
    }
    absl::StatusOr<absl::Duration> when = ParseNonNegativeDuration(what, item.substr(at + 1));
    if (!when.ok()) return when.status();
    list->push_back(*when);
  }
  return schedule;
}

std::string RelayStats::ToString() const {
  return absl::StrCat("connections=", connections, " resets=", resets, " bytes_up=", bytes_up,
                      " bytes_down=", bytes_down, " cuts=", cuts, " cut=", cut ? "true" : "false");
}

}  // namespace tessera::testing
