// A small HTTP/1.1 server for local operator pages and endpoints (the dashboard, /metrics,
// /healthz): GET (and HEAD) routes answered by plain functions, and server-sent events
// (text/event-stream) for live pages. Built on Boost.Beast/Asio, which stay in server.cc.
//
// What a client gets:
// - A route's Response, with security headers added to every answer (X-Content-Type-Options:
//   nosniff, Content-Security-Policy: default-src 'self' unless the handler sets its own,
//   X-Frame-Options: DENY, Referrer-Policy: no-referrer, Cache-Control: no-store unless the
//   handler sets its own). HEAD is answered like GET without the body.
// - 404 for an unknown path, 405 (with Allow: GET, HEAD) for another method on a known path.
// - 400 for a malformed request or target, 413 for a body over max_request_bytes, 431 for a
//   header block over max_header_bytes, 421 for a Host not in allowed_hosts, 503 when
//   max_connections are already open, 408 (and the connection closed) for a request that
//   has not fully arrived within request_timeout (a slowloris). An idle keep-alive
//   connection is closed after request_timeout. None of these crash or stall the server: each
//   connection is served asynchronously and bounded in bytes and time.
// - A handler's exception (our code throws none; a library's might) becomes a 500.
//
// Threads: the server runs `threads` I/O threads; Handlers run on them and should be quick
// (milliseconds). Each StreamHandler runs on a thread of its own until it returns or Send
// returns false. Handlers may run concurrently: they must be thread-safe.
#ifndef TESSERA_HTTP_SERVER_H_
#define TESSERA_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::http {

struct Request {
  std::string method;  // "GET" or "HEAD" (other methods never reach a handler)
  std::string path;    // percent-decoded, without the query
  std::map<std::string, std::string> query;  // percent-decoded; the last of repeated keys wins
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra headers; one with the name of a default security header replaces it.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Server-sent events to one client. Used only on the StreamHandler's thread.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Sends one event (event name may be empty: an unnamed "message" event). Line breaks in
  // `data` become separate data lines (the client joins them back with '\n'); line breaks in
  // `event` are dropped. Blocks until written or write_timeout. False once the client has
  // gone, a write timed out, or the server is stopping: the handler should then return.
  virtual bool Send(std::string_view event, std::string_view data) = 0;
  // Waits `milliseconds` (a poll interval); returns false early once the client has gone or
  // the server is stopping, so a handler between events ends promptly. (The default, for
  // test doubles, just sleeps and returns true.)
  virtual bool Wait(int milliseconds);
};

using Handler = std::function<Response(const Request&)>;
// Runs until it returns or Send fails; the response ends (and the connection closes) when it
// returns.
using StreamHandler = std::function<void(const Request&, EventStream&)>;

// The paths a server answers. Paths match exactly ("/task", not "/task/"); a path registered
// twice keeps the last handler.
class Routes {
 public:
  void Get(std::string path, Handler h);
  void Stream(std::string path, StreamHandler h);

 private:
  friend class Server;
  friend class Session;  // server.cc
  std::map<std::string, Handler> get_;
  std::map<std::string, StreamHandler> stream_;
};

struct ServerOptions {
  // "host:port" ("[::1]:port" for IPv6); port 0 = the OS chooses. Host is an IP address or
  // "localhost".
  std::string listen = "127.0.0.1:0";
  // Largest request body accepted (413 beyond).
  size_t max_request_bytes = 64 * 1024;
  // Largest request line plus headers accepted (431 beyond).
  size_t max_header_bytes = 16 * 1024;
  // Connections open at once (503 beyond), event streams included.
  size_t max_connections = 64;
  // A request must arrive whole within this many milliseconds of its first byte being
  // awaited (the connection is then dropped); also the keep-alive idle limit.
  int request_timeout_ms = 10'000;
  // A response or event must be written within this many milliseconds.
  int write_timeout_ms = 10'000;
  // I/O threads running the Handlers.
  int threads = 2;
  // If not empty, the Host header of a request must be one of these ("127.0.0.1:8080",
  // "localhost:8080"; compared case-insensitively), else 421. Keeps a page bound to
  // loopback from being read through DNS rebinding. "{port}" in an entry stands for the
  // bound port.
  std::vector<std::string> allowed_hosts;
};

// Host entries for allowed_hosts that a loopback-bound server should accept:
// 127.0.0.1:{port}, localhost:{port}, [::1]:{port}.
std::vector<std::string> LoopbackHosts();

class Server {
 public:
  // Binds and starts serving. INVALID_ARGUMENT for a malformed address or option,
  // UNAVAILABLE when the address cannot be bound; errors name the address.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options, Routes routes);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port, and "host:port" of the bound address.
  int port() const;
  std::string address() const;
  // Stops accepting, closes every connection (event streams' Send returns false), waits for
  // stream handlers to return and joins the threads. Idempotent; the destructor calls it.
  // Must not be called from a handler.
  void Stop();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::http

#endif  // TESSERA_HTTP_SERVER_H_
