// Reading a fuzzer's input as a small structured stream: selector bytes and
// length-prefixed chunks. Every read succeeds: past the end it returns zeros and empty
// chunks, so that any byte string is a valid input. Shared by the targets in tests/fuzz
// and by make_corpus (which writes inputs in the same layout with FuzzWriter).
//
// Not thread-safe; one per input.
#ifndef TESSERA_TESTS_FUZZ_FUZZ_INPUT_H_
#define TESSERA_TESTS_FUZZ_FUZZ_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return rest_.empty(); }

  uint8_t Byte() {
    if (rest_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }

  // A chunk of at most `max` bytes after a 1-byte (max < 256) or 2-byte big-endian length;
  // shorter if the input ends first.
  std::string_view Chunk8() { return Take(Byte()); }
  std::string_view Chunk16() {
    const size_t high = Byte();
    return Take(high << 8 | Byte());
  }

  // Everything not read yet.
  std::string_view Rest() {
    const std::string_view all = rest_;
    rest_ = {};
    return all;
  }

 private:
  std::string_view Take(size_t n) {
    n = std::min(n, rest_.size());
    const std::string_view chunk = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return chunk;
  }

  std::string_view rest_;
};

// Writes what FuzzInput reads.
class FuzzWriter {
 public:
  FuzzWriter& Byte(uint8_t b) {
    out_.push_back(static_cast<char>(b));
    return *this;
  }
  FuzzWriter& Chunk8(std::string_view chunk) {
    chunk = chunk.substr(0, 255);
    Byte(static_cast<uint8_t>(chunk.size()));
    out_.append(chunk);
    return *this;
  }
  FuzzWriter& Chunk16(std::string_view chunk) {
    chunk = chunk.substr(0, 65535);
    Byte(static_cast<uint8_t>(chunk.size() >> 8)).Byte(static_cast<uint8_t>(chunk.size()));
    out_.append(chunk);
    return *this;
  }
  FuzzWriter& Rest(std::string_view rest) {
    out_.append(rest);
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

}  // namespace tessera::fuzz

#endif  // TESSERA_TESTS_FUZZ_FUZZ_INPUT_H_
