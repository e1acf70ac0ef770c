// The HTTP server on real loopback sockets: routes, errors, limits, slow clients and event
// streams, driven by a raw-socket client that can send anything.
#include "http/server.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/raw_http.h"

namespace tessera::http {
namespace {

using ::tessera::testing::RawHttpBody;
using ::tessera::testing::RawHttpConnection;
using ::tessera::testing::RawHttpGet;
using ::tessera::testing::RawHttpStatus;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kDeadline = absl::Seconds(10);

// Polls `done` until true or kDeadline.
bool Eventually(const std::function<bool()>& done) {
  return tessera::testing::Eventually(done, kDeadline);
}

Routes HelloRoutes() {
  Routes routes;
  routes.Get("/hello", [](const Request& r) {
    Response res;
    res.body = absl::StrCat("hello ", r.query.count("name") ? r.query.at("name") : "world");
    res.headers.push_back({"X-Test", "1"});
    return res;
  });
  return routes;
}

std::unique_ptr<Server> StartOrDie(const ServerOptions& options, Routes routes) {
  auto server = Server::Start(options, std::move(routes));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(HttpServerTest, AnswersARouteWithSecurityHeaders) {
  auto server = StartOrDie({}, HelloRoutes());
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->address(), absl::StrCat("127.0.0.1:", server->port()));
  std::string answer = RawHttpGet(server->port(), "/hello?name=caf%C3%A9+1");
  EXPECT_EQ(RawHttpStatus(answer), 200) << answer;
  EXPECT_EQ(RawHttpBody(answer), "hello café 1");
  EXPECT_THAT(answer, HasSubstr("Content-Security-Policy: default-src 'self'\r\n"));
  EXPECT_THAT(answer, HasSubstr("X-Content-Type-Options: nosniff\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_THAT(answer, HasSubstr("X-Test: 1\r\n"));
}

TEST(HttpServerTest, NotFoundMethodNotAllowedAndHead) {
  auto server = StartOrDie({}, HelloRoutes());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(RawHttpStatus(RawHttpGet(server->port(), "/nope")), 404);
  RawHttpConnection post(server->port());
  ASSERT_TRUE(post.Write("POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"));
  std::string answer = post.ReadUntil("\r\n\r\n", kDeadline);
  EXPECT_EQ(RawHttpStatus(answer), 405) << answer;
  EXPECT_THAT(answer, HasSubstr("Allow: GET, HEAD\r\n"));
  RawHttpConnection head(server->port());
  ASSERT_TRUE(head.Write("HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  answer = head.ReadUntilClosed(kDeadline);
  EXPECT_EQ(RawHttpStatus(answer), 200);
  EXPECT_THAT(answer, HasSubstr("Content-Length: 11\r\n"));
  EXPECT_EQ(RawHttpBody(answer), "");
}

TEST(HttpServerTest, KeepsAConnectionAliveForSeveralRequests) {
  auto server = StartOrDie({}, HelloRoutes());
  ASSERT_NE(server, nullptr);
  RawHttpConnection c(server->port());
  ASSERT_TRUE(c.Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(c.ReadUntil("hello world", kDeadline), HasSubstr("hello world"));
  ASSERT_TRUE(c.Write("GET /hello?name=again HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(c.ReadUntil("hello again", kDeadline), HasSubstr("hello again"));
}

TEST(HttpServerTest, BadRequestsGetClientErrors) {
  ServerOptions options;
  options.max_request_bytes = 100;
  options.max_header_bytes = 512;
  auto server = StartOrDie(options, HelloRoutes());
  ASSERT_NE(server, nullptr);
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET /hello HTTP/1.1\r\nHost x\r\n\r\n", 400},
      {"GET /hello%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'a'),
       413},
      {"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n", 431},
  };
  for (const Case& c : cases) {
    RawHttpConnection conn(server->port());
    conn.Write(c.request);
    std::string answer = conn.ReadUntilClosed(kDeadline);
    EXPECT_EQ(RawHttpStatus(answer), c.status) << c.request.substr(0, 60) << " got " << answer;
    EXPECT_TRUE(conn.closed()) << "the server should close after " << c.status;
  }
  // The server still answers.
  EXPECT_EQ(RawHttpStatus(RawHttpGet(server->port(), "/hello")), 200);
}

TEST(HttpServerTest, DropsASlowlorisWithoutStallingOthers) {
  ServerOptions options;
  options.request_timeout_ms = 300;
  auto server = StartOrDie(options, HelloRoutes());
  ASSERT_NE(server, nullptr);
  RawHttpConnection slow(server->port());
  ASSERT_TRUE(slow.Write("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  // Others are served while it dribbles.
  const absl::Time start = absl::Now();
  EXPECT_EQ(RawHttpStatus(RawHttpGet(server->port(), "/hello")), 200);
  slow.Write("a");
  EXPECT_EQ(RawHttpStatus(slow.ReadUntilClosed(kDeadline)), 408);
  EXPECT_TRUE(slow.closed());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // An idle keep-alive connection is closed too.
  RawHttpConnection idle(server->port());
  EXPECT_EQ(idle.ReadUntilClosed(kDeadline), "");
  EXPECT_TRUE(idle.closed());
}

TEST(HttpServerTest, StopDoesNotWaitForIdleConnections) {
  ServerOptions options;
  options.request_timeout_ms = 60'000;
  auto server = StartOrDie(options, HelloRoutes());
  ASSERT_NE(server, nullptr);
  RawHttpConnection idle(server->port());
  RawHttpConnection partial(server->port());
  ASSERT_TRUE(partial.Write("GET /hello HTTP/1.1\r\n"));
  ASSERT_EQ(RawHttpStatus(RawHttpGet(server->port(), "/hello")), 200);  // both accepted by now
  const absl::Time start = absl::Now();
  server->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  idle.ReadUntilClosed(kDeadline);
  EXPECT_TRUE(idle.closed());
}

TEST(HttpServerTest, RefusesConnectionsBeyondTheLimit) {
  ServerOptions options;
  options.max_connections = 2;
  auto server = StartOrDie(options, HelloRoutes());
  ASSERT_NE(server, nullptr);
  auto a = std::make_unique<RawHttpConnection>(server->port());
  RawHttpConnection b(server->port());
  // Both are accepted (a keep-alive request answered) before the third arrives.
  ASSERT_TRUE(a->Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_THAT(a->ReadUntil("hello world", kDeadline), HasSubstr("hello world"));
  ASSERT_TRUE(b.Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_THAT(b.ReadUntil("hello world", kDeadline), HasSubstr("hello world"));
  EXPECT_EQ(RawHttpStatus(RawHttpGet(server->port(), "/hello")), 503);
  a.reset();  // frees a slot
  EXPECT_TRUE(
      Eventually([&] { return RawHttpStatus(RawHttpGet(server->port(), "/hello")) == 200; }));
}

TEST(HttpServerTest, ChecksTheHostHeaderWhenAsked) {
  ServerOptions options;
  options.allowed_hosts = LoopbackHosts();
  auto server = StartOrDie(options, HelloRoutes());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(RawHttpStatus(RawHttpGet(server->port(), "/hello")), 200);
  RawHttpConnection c(server->port());
  ASSERT_TRUE(c.Write("GET /hello HTTP/1.1\r\nHost: evil.example:80\r\n\r\n"));
  EXPECT_EQ(RawHttpStatus(c.ReadUntilClosed(kDeadline)), 421);
}

TEST(HttpServerTest, AHandlerExceptionIsA500) {
  Routes routes;
  routes.Get("/boom", [](const Request&) -> Response { throw std::runtime_error("boom"); });
  auto server = StartOrDie({}, std::move(routes));
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(RawHttpStatus(RawHttpGet(server->port(), "/boom")), 500);
}

TEST(HttpServerTest, StartErrorsNameTheAddress) {
  for (const char* bad : {"127.0.0.1", "nowhere.example:80", "127.0.0.1:99999"}) {
    ServerOptions options;
    options.listen = bad;
    auto server = Server::Start(options, Routes());
    ASSERT_FALSE(server.ok()) << bad;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(bad));
  }
  auto first = StartOrDie({}, Routes());
  ASSERT_NE(first, nullptr);
  ServerOptions taken;
  taken.listen = first->address();
  auto second = Server::Start(taken, Routes());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(first->address()));
}

TEST(HttpServerTest, StreamsServerSentEvents) {
  Routes routes;
  routes.Stream("/events", [](const Request& r, EventStream& events) {
    events.Send("", "plain");
    events.Send("round", "line one\nline two");
    events.Send("bad\nname", r.query.count("x") ? r.query.at("x") : "");
  });
  auto server = StartOrDie({}, std::move(routes));
  ASSERT_NE(server, nullptr);
  std::string answer = RawHttpGet(server->port(), "/events?x=3");
  EXPECT_EQ(RawHttpStatus(answer), 200) << answer;
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(RawHttpBody(answer),
              HasSubstr("data: plain\n\nevent: round\ndata: line one\ndata: line two\n\n"
                        "event: badname\ndata: 3\n\n"));
  // A stream route takes GET only.
  RawHttpConnection post(server->port());
  ASSERT_TRUE(post.Write("POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(RawHttpStatus(post.ReadUntilClosed(kDeadline)), 405);
}

TEST(HttpServerTest, AStreamEndsWhenItsClientHangsUp) {
  std::atomic<bool> started = false;
  std::atomic<bool> ended = false;
  Routes routes;
  routes.Stream("/events", [&](const Request&, EventStream& events) {
    started = true;
    while (events.Send("tick", "x") && events.Wait(50)) {
    }
    ended = true;
  });
  auto server = StartOrDie({}, std::move(routes));
  ASSERT_NE(server, nullptr);
  {
    RawHttpConnection c(server->port());
    ASSERT_TRUE(c.Write("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_THAT(c.ReadUntil("event: tick", kDeadline), HasSubstr("event: tick"));
  }
  EXPECT_TRUE(Eventually([&] { return ended.load(); }));
  EXPECT_TRUE(started);
}

TEST(HttpServerTest, StopEndsStreamsAndIsIdempotent) {
  std::atomic<bool> ended = false;
  std::atomic<int> waits_returned_false = 0;
  Routes routes;
  routes.Stream("/events", [&](const Request&, EventStream& events) {
    events.Send("hello", "");
    while (events.Wait(60'000)) {
    }
    ++waits_returned_false;
    EXPECT_FALSE(events.Send("after", "stop"));
    ended = true;
  });
  auto server = StartOrDie({}, HelloRoutes());
  ASSERT_NE(server, nullptr);
  server.reset();
  auto streaming = StartOrDie({}, std::move(routes));
  ASSERT_NE(streaming, nullptr);
  RawHttpConnection c(streaming->port());
  ASSERT_TRUE(c.Write("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_THAT(c.ReadUntil("event: hello", kDeadline), HasSubstr("event: hello"));
  const absl::Time start = absl::Now();
  streaming->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(ended);
  EXPECT_EQ(waits_returned_false, 1);
  streaming->Stop();
  c.ReadUntilClosed(kDeadline);
  EXPECT_TRUE(c.closed());
  EXPECT_THAT(RawHttpGet(streaming->port(), "/events", absl::Milliseconds(500)),
              Not(HasSubstr("200 OK")));
}

}  // namespace
}  // namespace tessera::http
