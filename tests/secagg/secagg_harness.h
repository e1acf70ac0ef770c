// An in-process secure-aggregation session for tests and benchmarks: n institutions with
// real certificates (a TestPki) and real signing keys, one SecAggServer and a SecAggClient
// per institution, and no transport. The runner plays the round driver: it posts the
// server's messages, feeds the replies back and closes each round. Tests choose which
// clients stop answering at which round, and may tamper with any message the server sends
// to a given client (a malicious coordinator) or a client sends to the server.
#ifndef TESSERA_TESTS_CRYPTO_SECAGG_SECAGG_HARNESS_H_
#define TESSERA_TESTS_CRYPTO_SECAGG_SECAGG_HARNESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/signature.h"
#include "gtest/gtest.h"
#include "proto/secagg.pb.h"
#include "secagg/client.h"
#include "secagg/server.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::secagg::testing {

using crypto::Role;
using crypto::Signer;

struct Party {
  std::string id;
  std::string cert_pem;
  crypto::SecretBytes key_pem;  // to certify the same key again (certificate swaps)
  std::unique_ptr<Signer> signer;

  ClientIdentity Identity(const std::string& ca_cert_pem) const;
};

// A federation CA and `n` institutions "site-00", "site-01", ... with certificates and
// signing keys loaded from the files TestPki wrote (as a daemon would).
class Federation {
 public:
  static absl::StatusOr<std::unique_ptr<Federation>> Create(int n);

  // One more node (not in ids()): of another role, or certified by the foreign CA.
  absl::StatusOr<Party> Issue(const std::string& id, Role role, bool foreign = false);

  const std::vector<std::string>& ids() const { return ids_; }
  const Party& party(const std::string& id) const;
  const std::string& ca_cert_pem() const { return pki_->ca().cert_pem; }
  // The federation CA itself (its key signs CRLs).
  const crypto::CertificateAuthority& ca() const { return pki_->ca(); }
  // The foreign CA's certificate (another federation's).
  const std::string& foreign_ca_cert_pem() const { return pki_->foreign_ca().cert_pem; }
  ClientIdentity Identity(const std::string& id) const;

 private:
  Federation() = default;
  std::unique_ptr<tessera::testing::TempDir> dir_;
  std::unique_ptr<tessera::testing::TestPki> pki_;
  std::vector<std::string> ids_;
  std::map<std::string, Party> parties_;
};

// A setup for `invited` summing `words` 32-bit words (one BOUNDED segment with the largest
// bit budget the cohort allows), with a fresh random nonce.
v1::SecAggSetup MakeSetup(const std::vector<std::string>& invited, uint32_t threshold,
                          uint32_t words);
// The same with a given encoding (vector_words follows it).
v1::SecAggSetup MakeSetup(const std::vector<std::string>& invited, uint32_t threshold,
                          const v1::SecAggEncoding& encoding);

// Deterministic test words (SplitMix64 of the seed).
std::vector<uint32_t> TestWords(uint64_t seed, size_t count);

struct SessionOptions {
  // A client listed here stops answering from that round on (it sends nothing for it):
  // ADVERTISE_KEYS = gone before advertising, REVEAL_COINS (SecAgg+) = after advertising,
  // SHARE_KEYS = after advertising (SecAgg+: after revealing its coin),
  // MASKED_INPUT = after sharing keys, CONSISTENCY_CHECK = after its masked input,
  // UNMASKING = after its consistency signature.
  std::map<std::string, v1::SecAggRound> stop_at;
  // Called on every message the server sends, per recipient, before the client sees it
  // (and, for an advertisement list naming certificates by digest, before the runner
  // completes it from the server's ListedCertificates, as a site's daemon does).
  std::function<void(v1::SecAggRound round, const std::string& recipient,
                     v1::SecAggServerMessage& message)>
      to_client;
  // Called on every reply before the server sees it.
  std::function<void(v1::SecAggRound round, const std::string& sender,
                     v1::SecAggClientMessage& message)>
      to_server;
  // Every client's policy. Its assumed_colluders also goes to the server's options.
  ClientPolicy policy;
  // If set, changes a client's identity before it starts or is restored (a site holding
  // a CRL: identity->revocations).
  std::function<void(const std::string& id, ClientIdentity* identity)> edit_identity;
  int unmasking_threads = 1;
  // If set, makes each client's input when it starts (instead of copying it from the
  // `inputs` map, whose vectors may then be empty): keeps big benchmarks from holding
  // every input twice.
  std::function<std::vector<uint32_t>(const std::string& id)> make_input;
};

class Session {
 public:
  // `inputs` has one vector per client that will take part (ids of `federation`).
  Session(const Federation& federation, v1::SecAggSetup setup,
          std::map<std::string, std::vector<uint32_t>> inputs, SessionOptions options = {});
  // Whether to keep copies of every message delivered and sent (default on; the benchmark
  // turns it off).
  void set_record_messages(bool record) { record_ = record; }

  // Creates the server. Must be called (and succeed) before Step.
  absl::Status Init();

  // One round: posts the server's messages, delivers the replies, closes the round.
  ServerState Step();
  // The first half of Step: posts the messages and delivers the replies, except those of
  // the clients in `hold_back`, which are kept in held() instead; the round stays open.
  void Deliver(const std::set<std::string>& hold_back = {});
  const std::map<std::string, v1::SecAggClientMessage>& held() const { return held_; }
  // Steps until the server completes or aborts.
  ServerState Run();

  SecAggServer& server() { return *server_; }
  // The options Init created the server with (for SecAggServer::Restore).
  const ServerOptions& server_options() const { return server_options_; }
  // Swaps in another server or client object (a restored one) for the rest of the session.
  void ReplaceServer(std::unique_ptr<SecAggServer> server) { server_ = std::move(server); }
  void ReplaceClient(const std::string& id, std::unique_ptr<SecAggClient> client) {
    clients_[id] = std::move(client);
  }
  // The clients started so far (some may have aborted since), sorted.
  std::vector<std::string> started_clients() const;
  // A restart of the server or of a client at this point: snapshot, serialise and parse
  // (the server's proto deterministically), destroy, restore. The snapshot taken is
  // returned (the server's serialised bytes; the client's SecretBytes copied out).
  absl::StatusOr<std::string> RestartServer();
  absl::StatusOr<std::string> RestartClient(const std::string& id);
  const v1::SecAggSetup& setup() const { return setup_; }
  // nullptr before the client started (or if its Start failed).
  SecAggClient* client(const std::string& id);
  // Why a client aborted (from Start or Handle); UNSPECIFIED if it did not.
  v1::SecAggClientAbort client_abort(const std::string& id) const;
  // The clients that aborted.
  std::set<std::string> aborted_clients() const;
  // What the server said to Receive for each client's last reply.
  const std::map<std::string, absl::Status>& receive_status() const { return receive_status_; }
  // The messages delivered (after tampering), by round and recipient.
  const std::map<v1::SecAggRound, std::map<std::string, v1::SecAggServerMessage>>& delivered()
      const {
    return delivered_;
  }
  // The replies sent (after tampering), by round and sender.
  const std::map<v1::SecAggRound, std::map<std::string, v1::SecAggClientMessage>>& sent() const {
    return sent_;
  }
  // Serialized bytes each client sent, over the whole session.
  const std::map<std::string, size_t>& uploaded_bytes() const { return uploaded_; }
  // The word-wise sum mod 2^32 of the inputs of `ids`.
  std::vector<uint32_t> ExpectedSum(const std::vector<std::string>& ids) const;

  // Wall time spent inside client calls (Start/Handle) and server calls (Receive,
  // CloseRound), per round, in seconds. For the benchmark.
  std::map<v1::SecAggRound, double> client_seconds;  // summed over clients
  std::map<v1::SecAggRound, double> server_seconds;

  // Called around every server call (the benchmark's memory accounting).
  std::function<void(bool entering)> server_call_hook;

 private:
  // What a site's daemon does with an advertisement list naming certificates by digest
  // (client/peer_certificates.h): the certificates filled in from the server.
  void CompleteCertificates(const std::string& recipient, v1::SecAggServerMessage& message) const;
  // The federation's identity for `id`, edited by options_.edit_identity.
  ClientIdentity IdentityOf(const std::string& id) const;

  const Federation& federation_;
  v1::SecAggSetup setup_;
  std::map<std::string, std::vector<uint32_t>> inputs_;
  SessionOptions options_;
  ServerOptions server_options_;
  std::unique_ptr<SecAggServer> server_;
  std::map<std::string, std::unique_ptr<SecAggClient>> clients_;
  std::map<std::string, v1::SecAggClientAbort> aborts_;
  std::map<std::string, absl::Status> receive_status_;
  std::map<v1::SecAggRound, std::map<std::string, v1::SecAggServerMessage>> delivered_;
  std::map<v1::SecAggRound, std::map<std::string, v1::SecAggClientMessage>> sent_;
  std::map<std::string, size_t> uploaded_;
  std::map<std::string, v1::SecAggClientMessage> held_;
  bool record_ = true;
};

// A test suite sharing one Federation of `N` members, made once per suite (key
// generation and certificates are the slow part): derive from FederationSuite<N> and use
// `federation_`. Not thread-safe, like the tests.
template <int N>
class FederationSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto federation = Federation::Create(N);
    ASSERT_TRUE(federation.ok()) << federation.status();
    federation_ = federation->release();
  }
  static void TearDownTestSuite() {
    delete federation_;
    federation_ = nullptr;
  }
  static inline Federation* federation_ = nullptr;
};

}  // namespace tessera::secagg::testing

#endif  // TESSERA_TESTS_CRYPTO_SECAGG_SECAGG_HARNESS_H_
