#include "tests/testing/fault_relay.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "boost/asio.hpp"

namespace tessera::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kChunkBytes = 16 * 1024;

absl::StatusOr<tcp::endpoint> ParseEndpoint(const std::string& text, const std::string& what) {
  const size_t colon = text.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", text, "' is not host:port"));
  }
  std::string host(absl::StripSuffix(absl::StripPrefix(text.substr(0, colon), "["), "]"));
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", host, "' is not a numeric IP address"));
  }
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

}  // namespace

// Everything below runs on the relay's thread, except the public methods (which post to it)
// and stats and the bound address (under mu_).
class FaultRelay::Impl {
 public:
  class Connection;

  Impl(const RelayOptions& options, const tcp::endpoint& upstream)
      : options_(options), upstream_(upstream), rng_(options.seed) {
    faults_[0] = options.up;
    faults_[1] = options.down;
  }

  absl::Status Listen(const tcp::endpoint& endpoint) {
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      return absl::UnavailableError(absl::StrCat("cannot listen on ",
                                                 endpoint.address().to_string(), ":",
                                                 endpoint.port(), ": ", ec.message()));
    }
    const tcp::endpoint bound = acceptor_.local_endpoint();
    absl::MutexLock lock(&mu_);
    bound_ = bound;
    return absl::OkStatus();
  }

  void Run() {
    start_ = Clock::now();
    Accept();
    for (absl::Duration t : options_.schedule.reset_at) At(t, [this] { ResetAll(); });
    for (absl::Duration t : options_.schedule.cut_at) At(t, [this] { Cut(/*refuse=*/false); });
    for (absl::Duration t : options_.schedule.restore_at) At(t, [this] { Restore(); });
    thread_ = std::thread([this] { io_.run(); });
  }

  void Stop() {
    asio::post(io_, [this] { Shutdown(); });
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  // Runs `f` on the relay's thread and returns once it has run (never from that thread).
  template <typename F>
  void RunAndWait(F f) {
    absl::Notification done;
    asio::post(io_, [&] {
      f();
      done.Notify();
    });
    done.WaitForNotification();
  }

  // Relay-thread operations.
  void Cut(bool refuse);
  void Restore();
  void ResetAll();
  void SetFaults(int direction, const DirectionFaults& faults) {
    faults_[direction] = faults;
    cut_budget_[direction] = faults.cut_after_bytes;
  }

  RelayStats stats() const {
    absl::MutexLock lock(&mu_);
    return stats_;
  }
  // Read by the test's thread while the relay's thread may listen again (Restore).
  tcp::endpoint bound() const {
    absl::MutexLock lock(&mu_);
    return bound_;
  }

  // For connections.
  asio::io_context& io() { return io_; }
  const tcp::endpoint& upstream() const { return upstream_; }
  const DirectionFaults& faults(int direction) const { return faults_[direction]; }
  bool cut() const { return cut_; }
  Clock::time_point start() const { return start_; }
  absl::Duration Jittered(int direction) {
    const DirectionFaults& f = faults_[direction];
    if (f.jitter <= absl::ZeroDuration()) return f.delay;
    std::uniform_real_distribution<double> u(-1, 1);
    return std::max(absl::ZeroDuration(), f.delay + f.jitter * u(rng_));
  }
  // Whether a byte-count reset may happen now (counts it if so).
  bool TakeReset() {
    if (options_.max_resets >= 0 && byte_resets_ >= options_.max_resets) return false;
    ++byte_resets_;
    return true;
  }
  // Bytes the direction may still forward before a cut_after cut; -1 for no such cut.
  int64_t CutBudget(int direction) const {
    return cut_budget_[direction] > 0 ? cut_budget_[direction] : -1;
  }
  // Counts forwarded bytes against a cut_after budget; cuts the link when it is spent.
  void SpendCutBudget(int direction, int64_t bytes) {
    if (cut_budget_[direction] <= 0) return;
    cut_budget_[direction] -= std::min(bytes, cut_budget_[direction]);
    if (cut_budget_[direction] == 0) Cut(/*refuse=*/false);
  }
  void Count(int direction, int64_t bytes) {
    absl::MutexLock lock(&mu_);
    (direction == 0 ? stats_.bytes_up : stats_.bytes_down) += bytes;
  }
  void CountReset() {
    absl::MutexLock lock(&mu_);
    ++stats_.resets;
  }
  void Forget(const std::shared_ptr<Connection>& c) { connections_.erase(c); }

 private:
  void Accept();
  void Shutdown();
  template <typename F>
  void At(absl::Duration t, F f) {
    auto timer = std::make_unique<asio::steady_timer>(io_);
    timer->expires_at(start_ + absl::ToChronoNanoseconds(t));
    timer->async_wait([f = std::move(f)](const boost::system::error_code& ec) {
      if (!ec) f();
    });
    timers_.push_back(std::move(timer));
  }

  const RelayOptions options_;
  const tcp::endpoint upstream_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  tcp::acceptor acceptor_{io_};
  tcp::endpoint bound_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  Clock::time_point start_;
  std::mt19937_64 rng_;
  DirectionFaults faults_[2];
  int64_t cut_budget_[2] = {0, 0};
  bool cut_ = false;
  bool refused_ = false;
  bool stopping_ = false;
  int byte_resets_ = 0;
  std::set<std::shared_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<Connection>> held_;  // accepted while cut
  std::vector<std::unique_ptr<asio::steady_timer>> timers_;

  mutable absl::Mutex mu_;
  RelayStats stats_ ABSL_GUARDED_BY(mu_);
};

// One relayed connection: socket 0 is the client, socket 1 the upstream; pipe 0 (up) reads
// socket 0 and writes socket 1, pipe 1 (down) the reverse.
class FaultRelay::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl* relay, tcp::socket client)
      : relay_(relay),
        sockets_{std::move(client), tcp::socket(relay->io())},
        pipes_{Pipe(relay->io()), Pipe(relay->io())} {}

  void ConnectUpstream() {
    sockets_[1].async_connect(relay_->upstream(),
                              [self = shared_from_this()](const boost::system::error_code& ec) {
                                if (self->closed_) return;
                                if (ec) return self->Close(/*reset=*/true, /*injected=*/false);
                                self->connected_ = true;
                                boost::system::error_code ignored;
                                self->sockets_[1].set_option(tcp::no_delay(true), ignored);
                                self->Pump();
                              });
  }

  void Pump() {
    for (int d = 0; d < 2; ++d) {
      MaybeRead(d);
      MaybeWrite(d);
    }
  }

  // Closes both sockets; with `reset`, each peer gets an RST (SO_LINGER 0).
  void Close(bool reset, bool injected) {
    if (closed_) return;
    closed_ = true;
    for (tcp::socket& s : sockets_) {
      boost::system::error_code ignored;
      if (!s.is_open()) continue;
      if (reset) s.set_option(asio::socket_base::linger(true, 0), ignored);
      s.close(ignored);
    }
    for (Pipe& p : pipes_) p.timer.cancel();
    if (injected) relay_->CountReset();
    relay_->Forget(shared_from_this());
  }

 private:
  struct Chunk {
    std::vector<char> data;
    Clock::time_point due;
  };
  struct Pipe {
    explicit Pipe(asio::io_context& io) : timer(io) {}
    std::deque<Chunk> queue;
    size_t queued = 0;
    bool reading = false;
    bool writing = false;
    bool eof = false;
    bool shut = false;
    std::array<char, kChunkBytes> buffer;
    asio::steady_timer timer;
    Clock::time_point link_free;
    Clock::time_point last_due;
    int64_t forwarded = 0;
  };

  size_t QueueCap(int d) const {
    const double rate = relay_->faults(d).rate_bytes_per_second;
    // About 50 ms of the link's rate, so that a limited link pushes back on the sender.
    return rate > 0 ? std::max<size_t>(64 * 1024, static_cast<size_t>(rate / 20)) : 4 << 20;
  }

  void MaybeRead(int d) {
    Pipe& p = pipes_[d];
    if (closed_ || !connected_ || p.reading || p.eof || relay_->cut() || p.queued >= QueueCap(d)) {
      return;
    }
    p.reading = true;
    sockets_[d].async_read_some(
        asio::buffer(p.buffer),
        [self = shared_from_this(), d](const boost::system::error_code& ec, size_t n) {
          Pipe& p = self->pipes_[d];
          p.reading = false;
          if (self->closed_) return;
          if (ec == asio::error::eof) {
            p.eof = true;
          } else if (ec) {
            return self->Close(/*reset=*/true, /*injected=*/false);
          } else {
            self->Enqueue(d, n);
          }
          self->MaybeRead(d);
          self->MaybeWrite(d);
        });
  }

  void Enqueue(int d, size_t n) {
    Pipe& p = pipes_[d];
    const DirectionFaults& f = relay_->faults(d);
    const Clock::time_point now = Clock::now();
    Clock::time_point departure = std::max(now, p.link_free);
    if (f.rate_bytes_per_second > 0) {
      departure += std::chrono::nanoseconds(
          static_cast<int64_t>(1e9 * static_cast<double>(n) / f.rate_bytes_per_second));
    }
    p.link_free = departure;
    Clock::time_point due = departure + absl::ToChronoNanoseconds(relay_->Jittered(d));
    due = std::max(due, p.last_due);  // never overtake the chunk ahead
    p.last_due = due;
    p.queue.push_back({std::vector<char>(p.buffer.begin(), p.buffer.begin() + n), due});
    p.queued += n;
  }

  // The end of the stall window `now` falls in (chained windows included), or `now`.
  Clock::time_point StallEnd(int d, Clock::time_point now) const {
    Clock::time_point t = now;
    for (bool moved = true; moved;) {
      moved = false;
      for (const DirectionFaults::Stall& s : relay_->faults(d).stalls) {
        const Clock::time_point from = relay_->start() + absl::ToChronoNanoseconds(s.at);
        const Clock::time_point to = from + absl::ToChronoNanoseconds(s.for_);
        if (t >= from && t < to) {
          t = to;
          moved = true;
        }
      }
    }
    return t;
  }

  void MaybeWrite(int d) {
    Pipe& p = pipes_[d];
    if (closed_ || !connected_ || p.writing || relay_->cut()) return;
    tcp::socket& to = sockets_[1 - d];
    if (p.queue.empty()) {
      if (p.eof && !p.shut) {
        p.shut = true;
        boost::system::error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        if (pipes_[1 - d].shut) Close(/*reset=*/false, /*injected=*/false);
      }
      return;
    }
    const Clock::time_point now = Clock::now();
    const Clock::time_point ready = std::max(p.queue.front().due, StallEnd(d, now));
    // A cut_after budget smaller than the chunk: the rest of the chunk stays behind.
    const int64_t budget = relay_->CutBudget(d);
    if (budget > 0 && static_cast<int64_t>(p.queue.front().data.size()) > budget) {
      Chunk& front = p.queue.front();
      Chunk rest{std::vector<char>(front.data.begin() + budget, front.data.end()), front.due};
      front.data.resize(static_cast<size_t>(budget));
      p.queue.insert(p.queue.begin() + 1, std::move(rest));
    }
    p.writing = true;
    if (ready > now) {
      p.timer.expires_at(ready);
      p.timer.async_wait([self = shared_from_this(), d](const boost::system::error_code& ec) {
        self->pipes_[d].writing = false;
        if (!ec) self->MaybeWrite(d);
      });
      return;
    }
    asio::async_write(
        to, asio::buffer(p.queue.front().data),
        [self = shared_from_this(), d](const boost::system::error_code& ec, size_t n) {
          Pipe& p = self->pipes_[d];
          p.writing = false;
          // Written is written, even if the relay closed the connection meanwhile (a stop):
          // the peer may already have the bytes, and the counts must say so.
          if (!ec) {
            p.forwarded += static_cast<int64_t>(n);
            self->relay_->Count(d, static_cast<int64_t>(n));
          }
          if (self->closed_) return;
          if (ec) return self->Close(/*reset=*/true, /*injected=*/false);
          p.queue.pop_front();
          p.queued -= n;
          self->relay_->SpendCutBudget(d, static_cast<int64_t>(n));
          const int64_t limit = self->relay_->faults(d).reset_after_bytes;
          if (limit > 0 && p.forwarded >= limit && self->relay_->TakeReset()) {
            return self->Close(/*reset=*/true, /*injected=*/true);
          }
          self->MaybeRead(d);
          self->MaybeWrite(d);
        });
  }

  Impl* relay_;
  tcp::socket sockets_[2];
  Pipe pipes_[2];
  bool connected_ = false;
  bool closed_ = false;
};

void FaultRelay::Impl::Accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (stopping_ || !acceptor_.is_open()) return;
    if (!ec) {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto c = std::make_shared<Connection>(this, std::move(socket));
      connections_.insert(c);
      {
        absl::MutexLock lock(&mu_);
        ++stats_.connections;
      }
      if (cut_) {
        held_.push_back(c);
      } else {
        c->ConnectUpstream();
      }
    }
    Accept();
  });
}

void FaultRelay::Impl::Cut(bool refuse) {
  if (!cut_) {
    absl::MutexLock lock(&mu_);
    ++stats_.cuts;
    stats_.cut = true;
  }
  cut_ = true;
  if (refuse && !refused_) {
    refused_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    ResetAll();
  }
}

void FaultRelay::Impl::Restore() {
  if (refused_) {
    refused_ = false;
    absl::Status listening = Listen(bound());
    if (listening.ok()) Accept();
  }
  cut_ = false;
  {
    absl::MutexLock lock(&mu_);
    stats_.cut = false;
  }
  std::vector<std::shared_ptr<Connection>> held = std::move(held_);
  held_.clear();
  for (auto& c : held) c->ConnectUpstream();
  std::vector<std::shared_ptr<Connection>> live(connections_.begin(), connections_.end());
  for (auto& c : live) c->Pump();
}

void FaultRelay::Impl::ResetAll() {
  std::vector<std::shared_ptr<Connection>> live(connections_.begin(), connections_.end());
  held_.clear();
  for (auto& c : live) c->Close(/*reset=*/true, /*injected=*/true);
}

void FaultRelay::Impl::Shutdown() {
  stopping_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& t : timers_) t->cancel();
  held_.clear();
  std::vector<std::shared_ptr<Connection>> live(connections_.begin(), connections_.end());
  for (auto& c : live) c->Close(/*reset=*/false, /*injected=*/false);
}

absl::StatusOr<std::unique_ptr<FaultRelay>> FaultRelay::Start(const RelayOptions& options) {
  absl::StatusOr<tcp::endpoint> listen = ParseEndpoint(options.listen, "listen");
  if (!listen.ok()) return listen.status();
  absl::StatusOr<tcp::endpoint> upstream = ParseEndpoint(options.upstream, "upstream");
  if (!upstream.ok()) return upstream.status();
  auto impl = std::make_unique<Impl>(options, *upstream);
  absl::Status listening = impl->Listen(*listen);
  if (!listening.ok()) return listening;
  impl->Run();
  return std::unique_ptr<FaultRelay>(new FaultRelay(std::move(impl)));
}

FaultRelay::FaultRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FaultRelay::~FaultRelay() { impl_->Stop(); }

void FaultRelay::Stop() { impl_->Stop(); }

std::string FaultRelay::address() const {
  const tcp::endpoint e = impl_->bound();
  const std::string host = e.address().to_string();
  return e.address().is_v6() ? absl::StrCat("[", host, "]:", e.port())
                             : absl::StrCat(host, ":", e.port());
}

int FaultRelay::port() const { return impl_->bound().port(); }

void FaultRelay::Cut() {
  impl_->RunAndWait([impl = impl_.get()] { impl->Cut(/*refuse=*/false); });
}
void FaultRelay::Refuse() {
  impl_->RunAndWait([impl = impl_.get()] { impl->Cut(/*refuse=*/true); });
}
void FaultRelay::Restore() {
  impl_->RunAndWait([impl = impl_.get()] { impl->Restore(); });
}
void FaultRelay::ResetAll() {
  impl_->RunAndWait([impl = impl_.get()] { impl->ResetAll(); });
}
void FaultRelay::SetUp(const DirectionFaults& faults) {
  impl_->RunAndWait([impl = impl_.get(), &faults] { impl->SetFaults(0, faults); });
}
void FaultRelay::SetDown(const DirectionFaults& faults) {
  impl_->RunAndWait([impl = impl_.get(), &faults] { impl->SetFaults(1, faults); });
}

absl::Status FaultRelay::Command(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  if (line == "cut") return Cut(), absl::OkStatus();
  if (line == "refuse") return Refuse(), absl::OkStatus();
  if (line == "restore") return Restore(), absl::OkStatus();
  if (line == "reset") return ResetAll(), absl::OkStatus();
  const size_t space = line.find(' ');
  const absl::string_view word = line.substr(0, space);
  if (space != absl::string_view::npos && (word == "up" || word == "down" || word == "both")) {
    absl::StatusOr<DirectionFaults> faults = ParseDirectionFaults(line.substr(space + 1));
    if (!faults.ok()) return faults.status();
    if (word != "down") SetUp(*faults);
    if (word != "up") SetDown(*faults);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'", line, "' is not a relay command (cut, refuse, restore, reset, up|down|both FAULTS)"));
}

RelayStats FaultRelay::stats() const { return impl_->stats(); }

}  // namespace tessera::testing
