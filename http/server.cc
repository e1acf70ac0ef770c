// The server on Boost.Beast: one strand per connection on a shared io_context run by
// `threads` threads; each event stream's handler on a thread of its own, writing through
// its connection's strand.
#include "http/server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "common/log.h"
#include "http/internal/target.h"

namespace tessera::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// The default headers of every answer, in this order; a handler's header of the same name
// (case-insensitive) replaces one.
const std::vector<std::pair<std::string, std::string>>& SecurityHeaders() {
  static const auto* headers = new std::vector<std::pair<std::string, std::string>>{
      {"Content-Security-Policy", "default-src 'self'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
  };
  return *headers;
}

Response Plain(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body) + "\n";
  return r;
}

// Makes `data` one SSE event: "event: NAME\n" then a "data: " line per line of data.
std::string FormatEvent(std::string_view event, std::string_view data) {
  std::string out;
  if (!event.empty()) {
    std::string name(event);
    name.erase(
        std::remove_if(name.begin(), name.end(), [](char c) { return c == '\r' || c == '\n'; }),
        name.end());
    absl::StrAppend(&out, "event: ", name, "\n");
  }
  const std::string normalised = absl::StrReplaceAll(absl::string_view(data.data(), data.size()),
                                                     {{"\r\n", "\n"}, {"\r", "\n"}});
  size_t start = 0;
  while (true) {
    const size_t nl = normalised.find('\n', start);
    absl::StrAppend(&out, "data: ", normalised.substr(start, nl - start), "\n");
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out += "\n";
  return out;
}

}  // namespace

bool EventStream::Wait(int milliseconds) {
  std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
  return true;
}

std::vector<std::string> LoopbackHosts() {
  return {"127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"};
}

void Routes::Get(std::string path, Handler h) { get_[std::move(path)] = std::move(h); }
void Routes::Stream(std::string path, StreamHandler h) { stream_[std::move(path)] = std::move(h); }

class Session;

class Server::Impl {
 public:
  Impl(ServerOptions options, Routes routes)
      : options_(std::move(options)),
        routes_(std::move(routes)),
        acceptor_(net::make_strand(ioc_)),
        guard_(net::make_work_guard(ioc_)) {}

  absl::Status Listen();
  void Run();
  void Stop();

  const ServerOptions& options() const { return options_; }
  const Routes& routes() const { return routes_; }
  bool stopping() const { return stopping_.load(); }
  int port() const { return port_; }
  std::string address() const { return address_; }
  bool HostAllowed(std::string_view host) const;

  // Connection accounting (the accept handler and Session's destructor). A session Stop
  // has not seen is never served.
  enum class Admission { kServe, kOverLimit, kStopping };
  Admission AddConnection(Session* s, std::weak_ptr<Session> weak);
  void RemoveConnection(Session* s);
  // Runs `fn` on a thread of its own, joined by Stop. False when stopping.
  bool LaunchStream(std::function<void()> fn);
  // Blocks up to `ms` or until Stop; false when stopping.
  bool SleepUnlessStopping(int ms);

 private:
  void Accept();

  const ServerOptions options_;
  const Routes routes_;
  std::vector<std::string> allowed_hosts_;
  std::atomic<bool> stopping_{false};
  int port_ = 0;
  std::string address_;

  std::mutex mu_;
  std::condition_variable stop_cv_;
  std::map<Session*, std::weak_ptr<Session>> sessions_;  // guarded by mu_
  struct StreamThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<StreamThread> streams_;  // guarded by mu_
  bool stopped_ = false;             // guarded by mu_

  // Destroyed before the members above: pending handlers own Sessions, whose destructors
  // use mu_ and sessions_.
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::vector<std::thread> io_threads_;
};

// One connection: reads requests, answers them; or hands itself to an event stream.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl* server)
      : stream_(std::move(socket)), server_(server), request_timer_(stream_.get_executor()) {}
  ~Session() { server_->RemoveConnection(this); }

  void Start(bool over_limit);
  // Writes `bytes` through the strand; false on error, timeout or a closed connection.
  bool WriteBlocking(std::string bytes);
  // Closes the socket (on the strand).
  void Close();
  bool gone() const { return gone_.load(); }

 private:
  void DoRead();
  void OnRead(beast::error_code ec);
  void Answer(Response response, bool head, bool keep_alive);
  void AnswerAndClose(Response response) { Answer(std::move(response), false, false); }
  void StartStream(const StreamHandler& handler, Request request);
  void WatchForHangUp();

  beast::tcp_stream stream_;
  Server::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::atomic<bool> gone_{false};
  char hangup_byte_[64];
  // The deadline of the request being read (a timer of its own rather than the stream's
  // expiry, which would close the socket before a 408 could be written). Strand only.
  net::steady_timer request_timer_;
  bool reading_ = false;
  bool request_timed_out_ = false;
};

// The EventStream a StreamHandler writes to.
class SessionEventStream : public EventStream {
 public:
  SessionEventStream(std::shared_ptr<Session> session, Server::Impl* server)
      : session_(std::move(session)), server_(server) {}
  bool Send(std::string_view event, std::string_view data) override {
    if (server_->stopping() || session_->gone()) return false;
    return session_->WriteBlocking(FormatEvent(event, data));
  }
  bool Wait(int milliseconds) override {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(milliseconds);
    while (true) {
      if (server_->stopping() || session_->gone()) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return true;
      // Slices: a client hanging up is seen within one.
      if (!server_->SleepUnlessStopping(std::min<int>(100, static_cast<int>(left.count())))) {
        return false;
      }
    }
  }

 private:
  std::shared_ptr<Session> session_;
  Server::Impl* server_;
};

void Session::Start(bool over_limit) {
  if (over_limit) {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->AnswerAndClose(Plain(503, "too many connections"));
    });
    return;
  }
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
}

void Session::DoRead() {
  const ServerOptions& o = server_->options();
  parser_.emplace();
  parser_->body_limit(o.max_request_bytes);
  parser_->header_limit(static_cast<std::uint32_t>(o.max_header_bytes));
  stream_.expires_never();
  reading_ = true;
  request_timed_out_ = false;
  request_timer_.expires_after(std::chrono::milliseconds(o.request_timeout_ms));
  request_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || !self->reading_) return;  // cancelled, or the read completed first
    self->request_timed_out_ = true;
    beast::error_code ignored;
    self->stream_.socket().cancel(ignored);
  });
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
}

void Session::OnRead(beast::error_code ec) {
  reading_ = false;
  request_timer_.cancel();
  if (request_timed_out_) {
    // A request begun but not finished in time (a slowloris) is told so; an idle
    // keep-alive connection is just closed.
    if (parser_->got_some() || buffer_.size() > 0) {
      return AnswerAndClose(Plain(408, "request not received in time"));
    }
    return Close();
  }
  if (ec == bhttp::error::body_limit) return AnswerAndClose(Plain(413, "request body too large"));
  if (ec == bhttp::error::header_limit) {
    return AnswerAndClose(Plain(431, "request header fields too large"));
  }
  if (ec && ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    return AnswerAndClose(Plain(400, absl::StrCat("malformed request: ", ec.message())));
  }
  if (ec) return Close();  // the client left, timed out (slowloris) or the server stops
  bhttp::request<bhttp::string_body> req = parser_->release();
  const bool keep_alive = req.keep_alive();
  if (!server_->HostAllowed(
          std::string_view(req[bhttp::field::host].data(), req[bhttp::field::host].size()))) {
    return AnswerAndClose(Plain(421, "this server does not answer for that Host"));
  }
  auto target = internal::ParseTarget(std::string_view(req.target().data(), req.target().size()));
  if (!target.ok()) {
    return AnswerAndClose(
        Plain(400, absl::StrCat("bad request target: ", target.status().message())));
  }
  Request request{std::string(req.method_string()), target->path, std::move(target->query),
                  std::move(req.body())};
  const bool head = req.method() == bhttp::verb::head;
  const bool get = req.method() == bhttp::verb::get;
  const Routes& routes = server_->routes();
  if (auto s = routes.stream_.find(request.path); s != routes.stream_.end()) {
    if (get) return StartStream(s->second, std::move(request));
    Response r = Plain(405, "method not allowed");
    r.headers.push_back({"Allow", "GET"});
    return AnswerAndClose(std::move(r));
  }
  auto g = routes.get_.find(request.path);
  if (g == routes.get_.end()) return Answer(Plain(404, "not found"), head, keep_alive);
  if (!get && !head) {
    Response r = Plain(405, "method not allowed");
    r.headers.push_back({"Allow", "GET, HEAD"});
    return Answer(std::move(r), false, keep_alive);
  }
  Response response;
  try {
    response = g->second(request);
  } catch (const std::exception& e) {
    common::LogError("http_handler_failed").With("path", request.path).With("error", e.what());
    response = Plain(500, "internal error");
  }
  Answer(std::move(response), head, keep_alive);
}

void Session::Answer(Response response, bool head, bool keep_alive) {
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
  res->version(11);
  res->result(static_cast<unsigned>(response.status));
  res->set(bhttp::field::content_type, response.content_type);
  for (const auto& [name, value] : SecurityHeaders()) res->set(name, value);
  for (const auto& [name, value] : response.headers) res->set(name, value);
  res->keep_alive(keep_alive);
  const size_t length = response.body.size();
  if (!head) res->body() = std::move(response.body);
  res->content_length(length);
  stream_.expires_after(std::chrono::milliseconds(server_->options().write_timeout_ms));
  bhttp::async_write(stream_, *res,
                     [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                       if (ec || !keep_alive || self->server_->stopping()) return self->Close();
                       self->DoRead();
                     });
}

void Session::StartStream(const StreamHandler& handler, Request request) {
  WatchForHangUp();
  auto self = shared_from_this();
  Server::Impl* server = server_;
  const bool launched = server_->LaunchStream([self, server, &handler,
                                               request = std::move(request)] {
    const std::string header =
        absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n",
                     "Content-Security-Policy: default-src 'self'\r\n",
                     "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n",
                     "Connection: close\r\n\r\n", "retry: 2000\n\n");
    if (self->WriteBlocking(header)) {
      SessionEventStream events(self, server);
      try {
        handler(request, events);
      } catch (const std::exception& e) {
        common::LogError("http_stream_failed").With("path", request.path).With("error", e.what());
      }
    }
    self->Close();
  });
  if (!launched) Close();
}

// An event-stream client sends nothing more: a completed read means it hung up (or broke
// the protocol); either way the stream ends.
void Session::WatchForHangUp() {
  stream_.expires_never();
  stream_.async_read_some(net::buffer(hangup_byte_),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            self->gone_ = true;
                            if (!ec) self->Close();
                          });
}

bool Session::WriteBlocking(std::string bytes) {
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> result = done->get_future();
  auto data = std::make_shared<std::string>(std::move(bytes));
  net::post(stream_.get_executor(), [self = shared_from_this(), done, data] {
    if (self->gone_) {
      done->set_value(false);
      return;
    }
    self->stream_.expires_after(
        std::chrono::milliseconds(self->server_->options().write_timeout_ms));
    net::async_write(self->stream_, net::buffer(*data),
                     [self, done, data](beast::error_code ec, size_t) {
                       if (ec) self->gone_ = true;
                       done->set_value(!ec);
                     });
  });
  return result.get();
}

void Session::Close() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->gone_ = true;
    self->request_timer_.cancel();
    beast::error_code ec;
    self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    self->stream_.close();
  });
}

bool Server::Impl::HostAllowed(std::string_view host) const {
  if (allowed_hosts_.empty()) return true;
  for (const std::string& h : allowed_hosts_) {
    if (absl::EqualsIgnoreCase(h, absl::string_view(host.data(), host.size()))) return true;
  }
  return false;
}

Server::Impl::Admission Server::Impl::AddConnection(Session* s, std::weak_ptr<Session> weak) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return Admission::kStopping;
  sessions_[s] = std::move(weak);
  return sessions_.size() <= options_.max_connections ? Admission::kServe : Admission::kOverLimit;
}

void Server::Impl::RemoveConnection(Session* s) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(s);
}

bool Server::Impl::LaunchStream(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return false;
  // Reap the streams that ended, so a long-running server keeps no dead threads.
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  streams_.push_back({std::thread([fn = std::move(fn), done] {
                        fn();
                        done->store(true);
                      }),
                      done});
  return true;
}

bool Server::Impl::SleepUnlessStopping(int ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopped_; });
}

absl::Status Server::Impl::Listen() {
  auto hp = internal::ParseListenAddress(options_.listen);
  if (!hp.ok()) return hp.status();
  if (options_.max_connections == 0 || options_.threads <= 0 || options_.request_timeout_ms <= 0 ||
      options_.write_timeout_ms <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("http server on ", options_.listen,
                     ": max_connections, threads and timeouts must be positive"));
  }
  beast::error_code ec;
  const tcp::endpoint endpoint(net::ip::make_address(hp->host, ec),
                               static_cast<unsigned short>(hp->port));
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", options_.listen, "': ", ec.message()));
  auto fail = [&](const char* step) {
    return absl::UnavailableError(
        absl::StrCat("cannot ", step, " ", options_.listen, ": ", ec.message()));
  };
  if (acceptor_.open(endpoint.protocol(), ec)) return fail("open a socket for");
  if (acceptor_.set_option(net::socket_base::reuse_address(true), ec)) return fail("set up");
  if (acceptor_.bind(endpoint, ec)) return fail("bind");
  if (acceptor_.listen(net::socket_base::max_listen_connections, ec)) return fail("listen on");
  const tcp::endpoint bound = acceptor_.local_endpoint(ec);
  if (ec) return fail("read the bound address of");
  port_ = bound.port();
  const std::string host = bound.address().to_string();
  address_ = bound.address().is_v6() ? absl::StrCat("[", host, "]:", port_)
                                     : absl::StrCat(host, ":", port_);
  for (const std::string& h : options_.allowed_hosts) {
    allowed_hosts_.push_back(absl::StrReplaceAll(h, {{"{port}", absl::StrCat(port_)}}));
  }
  return absl::OkStatus();
}

void Server::Impl::Run() {
  Accept();
  for (int i = 0; i < options_.threads; ++i) {
    io_threads_.emplace_back([this] { ioc_.run(); });
  }
}

void Server::Impl::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (!stopping_ && ec != net::error::operation_aborted) Accept();
      return;
    }
    auto session = std::make_shared<Session>(std::move(socket), this);
    const Admission admission = AddConnection(session.get(), session);
    if (admission == Admission::kStopping) return session->Close();
    session->Start(admission == Admission::kOverLimit);
    Accept();
  });
}

void Server::Impl::Stop() {
  std::list<StreamThread> streams;
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    streams.swap(streams_);
    for (auto& [ptr, weak] : sessions_) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  stop_cv_.notify_all();
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  for (auto& s : sessions) s->Close();
  sessions.clear();
  for (StreamThread& t : streams) t.thread.join();
  // Every connection is closed, so every pending operation completes (with an error) and
  // the I/O threads run out of work; their handlers close the sockets before they return.
  guard_.reset();
  for (std::thread& t : io_threads_) t.join();
  io_threads_.clear();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, Routes routes) {
  auto impl = std::make_unique<Impl>(options, std::move(routes));
  if (absl::Status st = impl->Listen(); !st.ok()) return st;
  impl->Run();
  common::LogInfo("http_listening").With("address", impl->address());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::port() const { return impl_->port(); }
std::string Server::address() const { return impl_->address(); }
void Server::Stop() {
  if (impl_) impl_->Stop();
}

}  // namespace tessera::http
