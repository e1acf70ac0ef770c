// gRPC's own log lines through Tessera's one logging facade (common/log.h), so that stderr
// (or the log file) carries one format only.
//
// gRPC 1.51 logs through gpr_log; RouteGrpcLogs installs a gpr log function that turns each
// line into an event `grpc` with fields `source` (gRPC's file:line) and `message`. Levels:
// gRPC's ERROR is an error, its INFO and DEBUG are debug (shown with --verbose).
//
// TLS handshake failures name the peer. gRPC's own line ("Handshake failed with fatal error
// SSL_ERROR_SSL: ...") does not say who the peer was, so RouteGrpcLogs turns on gRPC's `tcp`
// tracer and keeps, per thread, the peer of the last read or write that tracer reports: gRPC
// runs the TLS handshake on the thread that delivers the bytes it read, right after that
// report. A failed handshake then becomes one warning `tls_handshake_failed` with `peer`
// ("ipv4:10.0.0.7:51234") and `error` (OpenSSL's reason); it is a peer's problem, not the
// daemon's. The tracer's own lines are dropped (unless GRPC_TRACE asked for them), and
// gRPC's minimum severity is set to INFO so that its hex dumps (DEBUG) are never formatted.
// GRPC_VERBOSITY, when set, still decides gRPC's minimum severity.
//
// Call RouteGrpcLogs once in main(), before any gRPC object exists. SetHandshakeFailureHook
// installs a function called (on gRPC's thread; it must be quick) for each failed handshake,
// for a metrics counter; nullptr removes it. Thread-safe.
#ifndef TESSERA_CRYPTO_GRPC_LOG_H_
#define TESSERA_CRYPTO_GRPC_LOG_H_

#include <functional>

namespace tessera::crypto {

void RouteGrpcLogs();
void SetHandshakeFailureHook(std::function<void()> hook);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_GRPC_LOG_H_
