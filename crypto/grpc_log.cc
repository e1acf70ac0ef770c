#include "crypto/grpc_log.h"

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "grpc/grpc.h"
#include "grpc/support/log.h"

namespace tessera::crypto {
namespace {

// Set once by RouteGrpcLogs, before gRPC runs; read-only afterwards.
bool keep_tcp_trace = false;
absl::Mutex hook_mu;
std::function<void()>* handshake_hook ABSL_GUARDED_BY(hook_mu) = nullptr;

// The peer of the last read or write the tcp tracer reported on this thread.
thread_local std::string last_peer;

constexpr absl::string_view kHandshakeFailed = "Handshake failed with fatal error ";

// "READ 0x7f.. (peer=ipv4:127.0.0.1:44004) error=OK" -> "ipv4:127.0.0.1:44004".
bool NotePeer(absl::string_view message) {
  if (!absl::StartsWith(message, "READ 0x") && !absl::StartsWith(message, "WRITE 0x")) {
    return false;
  }
  size_t start = message.find("(peer=");
  if (start == absl::string_view::npos) return false;
  start += 6;
  size_t end = message.find(')', start);
  if (end == absl::string_view::npos) return false;
  last_peer = std::string(message.substr(start, end - start));
  return true;
}

// A line of the tcp tracer (which RouteGrpcLogs turned on): its tcp_posix.cc lines and the
// reference counting lines of its endpoints.
bool IsTcpTrace(absl::string_view file, absl::string_view message) {
  return file == "tcp_posix.cc" || file == "tcp_server_posix.cc" ||
         (file == "ref_counted.h" && absl::StartsWith(message, "tcp:"));
}

void Forward(gpr_log_func_args* args) {
  absl::string_view file = args->file != nullptr ? args->file : "";
  if (size_t slash = file.rfind('/'); slash != absl::string_view::npos) {
    file.remove_prefix(slash + 1);
  }
  absl::string_view message = args->message != nullptr ? args->message : "";
  if (IsTcpTrace(file, message)) {
    if (file == "tcp_posix.cc") NotePeer(message);
    if (!keep_tcp_trace) return;
  }
  if (file == "ssl_transport_security.cc" && absl::StartsWith(message, kHandshakeFailed)) {
    absl::string_view error = message.substr(kHandshakeFailed.size());
    if (absl::EndsWith(error, ".")) error.remove_suffix(1);
    common::LogWarning("tls_handshake_failed")
        .With("peer", last_peer.empty() ? std::string("unknown") : last_peer)
        .With("error", std::string(error));
    absl::MutexLock lock(&hook_mu);
    if (handshake_hook != nullptr) (*handshake_hook)();
    return;
  }
  const common::LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR
                                     ? common::LogLevel::kError
                                     : common::LogLevel::kDebug;
  common::LogLine(level, "grpc")
      .With("source", absl::StrCat(std::string(file), ":", args->line))
      .With("message", std::string(message));
}

}  // namespace

void SetHandshakeFailureHook(std::function<void()> hook) {
  absl::MutexLock lock(&hook_mu);
  delete handshake_hook;
  handshake_hook = hook ? new std::function<void()>(std::move(hook)) : nullptr;
}

void RouteGrpcLogs() {
  const char* trace = std::getenv("GRPC_TRACE");
  keep_tcp_trace =
      trace != nullptr && (absl::StrContains(trace, "tcp") || absl::StrContains(trace, "all"));
  gpr_set_log_function(&Forward);
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_verbosity(GPR_LOG_SEVERITY_INFO);
  grpc_tracer_set_enabled("tcp", 1);
}

}  // namespace tessera::crypto
