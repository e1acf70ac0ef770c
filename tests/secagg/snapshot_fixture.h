// The fixture of the secure-aggregation snapshot tests (snapshot_test.cc,
// snapshot_refusal_test.cc): a seven-client federation, its inputs, and the snapshots'
// bytes. Not thread-safe, like the tests.
#ifndef TESSERA_TESTS_SECAGG_SNAPSHOT_FIXTURE_H_
#define TESSERA_TESTS_SECAGG_SNAPSHOT_FIXTURE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "crypto/secret.h"
#include "google/protobuf/message_lite.h"
#include "gtest/gtest.h"
#include "proto/deterministic.h"
#include "proto/secagg_state.pb.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg::testing {

// The length of every test input, in words.
inline constexpr uint32_t kWords = 200;

// The deterministic serialisation of `message` (a failure is a test failure).
inline std::string Deterministic(const google::protobuf::MessageLite& message) {
  absl::StatusOr<std::string> bytes = proto::DeterministicBytes(message, "a message");
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.value_or("");
}

// The server's outgoing messages, by client id, as deterministic bytes.
inline std::map<std::string, std::string> OutgoingBytes(const SecAggServer& server) {
  std::map<std::string, std::string> out;
  for (const auto& [id, message] : server.Outgoing()) out[id] = Deterministic(message);
  return out;
}

// A client snapshot from its bytes (a parse failure is a test failure), and back.
inline v1::SecAggClientSnapshot ParseClient(const crypto::SecretBytes& bytes) {
  v1::SecAggClientSnapshot snapshot;
  EXPECT_TRUE(snapshot.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return snapshot;
}

inline crypto::SecretBytes SerializeClient(const v1::SecAggClientSnapshot& snapshot) {
  return crypto::SecretBytes(snapshot.SerializeAsString());
}

// Whether a client snapshot holds any secret: its input, a private key, its self-mask
// seed, a held share or a channel key.
inline bool HasSecrets(const v1::SecAggClientSnapshot& snapshot) {
  return !snapshot.input().empty() || !snapshot.channel_private_key().empty() ||
         !snapshot.mask_private_key().empty() || !snapshot.self_mask_seed().empty() ||
         snapshot.held_shares_size() > 0 || snapshot.channel_keys_size() > 0;
}

// Seven clients whose keys and certificates are made once for the whole suite.
class SnapshotTest : public FederationSuite<7> {
 protected:
  static std::vector<std::string> Ids(int n) {
    return std::vector<std::string>(federation_->ids().begin(), federation_->ids().begin() + n);
  }
  static std::map<std::string, std::vector<uint32_t>> Inputs(const std::vector<std::string>& ids) {
    std::map<std::string, std::vector<uint32_t>> inputs;
    uint64_t seed = 100;
    for (const std::string& id : ids) inputs[id] = TestWords(seed++, kWords);
    return inputs;
  }

  // Restarts the server and every started client; the server posts the same messages.
  static void RestartEverything(Session& session) {
    const std::map<std::string, std::string> before = OutgoingBytes(session.server());
    ASSERT_OK(session.RestartServer());
    EXPECT_EQ(OutgoingBytes(session.server()), before);
    for (const std::string& id : session.started_clients()) {
      SCOPED_TRACE(id);
      ASSERT_OK(session.RestartClient(id));
    }
  }
};

}  // namespace tessera::secagg::testing

#endif  // TESSERA_TESTS_SECAGG_SNAPSHOT_FIXTURE_H_
