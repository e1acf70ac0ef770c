// SHA-256 and the content hashes the federation agrees on: the task spec hash (what a
// site's policy approves) and the model hash (what a round published).
#ifndef TESSERA_CRYPTO_HASH_H_
#define TESSERA_CRYPTO_HASH_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace tessera::v1 {
class TaskSpec;
}  // namespace tessera::v1

namespace tessera::crypto {

// 32 raw bytes.
std::string Sha256(std::string_view data);

// SHA-256 over data given in pieces (a file read in chunks). Not thread-safe; Finish once.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  void Update(std::string_view data);
  // 32 raw bytes.
  std::string Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Lowercase hex of any bytes (for fingerprints and hashes shown to people).
std::string ToHex(std::string_view bytes);

// SHA-256 of the deterministic serialisation of any message (32 raw bytes): the same field
// values hash the same on every platform this build supports. Used for the digests the
// federation agrees on (a secure-aggregation request, the pooled standardisation).
std::string HashMessage(const google::protobuf::MessageLite& message);

// SHA-256 of the deterministic serialisation of `spec` (32 raw bytes). Two specs with
// the same field values hash the same on every platform this build supports.
std::string HashTaskSpec(const v1::TaskSpec& spec);

// SHA-256 over the parameters as little-endian IEEE-754 float32 words (32 raw bytes).
std::string HashModel(std::span<const float> parameters);

// SHA-256 over "tessera/glm-coefficients/v1" and the coefficients of an exact regression as
// little-endian IEEE-754 binary64 words (32 raw bytes): WorkItem.model_hash of a glm stage.
std::string HashCoefficients(std::span<const double> coefficients);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_HASH_H_
