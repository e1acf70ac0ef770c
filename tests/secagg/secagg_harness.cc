#include "tests/secagg/secagg_harness.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/splitmix64.h"
#include "common/status.h"
#include "crypto/quantizer.h"
#include "crypto/random.h"
#include "proto/deterministic.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"

namespace tessera::secagg::testing {

using crypto::MaxBitsForParties;
using crypto::RandomBytes;
using crypto::Role;
using crypto::SecretBytes;
using crypto::Signer;
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

ClientIdentity Party::Identity(const std::string& ca_cert_pem) const {
  ClientIdentity identity;
  identity.client_id = id;
  identity.certificate_pem = cert_pem;
  identity.signer = signer.get();
  identity.ca_cert_pem = ca_cert_pem;
  return identity;
}

absl::StatusOr<std::unique_ptr<Federation>> Federation::Create(int n) {
  std::unique_ptr<Federation> federation(new Federation());
  federation->dir_ = std::make_unique<tessera::testing::TempDir>();
  ASSIGN_OR_RETURN(federation->pki_, tessera::testing::TestPki::Create(federation->dir_->path()));
  // Zero-padded so that ids() is sorted, as a session's invited list must be.
  const int width = n <= 100 ? 2 : static_cast<int>(std::to_string(n - 1).size());
  for (int i = 0; i < n; ++i) {
    const std::string id = absl::StrFormat("site-%0*d", width, i);
    ASSIGN_OR_RETURN(Party party, federation->Issue(id, Role::kInstitution));
    federation->parties_.emplace(id, std::move(party));
    federation->ids_.push_back(id);
  }
  return federation;
}

absl::StatusOr<Party> Federation::Issue(const std::string& id, Role role, bool foreign) {
  tessera::testing::TestPki::NodeOptions options;
  options.foreign = foreign;
  ASSIGN_OR_RETURN(v1::TlsFiles files, pki_->IssueNode(id, role, options));
  Party party;
  party.id = id;
  ASSIGN_OR_RETURN(party.cert_pem, common::ReadFile(files.cert()));
  ASSIGN_OR_RETURN(std::string key_pem, common::ReadFile(files.key()));
  party.key_pem = SecretBytes(std::move(key_pem));
  ASSIGN_OR_RETURN(Signer signer, Signer::Create(party.key_pem.Clone()));
  party.signer = std::make_unique<Signer>(std::move(signer));
  return party;
}

const Party& Federation::party(const std::string& id) const { return parties_.at(id); }

ClientIdentity Federation::Identity(const std::string& id) const {
  return party(id).Identity(ca_cert_pem());
}

v1::SecAggSetup MakeSetup(const std::vector<std::string>& invited, uint32_t threshold,
                          uint32_t words) {
  v1::SecAggEncoding encoding;
  v1::SecAggSegment* segment = encoding.add_segments();
  segment->set_kind(v1::SecAggSegment::BOUNDED);
  segment->set_length(words);
  segment->set_bits(MaxBitsForParties(static_cast<uint32_t>(invited.size())));
  segment->set_bound(1.0);
  return MakeSetup(invited, threshold, encoding);
}

v1::SecAggSetup MakeSetup(const std::vector<std::string>& invited, uint32_t threshold,
                          const v1::SecAggEncoding& encoding) {
  v1::SecAggSetup setup;
  setup.set_protocol_version(1);
  auto nonce = RandomBytes(32);
  if (!nonce.ok()) std::abort();
  setup.set_session_nonce(std::string(nonce->view()));
  setup.set_task_id("secagg-test");
  setup.set_round(1);
  setup.set_stage(1);
  setup.set_attempt(0);
  setup.set_model_hash(std::string(32, 'm'));
  setup.set_threshold(threshold);
  for (const std::string& id : invited) setup.add_invited(id);
  *setup.mutable_encoding() = encoding;
  setup.set_vector_words(static_cast<uint32_t>(EncodedWords(encoding)));
  return setup;
}

std::vector<uint32_t> TestWords(uint64_t seed, size_t count) {
  common::SplitMix64 rng(seed);
  std::vector<uint32_t> words(count);
  for (uint32_t& word : words) word = static_cast<uint32_t>(rng.Next());
  return words;
}

Session::Session(const Federation& federation, v1::SecAggSetup setup,
                 std::map<std::string, std::vector<uint32_t>> inputs, SessionOptions options)
    : federation_(federation),
      setup_(std::move(setup)),
      inputs_(std::move(inputs)),
      options_(std::move(options)) {}

absl::Status Session::Init() {
  ServerOptions server_options;
  server_options.ca_cert_pem = federation_.ca_cert_pem();
  server_options.now = absl::Now();
  server_options.unmasking_threads = options_.unmasking_threads;
  server_options.assumed_colluders = options_.policy.assumed_colluders;
  server_options_ = server_options;
  if (server_call_hook) server_call_hook(true);
  auto server = SecAggServer::Create(setup_, std::move(server_options));
  if (server_call_hook) server_call_hook(false);
  if (!server.ok()) return server.status();
  server_ = *std::move(server);
  return absl::OkStatus();
}

void Session::CompleteCertificates(const std::string& recipient,
                                   v1::SecAggServerMessage& message) const {
  if (!message.has_advertisements()) return;
  for (v1::AdvertisementEntry& entry : *message.mutable_advertisements()->mutable_entries()) {
    v1::KeyAdvertisement* ad = entry.mutable_advertisement();
    if (!ad->certificate().empty() || ad->certificate_sha256().empty()) continue;
    const std::string digest = ad->certificate_sha256();
    auto pems = server_->ListedCertificates(recipient, {&digest, 1});
    if (pems.ok()) ad->set_certificate(pems->front());  // else left out, as a daemon would
  }
}

std::vector<std::string> Session::started_clients() const {
  std::vector<std::string> ids;
  for (const auto& [id, client] : clients_) ids.push_back(id);
  return ids;
}

absl::StatusOr<std::string> Session::RestartServer() {
  ASSIGN_OR_RETURN(v1::SecAggServerSnapshot snapshot, server_->Snapshot());
  ASSIGN_OR_RETURN(std::string bytes, proto::DeterministicBytes(snapshot, "the server snapshot"));
  v1::SecAggServerSnapshot parsed;
  if (!parsed.ParseFromString(bytes)) return absl::InternalError("the snapshot does not parse");
  server_.reset();
  ASSIGN_OR_RETURN(server_, SecAggServer::Restore(parsed, server_options_));
  return bytes;
}

absl::StatusOr<std::string> Session::RestartClient(const std::string& id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return absl::NotFoundError(id);
  const SecretBytes snapshot = it->second->Snapshot();
  it->second.reset();
  ASSIGN_OR_RETURN(it->second, SecAggClient::Restore(IdentityOf(id), options_.policy, snapshot));
  return std::string(snapshot.view());
}

ClientIdentity Session::IdentityOf(const std::string& id) const {
  ClientIdentity identity = federation_.Identity(id);
  if (options_.edit_identity) options_.edit_identity(id, &identity);
  return identity;
}

SecAggClient* Session::client(const std::string& id) {
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second.get();
}

v1::SecAggClientAbort Session::client_abort(const std::string& id) const {
  auto it = aborts_.find(id);
  return it == aborts_.end() ? v1::SECAGG_CLIENT_ABORT_UNSPECIFIED : it->second;
}

std::set<std::string> Session::aborted_clients() const {
  std::set<std::string> ids;
  for (const auto& [id, reason] : aborts_) ids.insert(id);
  return ids;
}

std::vector<uint32_t> Session::ExpectedSum(const std::vector<std::string>& ids) const {
  std::vector<uint32_t> sum(setup_.vector_words(), 0);
  for (const std::string& id : ids) {
    const std::vector<uint32_t> input =
        options_.make_input ? options_.make_input(id) : inputs_.at(id);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += input[i];
  }
  return sum;
}

ServerState Session::Step() {
  if (server_->state() != ServerState::kCollecting) return server_->state();
  const v1::SecAggRound round = server_->round();
  Deliver();
  const auto close_start = std::chrono::steady_clock::now();
  if (server_call_hook) server_call_hook(true);
  const ServerState state = server_->CloseRound();
  if (server_call_hook) server_call_hook(false);
  server_seconds[round] += Seconds(close_start);
  return state;
}

void Session::Deliver(const std::set<std::string>& hold_back) {
  if (server_->state() != ServerState::kCollecting) return;
  held_.clear();
  const v1::SecAggRound round = server_->round();
  auto server_call = [this](auto&& call) {
    if (server_call_hook) server_call_hook(true);
    auto result = call();
    if (server_call_hook) server_call_hook(false);
    return result;
  };
  std::map<std::string, v1::SecAggServerMessage> outgoing = server_->Outgoing();
  for (auto& [id, message] : outgoing) {
    if (options_.to_client) options_.to_client(round, id, message);
    if (record_) delivered_[round][id] = message;
    CompleteCertificates(id, message);
    auto stop = options_.stop_at.find(id);
    if (stop != options_.stop_at.end() && StepIndex(stop->second) <= StepIndex(round)) continue;
    if (!inputs_.contains(id)) continue;  // invited, but not a party of this test

    v1::SecAggClientMessage reply;
    absl::Status status;
    const auto client_start = std::chrono::steady_clock::now();
    if (round == v1::SECAGG_ADVERTISE_KEYS) {
      v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
      auto client =
          SecAggClient::Start(IdentityOf(id), options_.policy, message.setup(),
                              options_.make_input ? options_.make_input(id) : inputs_.at(id),
                              absl::Now(), &reply, &abort);
      if (client.ok()) {
        clients_[id] = *std::move(client);
      } else {
        status = client.status();
        aborts_[id] = abort;
      }
    } else {
      SecAggClient* client = this->client(id);
      if (client == nullptr || client->state() == ClientState::kAborted) continue;
      auto answer = client->Handle(message);
      if (answer.ok()) {
        reply = *std::move(answer);
      } else {
        status = answer.status();
        aborts_[id] = client->abort_reason();
      }
    }
    client_seconds[round] += Seconds(client_start);

    const auto server_start = std::chrono::steady_clock::now();
    if (!status.ok()) {
      // clang before 16 cannot capture a structured binding: capture it by name.
      server_call([&, &id = id] {
        server_->Drop(id, v1::SECAGG_DROP_CLIENT_ABORTED, std::string(status.message()));
        return 0;
      });
    } else if (hold_back.contains(id)) {
      held_[id] = std::move(reply);
    } else {
      if (options_.to_server) options_.to_server(round, id, reply);
      uploaded_[id] += reply.ByteSizeLong();
      if (record_) sent_[round][id] = reply;
      receive_status_[id] = server_call([&, &id = id] { return server_->Receive(id, reply); });
    }
    server_seconds[round] += Seconds(server_start);
  }
}

ServerState Session::Run() {
  while (server_->state() == ServerState::kCollecting) Step();
  return server_->state();
}

}  // namespace tessera::secagg::testing
