// The fixed federation the secure-aggregation fuzz targets run against, loaded once from
// tests/fuzz/data (written by make_corpus): a test CA, four institutions site-00..site-03
// (certificates, and site-00's signing key), the time certificates were checked at, and a
// real session's snapshots — site-00's client after each of its answers and the server at
// each step boundary. Fixed files, so that the seed corpora (messages of that very
// session) stay meaningful from run to run. Test data only: the keys are throwaway.
//
// World() aborts if the files are missing or do not load (a broken checkout, not an input).
// Not thread-safe to create; read-only afterwards.
#ifndef TESSERA_TESTS_FUZZ_SECAGG_WORLD_H_
#define TESSERA_TESTS_FUZZ_SECAGG_WORLD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "crypto/secret.h"
#include "crypto/signature.h"
#include "proto/secagg_state.pb.h"
#include "secagg/client.h"
#include "secagg/server.h"

namespace tessera::fuzz {

inline constexpr int kWorldSites = 4;
// Client snapshots: after Start (kAdvertised), then after each answer up to kCompleted.
inline constexpr int kClientSnapshots = 5;
// Server snapshots: after Create (collecting ADVERTISE_KEYS), then after each CloseRound up
// to collecting UNMASKING.
inline constexpr int kServerSnapshots = 5;

struct SecAggWorld {
  std::string ca_cert_pem;
  std::vector<std::string> ids;            // site-00 .. site-03
  std::unique_ptr<crypto::Signer> signer;  // site-00's
  std::string site00_cert_pem;
  absl::Time now;
  std::vector<crypto::SecretBytes> client_snapshots;       // site-00's, kClientSnapshots
  std::vector<v1::SecAggServerSnapshot> server_snapshots;  // kServerSnapshots

  secagg::ClientIdentity Identity() const;
  secagg::ServerOptions ServerOptions() const;
};

// The directory of the fixed files (the source tree's tests/fuzz/data).
std::string FuzzDataDir();

const SecAggWorld& World();

}  // namespace tessera::fuzz

#endif  // TESSERA_TESTS_FUZZ_SECAGG_WORLD_H_
