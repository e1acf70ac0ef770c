#include "tests/fuzz/secagg_world.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "google/protobuf/stubs/logging.h"

namespace tessera::fuzz {
namespace {

std::string MustRead(const std::string& name) {
  auto bytes = common::ReadFile(absl::StrCat(FuzzDataDir(), "/", name));
  if (!bytes.ok()) {
    std::fprintf(stderr, "fuzz world: %s\n", bytes.status().ToString().c_str());
    std::abort();
  }
  return *std::move(bytes);
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz world: %s\n", what.c_str());
  std::abort();
}

SecAggWorld* Load() {
  // Fuzzed messages make protobuf log every invalid UTF-8 string it parses: noise, and slow.
  google::protobuf::SetLogHandler(nullptr);
  auto world = std::make_unique<SecAggWorld>();
  world->ca_cert_pem = MustRead("ca.crt");
  for (int i = 0; i < kWorldSites; ++i) world->ids.push_back(absl::StrFormat("site-%02d", i));
  world->site00_cert_pem = MustRead("site-00.crt");
  auto signer = crypto::Signer::Create(crypto::SecretBytes(MustRead("site-00.key")));
  if (!signer.ok()) Fail(signer.status().ToString());
  world->signer = std::make_unique<crypto::Signer>(*std::move(signer));
  int64_t seconds = 0;
  if (!absl::SimpleAtoi(MustRead("now"), &seconds)) Fail("data/now is not a number");
  world->now = absl::FromUnixSeconds(seconds);
  for (int k = 0; k < kClientSnapshots; ++k) {
    world->client_snapshots.emplace_back(MustRead(absl::StrCat("client-", k, ".snapshot")));
  }
  for (int k = 0; k < kServerSnapshots; ++k) {
    v1::SecAggServerSnapshot snapshot;
    if (!snapshot.ParseFromString(MustRead(absl::StrCat("server-", k, ".snapshot")))) {
      Fail(absl::StrCat("server-", k, ".snapshot does not parse"));
    }
    world->server_snapshots.push_back(std::move(snapshot));
  }
  return world.release();
}

}  // namespace

std::string FuzzDataDir() { return TESSERA_FUZZ_DATA_DIR; }

secagg::ClientIdentity SecAggWorld::Identity() const {
  secagg::ClientIdentity identity;
  identity.client_id = ids[0];
  identity.certificate_pem = site00_cert_pem;
  identity.signer = signer.get();
  identity.ca_cert_pem = ca_cert_pem;
  return identity;
}

secagg::ServerOptions SecAggWorld::ServerOptions() const {
  secagg::ServerOptions options;
  options.ca_cert_pem = ca_cert_pem;
  options.now = now;
  return options;
}

const SecAggWorld& World() {
  static const SecAggWorld* const world = Load();
  return *world;
}

}  // namespace tessera::fuzz
