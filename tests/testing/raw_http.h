// A raw-socket HTTP client for tests: connects to 127.0.0.1, writes exactly the bytes a
// test gives (so tests can send malformed, oversized or slow requests) and reads with
// deadlines. Not a general client.
#ifndef TESSERA_TESTS_TESTING_RAW_HTTP_H_
#define TESSERA_TESTS_TESTING_RAW_HTTP_H_

#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace tessera::testing {

class RawHttpConnection {
 public:
  // Connects to 127.0.0.1:port; ok() is false if that failed.
  explicit RawHttpConnection(int port);
  ~RawHttpConnection();
  RawHttpConnection(const RawHttpConnection&) = delete;
  RawHttpConnection& operator=(const RawHttpConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  // Writes all of `bytes`; false on error (e.g. the server closed the connection).
  bool Write(std::string_view bytes);
  // Reads until `needle` has arrived (returns everything read so far, including it), the
  // peer closed, or `timeout` passed.
  std::string ReadUntil(std::string_view needle, absl::Duration timeout);
  // Reads until the peer closes or `timeout` passes; closed() tells which.
  std::string ReadUntilClosed(absl::Duration timeout);
  bool closed() const { return closed_; }
  void Close();

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string buffered_;
};

// One "GET path" with Host 127.0.0.1:port and Connection: close; the whole answer (status
// line, headers, body), or "" if nothing arrived within `timeout`.
std::string RawHttpGet(int port, std::string_view path, absl::Duration timeout = absl::Seconds(10));

// The status code of an answer's status line ("HTTP/1.1 404 Not Found" → 404), -1 if none.
int RawHttpStatus(std::string_view answer);
// The body of an answer (after the blank line), "" if none.
std::string RawHttpBody(std::string_view answer);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_RAW_HTTP_H_
