// tessera-client-under-test: the site daemon (client::RunClient, the very code
// tessera-client runs) with faults the end-to-end suite injects, configured from the
// environment. Test code only: it is never installed, and tessera-client has no such hook.
//
//   TESSERA_TEST_EXIT_BEFORE=<stage>/<step>   exit (status 3) right before sending the
//                                             answer to that step of the first session of
//                                             that stage, as a crashed site would
//   TESSERA_TEST_KILL_BEFORE_SEND=<stage>/<step>
//                                             SIGKILL itself at the same point: after the
//                                             site store recorded the answer, before it left
//   TESSERA_TEST_DECISION_FILE=<path>          a stand-in for the site staff's decision on
//                                             every task: while the file reads "await", the
//                                             site declines the first step of each session
//                                             AWAITING_APPROVAL; "reject <reason>":
//                                             REJECTED_BY_SITE with the reason; "budget":
//                                             SITE_BUDGET_EXHAUSTED; missing or anything
//                                             else: it answers (read at every answer, so a
//                                             test "approves" by rewriting the file)
//   TESSERA_TEST_CRASH_AT=<site crash point>   SIGKILL itself at a named point of the crash
//                                             campaign (crash_points.h), e.g.
//                                             "site/fit/masked_input/before_send"
//   TESSERA_TEST_GARBAGE_SHARES=1              replaces every encrypted share this site
//                                             sends (its SHARE_KEYS answer) with random
//                                             bytes of the same size: its peers' shares
//                                             from it do not authenticate
//   TESSERA_TEST_WRONG_MESSAGE=<stage>/<step>[,...]  answers those steps with a message
//                                             of another step's kind (a consistency
//                                             signature, or a masked input at the
//                                             consistency check)
//
// Built with the test-only flag TESSERA_TEST_CRASH_POINTS (tests/e2e/CMakeLists.txt).
// e.g. "fit/masked_input". Usage: tessera-client-under-test --config FILE
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "client/daemon.h"
#include "client/update_sink.h"
#include "common/files.h"
#include "common/log.h"
#include "common/proto_text.h"
#include "common/signals.h"
#include "common/status.h"
#include "crypto/tls.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "proto/labels.h"
#include "proto/validation.h"
#include "tests/e2e/crash_points.h"

namespace {

// Whether `here` ("<stage>/<step>") is one of the comma-separated `points`.
bool OneOf(const std::string& points, const std::string& here) {
  for (absl::string_view point : absl::StrSplit(points, ',')) {
    if (!point.empty() && point == here) return true;
  }
  return false;
}

// Stops the process before the answer to the chosen step leaves.
class FaultySink final : public tessera::client::UpdateSink {
 public:
  FaultySink(std::unique_ptr<tessera::client::UpdateSink> inner, std::string exit_before,
             std::string kill_before, std::string decision_file, bool garbage_shares = false,
             std::string wrong_message = "")
      : inner_(std::move(inner)),
        exit_before_(std::move(exit_before)),
        kill_before_(std::move(kill_before)),
        decision_file_(std::move(decision_file)),
        garbage_shares_(garbage_shares),
        wrong_message_(std::move(wrong_message)) {}

  absl::Status Send(const tessera::v1::WorkItem& item,
                    const tessera::v1::PushResultRequest& answer) override {
    if (answer.has_secagg() && item.secagg().round() == tessera::v1::SECAGG_ADVERTISE_KEYS) {
      if (std::optional<tessera::v1::Decline> decline = Decision()) {
        tessera::v1::PushResultRequest declined;
        declined.set_work_id(answer.work_id());
        *declined.mutable_decline() = *std::move(decline);
        return inner_->Send(item, declined);
      }
    }
    if (answer.has_secagg()) {
      const std::string here = absl::StrCat(tessera::proto::StageLabel(item.stage()), "/",
                                            tessera::proto::StepLabel(item.secagg().round()));
      if (here == exit_before_) {
        tessera::common::LogWarning("test_fault_exit").With("before", here);
        std::_Exit(3);
      }
      if (here == kill_before_) {
        tessera::common::LogWarning("test_fault_kill").With("before", here);
        std::raise(SIGKILL);
      }
      const bool wrong = OneOf(wrong_message_, here);
      if (wrong || (garbage_shares_ && answer.secagg().has_share_keys())) {
        return inner_->Send(item, Tampered(answer, wrong));
      }
    }
    return inner_->Send(item, answer);
  }

 private:
  // The staff's decision the decision file stands for, as the decline to send instead of
  // the answer; nullopt to answer.
  std::optional<tessera::v1::Decline> Decision() const {
    if (decision_file_.empty()) return std::nullopt;
    absl::StatusOr<std::string> text = tessera::common::ReadFile(decision_file_);
    if (!text.ok()) return std::nullopt;
    const std::string word(absl::StripAsciiWhitespace(*text));
    tessera::v1::Decline d;
    if (word == "await") {
      d.set_reason(tessera::v1::Decline::AWAITING_APPROVAL);
      d.set_detail("the site's staff have not decided on this task yet");
    } else if (absl::StartsWith(word, "reject")) {
      d.set_reason(tessera::v1::Decline::REJECTED_BY_SITE);
      d.set_detail(std::string(absl::StripAsciiWhitespace(word.substr(6))));
    } else if (word == "budget") {
      d.set_reason(tessera::v1::Decline::SITE_BUDGET_EXHAUSTED);
      d.set_detail("the dataset's privacy budget at this site is spent");
    } else {
      return std::nullopt;
    }
    return d;
  }

  // The answer with garbage shares, or (`wrong_kind`) with a message of another kind.
  static tessera::v1::PushResultRequest Tampered(const tessera::v1::PushResultRequest& answer,
                                                 bool wrong_kind) {
    tessera::v1::PushResultRequest out = answer;
    if (wrong_kind) {
      tessera::common::LogWarning("test_fault_wrong_message");
      if (answer.secagg().has_consistency()) {
        out.mutable_secagg()->mutable_masked_input()->set_masked_input("wrong");
      } else {
        out.mutable_secagg()->mutable_consistency()->set_signature("wrong");
      }
      return out;
    }
    tessera::common::LogWarning("test_fault_garbage_shares");
    std::random_device random;
    for (tessera::v1::EncryptedShare& share :
         *out.mutable_secagg()->mutable_share_keys()->mutable_shares()) {
      for (char& c : *share.mutable_ciphertext()) c = static_cast<char>(random());
    }
    return out;
  }

  std::unique_ptr<tessera::client::UpdateSink> inner_;
  const std::string exit_before_;
  const std::string kill_before_;
  const std::string decision_file_;
  const bool garbage_shares_;
  const std::string wrong_message_;
};

// Stops the process at its site crash point (crash_points.h): before the answer to the
// point's step leaves (recorded, not sent), or right after it was delivered.
class CrashingSink final : public tessera::client::UpdateSink {
 public:
  CrashingSink(std::unique_ptr<tessera::client::UpdateSink> inner, tessera::e2e::CrashPoint point)
      : inner_(std::move(inner)), point_(point) {}

  absl::Status Send(const tessera::v1::WorkItem& item,
                    const tessera::v1::PushResultRequest& answer) override {
    const bool here = answer.has_secagg() && item.stage() == point_.stage &&
                      (item.round() == point_.Round() || point_.stage == tessera::v1::STAGE_TEST) &&
                      item.secagg().round() == point_.step;
    if (here && point_.moment == tessera::e2e::CrashMoment::kBeforeSend) {
      tessera::e2e::CrashHere(point_);
    }
    absl::Status sent = inner_->Send(item, answer);
    if (here && sent.ok() && point_.moment == tessera::e2e::CrashMoment::kAfterSend) {
      tessera::e2e::CrashHere(point_);
    }
    return sent;
  }

 private:
  std::unique_ptr<tessera::client::UpdateSink> inner_;
  const tessera::e2e::CrashPoint point_;
};

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

absl::Status Run(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--config") {
    return absl::InvalidArgumentError("usage: tessera-client-under-test --config FILE");
  }
  const std::string path = argv[2];
  tessera::v1::ClientConfig config;
  tessera::common::TextLocations where;
  RETURN_IF_ERROR(tessera::common::LoadProtoFile(path, &config, &where));
  RETURN_IF_ERROR(tessera::common::FieldErrorsToStatus(tessera::proto::ValidateClientConfig(config),
                                                       path, &where));
  tessera::proto::ApplyClientDefaults(&config);
  tessera::client::ClientRunOptions options;
  const std::string exit_before = Env("TESSERA_TEST_EXIT_BEFORE");
  const std::string kill_before = Env("TESSERA_TEST_KILL_BEFORE_SEND");
  const std::string decision_file = Env("TESSERA_TEST_DECISION_FILE");
  ASSIGN_OR_RETURN(std::optional<tessera::e2e::CrashPoint> crash_at,
                   tessera::e2e::CrashPointFromEnvironment(tessera::e2e::CrashDaemon::kSite));
  const bool garbage_shares = Env("TESSERA_TEST_GARBAGE_SHARES") == "1";
  const std::string wrong_message = Env("TESSERA_TEST_WRONG_MESSAGE");
  options.wrap_sink = [=](std::unique_ptr<tessera::client::UpdateSink> inner) {
    std::unique_ptr<tessera::client::UpdateSink> sink = std::make_unique<FaultySink>(
        std::move(inner), exit_before, kill_before, decision_file, garbage_shares, wrong_message);
    if (crash_at.has_value()) sink = std::make_unique<CrashingSink>(std::move(sink), *crash_at);
    return sink;
  };
  static absl::Notification stop;
  tessera::common::StopOnTerminationSignal(&stop);
  return tessera::client::RunClient(config, &stop, options);
}

}  // namespace

int main(int argc, char** argv) {
  // First, before anything uses OpenSSL: it stays up until the process ends (crypto/tls.h).
  if (absl::Status st = tessera::crypto::KeepOpenSslUntilExit(); !st.ok()) {
    std::fprintf(stderr, "tessera-client-under-test: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  absl::Status st = Run(argc, argv);
  if (!st.ok()) {
    std::fprintf(stderr, "tessera-client-under-test: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
