// secagg_bench: what secure aggregation costs. Whole sessions in process (real
// certificates, signatures, X25519, AES-GCM shares, AES-CTR masks) for n clients and d
// words, with 0% or 10% of the clients dropping after sharing their keys (before their
// masked input: the expensive case for the server, which must then rebuild and expand
// every pairwise mask between a dropped client and each survivor). Reported per
// configuration, from a single run (iterations 1; the large cases take seconds):
//   - client time per round, averaged over the clients that took part in it;
//   - server time per round (Receive of every answer + CloseRound);
//   - the mask-expansion limit measured in the same run: AES-128-CTR keystream plus the
//     word-wise add, one stream, ns per word; and how far the client's masking round and
//     the server's unmasking round are from (streams x d x limit);
//   - bytes uploaded per client (serialized size of every message it sent) / (4 d);
//   - BM_ServerSnapshot: the server's durable snapshot after the masked inputs (what the
//     coordinator writes at that step boundary), time to take and serialise it, and its size;
//   - the server's peak memory: the largest number of bytes live at once that were
//     allocated inside server calls (Create, Receive, Drop, CloseRound), counted by a
//     global operator new/delete that tags each allocation with whether it was made by the
//     server. This isolates the server from the n in-process clients (which hold n input
//     vectors), which a process-wide figure such as VmHWM could not. Allocations OpenSSL
//     makes with malloc (cipher contexts, a few hundred bytes each) are not counted.
//
// Google Benchmark runs the mask-expansion micro-benchmarks and one entry per session
// configuration (manual time = the whole session); a Markdown table of every figure
// follows. --benchmark_filter selects configurations as usual, e.g. 'n:10/'.
//
// Scaling in n: TESSERA_SECAGG_SCALING=25,50,100,200,400 (and TESSERA_SECAGG_SCALING_D=
// 10000,100000; default 10000) runs sessions without dropouts for those n and d instead
// of the grid, and prints, for each d, the least-squares exponent b of y ~ n^b for the
// session's time, a client's time per session, the server's time and its peak memory.
// TESSERA_SECAGG_SPARSE=gamma (e.g. 0.05) makes every session SecAgg+ with the graph
// SparseSetup(n, gamma, gamma, 40, 30) gives (full Bonawitz where it gives none); the
// table's k column says which (n - 1: the complete graph).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "benchmark/benchmark.h"
#include "crypto/mask_generator.h"
#include "crypto/quantizer.h"
#include "crypto/random.h"
#include "proto/deterministic.h"
#include "proto/secagg_state.pb.h"
#include "secagg/client.h"
#include "secagg/internal/wire.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "tests/secagg/secagg_harness.h"

// ---- allocation accounting ----

namespace {

struct alignas(16) AllocationHeader {
  size_t size;
  bool server;
};
static_assert(sizeof(AllocationHeader) == 16);

std::atomic<int64_t> g_server_live{0};
std::atomic<int64_t> g_server_peak{0};
thread_local bool t_in_server = false;

void* Allocate(size_t size) {
  auto* header = static_cast<AllocationHeader*>(std::malloc(size + sizeof(AllocationHeader)));
  if (header == nullptr) std::abort();
  header->size = size;
  header->server = t_in_server;
  if (t_in_server) {
    const int64_t live = g_server_live.fetch_add(static_cast<int64_t>(size)) + size;
    int64_t peak = g_server_peak.load();
    while (live > peak && !g_server_peak.compare_exchange_weak(peak, live)) {
    }
  }
  return header + 1;
}

void Deallocate(void* p) {
  if (p == nullptr) return;
  auto* header = static_cast<AllocationHeader*>(p) - 1;
  if (header->server) g_server_live.fetch_sub(static_cast<int64_t>(header->size));
  std::free(header);
}

}  // namespace

void* operator new(size_t size) { return Allocate(size); }
void* operator new[](size_t size) { return Allocate(size); }
void operator delete(void* p) noexcept { Deallocate(p); }
void operator delete[](void* p) noexcept { Deallocate(p); }
void operator delete(void* p, size_t) noexcept { Deallocate(p); }
void operator delete[](void* p, size_t) noexcept { Deallocate(p); }

namespace tessera::secagg {

using crypto::MaskGenerator;
using crypto::RandomBytes;
namespace {

using testing::Federation;
using testing::MakeSetup;
using testing::Session;
using testing::SessionOptions;

constexpr v1::SecAggRound kRounds[] = {v1::SECAGG_ADVERTISE_KEYS,    v1::SECAGG_REVEAL_COINS,
                                       v1::SECAGG_SHARE_KEYS,        v1::SECAGG_MASKED_INPUT,
                                       v1::SECAGG_CONSISTENCY_CHECK, v1::SECAGG_UNMASKING};

// TESSERA_SECAGG_SPARSE=gamma: SecAgg+ sessions, with the graph SparseSetup(n, gamma,
// gamma, 40, 30) gives (full Bonawitz where it gives none); unset: full Bonawitz.
double g_sparse_gamma = 0;

// The largest n registered (RegisterSessions sets it before the first session).
int g_max_n = 100;

Federation& SharedFederation() {
  static Federation* federation = [] {
    auto created = Federation::Create(g_max_n);
    if (!created.ok()) {
      std::fprintf(stderr, "cannot make the test federation: %s\n",
                   std::string(created.status().message()).c_str());
      std::abort();
    }
    return created->release();
  }();
  return *federation;
}

// ---- the mask-expansion limit ----

double g_limit_ns_per_word = 0;

void BM_MaskExpansion(benchmark::State& state) {
  auto key = RandomBytes(MaskGenerator::kKeyBytes);
  auto generator = MaskGenerator::Create(*key);
  std::vector<uint32_t> acc(static_cast<size_t>(state.range(0)), 1);
  for (auto _ : state) {
    generator->AddTo(0, acc);
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MaskExpansion)->Arg(1 << 16)->Arg(1000000);

// The little-endian word encoding every masked input, sum and stored input goes through
// (secagg/internal/wire.h): to bytes and back, 10^6 words (4 MB).
void BM_WordsToBytes(benchmark::State& state) {
  std::vector<uint32_t> words(static_cast<size_t>(state.range(0)), 0x01020304u);
  for (auto _ : state) {
    std::string bytes = internal::WordsToBytes(words);
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * 4);
}
BENCHMARK(BM_WordsToBytes)->Arg(1000000);

void BM_BytesToWords(benchmark::State& state) {
  const std::string bytes(static_cast<size_t>(state.range(0)) * 4, '\x5a');
  std::vector<uint32_t> words(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    internal::BytesToWords(bytes, words);
    benchmark::DoNotOptimize(words.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * 4);
}
BENCHMARK(BM_BytesToWords)->Arg(1000000);

void BM_AddBytesAsWords(benchmark::State& state) {
  const std::string bytes(static_cast<size_t>(state.range(0)) * 4, '\x5a');
  std::vector<uint32_t> sum(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    internal::AddBytesAsWords(bytes, sum);
    benchmark::DoNotOptimize(sum.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * 4);
}
BENCHMARK(BM_AddBytesAsWords)->Arg(1000000);

// Measured directly as well (the table needs the number): best of 5 over 10^6 words.
double MeasureLimit() {
  auto key = RandomBytes(MaskGenerator::kKeyBytes);
  auto generator = MaskGenerator::Create(*key);
  std::vector<uint32_t> acc(1000000, 1);
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    generator->AddTo(0, acc);
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, ns / acc.size());
  }
  benchmark::DoNotOptimize(acc.data());
  return best;
}

// ---- sessions ----

struct Result {
  int n = 0;
  int d = 0;
  int k = 0;  // neighbours: n - 1 for full Bonawitz
  int dropped = 0;
  int threads = 1;
  bool ok = false;
  double session_s = 0;
  std::map<v1::SecAggRound, double> client_ms;  // per participating client
  std::map<v1::SecAggRound, double> server_ms;
  double upload_ratio = 0;  // mean over survivors
  double server_peak_mb = 0;
  size_t server_streams = 0;  // mask streams expanded when unmasking
};
std::vector<Result> g_results;

Result RunSession(int n, int d, int dropped, int threads) {
  Federation& federation = SharedFederation();
  std::vector<std::string> ids(federation.ids().begin(), federation.ids().begin() + n);
  const uint32_t threshold = DefaultThreshold(n);
  SessionOptions options;
  options.unmasking_threads = threads;
  // Drop the last `dropped` clients after they shared their keys.
  for (int i = n - dropped; i < n; ++i) options.stop_at[ids[i]] = v1::SECAGG_MASKED_INPUT;
  options.make_input = [d](const std::string& id) {
    // Client k contributes k+1 in every word: the sum is easy to check.
    const uint32_t k = static_cast<uint32_t>(std::stoul(id.substr(5)));
    return std::vector<uint32_t>(d, k + 1);
  };
  std::map<std::string, std::vector<uint32_t>> inputs;
  for (const std::string& id : ids) inputs[id];
  v1::SecAggSetup setup = MakeSetup(ids, threshold, d);
  Result result;
  result.k = n - 1;
  if (g_sparse_gamma > 0) {
    absl::StatusOr<std::optional<v1::SecAggSparse>> sparse =
        SparseSetup(n, g_sparse_gamma, g_sparse_gamma, 40, 30);
    if (sparse.ok() && sparse->has_value()) {
      *setup.mutable_sparse() = **sparse;
      result.k = static_cast<int>((*sparse)->neighbours());
    }
  }
  Session session(federation, setup, std::move(inputs), options);
  session.set_record_messages(false);
  session.server_call_hook = [](bool entering) { t_in_server = entering; };

  result.n = n;
  result.d = d;
  result.dropped = dropped;
  result.threads = threads;
  g_server_peak = g_server_live.load();
  const int64_t base = g_server_live.load();
  const auto start = std::chrono::steady_clock::now();
  if (absl::Status init = session.Init(); !init.ok()) {
    std::fprintf(stderr, "n=%d d=%d: session set-up failed: %s\n", n, d,
                 std::string(init.message()).c_str());
    return result;
  }
  const ServerState state = session.Run();
  result.session_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.server_peak_mb = static_cast<double>(g_server_peak.load() - base) / (1 << 20);

  uint32_t want = 0;
  for (int i = 0; i < n - dropped; ++i) want += static_cast<uint32_t>(i + 1);
  result.ok =
      state == ServerState::kCompleted && session.server().sum() == std::vector<uint32_t>(d, want);
  if (!result.ok) {
    std::fprintf(stderr, "n=%d d=%d: session failed: %s\n", n, d,
                 session.server().abort_detail().c_str());
  }
  const int survivors = n - dropped;
  for (v1::SecAggRound round : kRounds) {
    const int participants = StepIndex(round) <= StepIndex(v1::SECAGG_MASKED_INPUT) ? n : survivors;
    result.client_ms[round] = 1e3 * session.client_seconds[round] / participants;
    result.server_ms[round] = 1e3 * session.server_seconds[round];
  }
  double upload = 0;
  for (int i = 0; i < survivors; ++i) upload += session.uploaded_bytes().at(ids[i]);
  result.upload_ratio = upload / survivors / (4.0 * d);
  // Each dropped client's pairwise masks with its surviving neighbours (at most k).
  result.server_streams =
      survivors + static_cast<size_t>(std::min(survivors, result.k)) * static_cast<size_t>(dropped);
  return result;
}

void BM_Session(benchmark::State& state, int n, int d, int dropped, int threads) {
  Result result;
  for (auto _ : state) {
    result = RunSession(n, d, dropped, threads);
    state.SetIterationTime(result.session_s);
  }
  if (!result.ok) state.SkipWithError("session failed");
  state.counters["client_masked_ms"] = result.client_ms[v1::SECAGG_MASKED_INPUT];
  state.counters["server_unmask_ms"] = result.server_ms[v1::SECAGG_UNMASKING];
  state.counters["upload_x"] = result.upload_ratio;
  state.counters["server_peak_MB"] = result.server_peak_mb;
  g_results.push_back(result);
}

void Register(int n, int d, int dropped, int percent, int threads) {
  benchmark::RegisterBenchmark(
      absl::StrFormat("BM_Session/n:%d/d:%d/drop:%d%%/threads:%d", n, d, percent, threads).c_str(),
      [n, d, dropped, threads](benchmark::State& state) {
        BM_Session(state, n, d, dropped, threads);
      })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

// A comma-separated list of integers >= 3 from the environment variable `name`; empty if
// it is unset. Exits naming the variable on anything else.
std::vector<int> ListFromEnv(const char* name) {
  std::vector<int> values;
  const char* text = std::getenv(name);
  if (text == nullptr) return values;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < 3) {
      std::fprintf(stderr, "%s: \"%s\" is not a list of integers >= 3\n", name, text);
      std::exit(2);
    }
    values.push_back(value);
  }
  return values;
}

// TESSERA_SECAGG_SCALING=n1,n2,... (and TESSERA_SECAGG_SCALING_D=d1,..., default 10000):
// sessions without dropouts for each n and d instead of the usual grid, and the scaling
// exponents in n printed after the table.
std::vector<int> g_scaling_n;
std::vector<int> g_scaling_d;

void RegisterSessions() {
  if (const char* gamma = std::getenv("TESSERA_SECAGG_SPARSE"); gamma != nullptr) {
    if (!absl::SimpleAtod(gamma, &g_sparse_gamma) ||
        !(g_sparse_gamma > 0 && g_sparse_gamma < 0.3)) {
      std::fprintf(stderr, "TESSERA_SECAGG_SPARSE: \"%s\" is not a fraction in (0, 0.3)\n", gamma);
      std::exit(2);
    }
  }
  g_scaling_n = ListFromEnv("TESSERA_SECAGG_SCALING");
  if (!g_scaling_n.empty()) {
    g_scaling_d = ListFromEnv("TESSERA_SECAGG_SCALING_D");
    if (g_scaling_d.empty()) g_scaling_d = {10000};
    for (int d : g_scaling_d) {
      for (int n : g_scaling_n) {
        g_max_n = std::max(g_max_n, n);
        Register(n, d, 0, 0, 1);
      }
    }
    return;
  }
  for (int n : {10, 50, 100}) {
    for (int d : {10000, 100000, 1000000}) {
      for (int percent : {0, 10}) {
        const int dropped = n * percent / 100;
        Register(n, d, dropped, percent, 1);
      }
    }
  }
  // The expensive case again with the unmasking split over two threads.
  Register(100, 1000000, 10, 10, 2);
}

// ---- durable sessions ----

// The server's snapshot after the masked inputs (the running sum, every share and
// ciphertext): what the coordinator writes, synced, at that step boundary
// (coordinator/secure_stage.h). Snapshot() plus its deterministic serialisation, per
// call; bytes as a counter.
void BM_ServerSnapshot(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int d = static_cast<int>(state.range(1));
  Federation& federation = SharedFederation();
  std::vector<std::string> ids(federation.ids().begin(), federation.ids().begin() + n);
  SessionOptions options;
  options.make_input = [d](const std::string&) { return std::vector<uint32_t>(d, 1); };
  std::map<std::string, std::vector<uint32_t>> inputs;
  for (const std::string& id : ids) inputs[id];
  Session session(federation, MakeSetup(ids, DefaultThreshold(n), d), std::move(inputs), options);
  session.set_record_messages(false);
  if (!session.Init().ok()) {
    state.SkipWithError("init failed");
    return;
  }
  for (int step = 0; step < 3; ++step) session.Step();  // advertise, share, masked input
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<v1::SecAggServerSnapshot> snapshot = session.server().Snapshot();
    if (!snapshot.ok()) {
      state.SkipWithError("snapshot failed");
      return;
    }
    absl::StatusOr<std::string> serialized =
        proto::DeterministicBytes(*snapshot, "the server's snapshot");
    if (!serialized.ok()) {
      state.SkipWithError("serialisation failed");
      return;
    }
    bytes = serialized->size();
    benchmark::DoNotOptimize(serialized->data());
  }
  state.counters["snapshot_MB"] = static_cast<double>(bytes) / (1 << 20);
}
BENCHMARK(BM_ServerSnapshot)
    ->Args({10, 1000000})
    ->Args({100, 10000})
    ->Args({100, 1000000})
    ->Unit(benchmark::kMillisecond);

void PrintTable(double limit) {
  std::printf("\nmask-expansion limit (AES-128-CTR keystream + add, one stream): %.3f ns/word\n",
              limit);
  std::printf(
      "\n| n | k | d | dropped | unmask threads | session s | client ms/round: adv / coins / share "
      "/ "
      "masked / consist / unmask | client masked vs limit | server ms/round: adv / coins / share / "
      "masked / consist / unmask | server unmask vs limit | upload / 4d | server peak MB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Result& r : g_results) {
    if (r.client_ms.empty()) {  // the session could not start (its error is on stderr)
      std::printf("| %d | %d | %d | %d (FAILED) | %d | | | | | | | |\n", r.n, r.k, r.d, r.dropped,
                  r.threads);
      continue;
    }
    // Client: one self mask + k pairwise masks over d words.
    const double client_limit_ms = (r.k + 1) * static_cast<double>(r.d) * limit * 1e-6;
    const double server_limit_ms = r.server_streams * static_cast<double>(r.d) * limit * 1e-6;
    std::printf(
        "| %d | %d | %d | %d%s | %d | %.2f | %.1f / %.1f / %.1f / %.1f / %.2f / %.2f | %.2fx | "
        "%.1f / %.1f / %.1f / %.1f / %.1f / %.1f | %.2fx | %.4f | %.1f |\n",
        r.n, r.k, r.d, r.dropped, r.ok ? "" : " (FAILED)", r.threads, r.session_s,
        r.client_ms.at(v1::SECAGG_ADVERTISE_KEYS), r.client_ms.at(v1::SECAGG_REVEAL_COINS),
        r.client_ms.at(v1::SECAGG_SHARE_KEYS), r.client_ms.at(v1::SECAGG_MASKED_INPUT),
        r.client_ms.at(v1::SECAGG_CONSISTENCY_CHECK), r.client_ms.at(v1::SECAGG_UNMASKING),
        r.client_ms.at(v1::SECAGG_MASKED_INPUT) / client_limit_ms,
        r.server_ms.at(v1::SECAGG_ADVERTISE_KEYS), r.server_ms.at(v1::SECAGG_REVEAL_COINS),
        r.server_ms.at(v1::SECAGG_SHARE_KEYS), r.server_ms.at(v1::SECAGG_MASKED_INPUT),
        r.server_ms.at(v1::SECAGG_CONSISTENCY_CHECK), r.server_ms.at(v1::SECAGG_UNMASKING),
        r.server_ms.at(v1::SECAGG_UNMASKING) / server_limit_ms, r.upload_ratio, r.server_peak_mb);
  }
}

// The least-squares slope of log(y) against log(x): the exponent b of y ~ x^b.
double Exponent(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mx += std::log(x[i]);
    my += std::log(y[i]);
  }
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(y.size());
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
    sxx += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
  }
  return sxx > 0 ? sxy / sxx : 0;
}

void PrintScaling() {
  if (g_scaling_n.size() < 2) return;
  std::printf(
      "\n| d | n | exponent in n: session time | a client's time per session | the server's time "
      "per session | server peak memory |\n|---|---|---|---|---|---|\n");
  for (int d : g_scaling_d) {
    std::vector<double> n, session, client, server, peak;
    for (const Result& r : g_results) {
      if (r.d != d || !r.ok) continue;
      double c = 0, sv = 0;
      for (v1::SecAggRound round : kRounds) {
        c += r.client_ms.at(round);
        sv += r.server_ms.at(round);
      }
      n.push_back(r.n);
      session.push_back(r.session_s);
      client.push_back(c);
      server.push_back(sv);
      peak.push_back(std::max(r.server_peak_mb, 1e-3));
    }
    if (n.size() < 2) continue;
    std::printf("| %d | %g..%g | %.2f | %.2f | %.2f | %.2f |\n", d, n.front(), n.back(),
                Exponent(n, session), Exponent(n, client), Exponent(n, server), Exponent(n, peak));
  }
}

}  // namespace
}  // namespace tessera::secagg

int main(int argc, char** argv) {
  using namespace tessera::secagg;
  RegisterSessions();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_limit_ns_per_word = MeasureLimit();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintTable(g_limit_ns_per_word);
  PrintScaling();
  return 0;
}
