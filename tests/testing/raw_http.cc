#include "tests/testing/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tessera::testing {

RawHttpConnection::RawHttpConnection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Close();
}

RawHttpConnection::~RawHttpConnection() { Close(); }

void RawHttpConnection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool RawHttpConnection::Write(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string RawHttpConnection::ReadUntil(std::string_view needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (fd_ >= 0 && !closed_ && (needle.empty() || buffered_.find(needle) == std::string::npos)) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      closed_ = true;
      break;
    }
    buffered_.append(buf, static_cast<size_t>(n));
  }
  return buffered_;
}

std::string RawHttpConnection::ReadUntilClosed(absl::Duration timeout) {
  return ReadUntil("", timeout);
}

std::string RawHttpGet(int port, std::string_view path, absl::Duration timeout) {
  RawHttpConnection c(port);
  if (!c.ok()) return "";
  if (!c.Write(absl::StrCat("GET ", std::string(path), " HTTP/1.1\r\nHost: 127.0.0.1:", port,
                            "\r\nConnection: close\r\n\r\n"))) {
    return "";
  }
  return c.ReadUntilClosed(timeout);
}

int RawHttpStatus(std::string_view answer) {
  if (answer.size() < 12 || answer.substr(0, 5) != "HTTP/") return -1;
  const size_t sp = answer.find(' ');
  int code = -1;
  if (sp == std::string_view::npos ||
      !absl::SimpleAtoi(std::string(answer.substr(sp + 1, 3)), &code))
    return -1;
  return code;
}

std::string RawHttpBody(std::string_view answer) {
  const size_t end = answer.find("\r\n\r\n");
  return end == std::string_view::npos ? "" : std::string(answer.substr(end + 4));
}

}  // namespace tessera::testing
