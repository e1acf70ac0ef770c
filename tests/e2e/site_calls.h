// Calls a test makes as a site on a coordinator's Federation service, by hand: for tests that
// play a site without running its daemon.
#ifndef TESSERA_TESTS_E2E_SITE_CALLS_H_
#define TESSERA_TESTS_E2E_SITE_CALLS_H_

#include <cstddef>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/federation.grpc.pb.h"

namespace tessera::e2e {

// Hello as the daemon `instance` (in the request and in the "tessera-instance" metadata, as
// the daemon sends it on every call), with a 20-s deadline; the coordinator's answer goes to
// `welcome` if given.
inline grpc::Status SiteHello(v1::Federation::Stub* stub, const std::string& instance,
                              v1::HelloResponse* welcome = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  context.AddMetadata("tessera-instance", instance);
  v1::HelloRequest request;
  request.set_instance_id(instance);
  v1::HelloResponse response;
  return stub->Hello(&context, request, welcome != nullptr ? welcome : &response);
}

// A masked-input answer of `bytes` bytes for work nobody was given, serialized: it parses,
// and the coordinator's answer names its work id.
inline std::string MaskedAnswer(const std::string& work_id, size_t bytes) {
  v1::PushResultRequest answer;
  answer.set_work_id(work_id);
  answer.mutable_secagg()->mutable_masked_input()->set_masked_input(std::string(bytes, 'M'));
  return answer.SerializeAsString();
}

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_SITE_CALLS_H_
