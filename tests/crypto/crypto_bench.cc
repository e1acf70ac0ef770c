// Benchmarks of the secure-aggregation primitives. Build Release and run:
//   crypto_bench --benchmark_counters_tabular=true
// "per_word" / "per_coord" counters are the time per mask word or per coordinate.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/key_agreement.h"
#include "crypto/mask_generator.h"
#include "crypto/pki.h"
#include "crypto/quantizer.h"
#include "crypto/random.h"
#include "crypto/shamir.h"
#include "crypto/signature.h"

namespace tessera::crypto {
namespace {

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "benchmark set-up failed: %s\n", v.status().ToString().c_str());
    std::abort();
  }
  return std::move(v).value();
}

void PerItem(benchmark::State& state, int64_t items, const char* name) {
  state.SetItemsProcessed(state.iterations() * items);
  state.counters[name] =
      benchmark::Counter(static_cast<double>(items), benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}

MaskGenerator Generator() {
  return OrDie(MaskGenerator::Create(OrDie(RandomBytes(MaskGenerator::kKeyBytes))));
}

void BM_MaskGenerate(benchmark::State& state) {
  const MaskGenerator gen = Generator();
  std::vector<uint32_t> out(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    gen.Generate(0, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  PerItem(state, state.range(0), "per_word");
}
BENCHMARK(BM_MaskGenerate)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

void BM_MaskAddTo(benchmark::State& state) {
  const MaskGenerator gen = Generator();
  std::vector<uint32_t> acc(static_cast<size_t>(state.range(0)), 1);
  for (auto _ : state) {
    gen.AddTo(0, acc);
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  PerItem(state, state.range(0), "per_word");
}
BENCHMARK(BM_MaskAddTo)->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

// A client's masking: its self mask plus n - 1 pairwise masks over a d-word vector
// (here n = 10 parties, d = 10^5).
void BM_MaskClientVector(benchmark::State& state) {
  const int masks = static_cast<int>(state.range(0));
  std::vector<MaskGenerator> gens;
  gens.reserve(static_cast<size_t>(masks));
  for (int i = 0; i < masks; ++i) gens.push_back(Generator());
  std::vector<uint32_t> acc(static_cast<size_t>(state.range(1)), 1);
  for (auto _ : state) {
    for (int i = 0; i < masks; ++i) {
      if (i % 2 == 0) {
        gens[i].AddTo(0, acc);
      } else {
        gens[i].SubtractFrom(0, acc);
      }
    }
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  PerItem(state, state.range(0) * state.range(1), "per_word");
}
BENCHMARK(BM_MaskClientVector)->Args({10, 100'000});

void BM_X25519Generate(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(X25519PrivateKey::Generate()));
}
BENCHMARK(BM_X25519Generate);

void BM_X25519Agree(benchmark::State& state) {
  const X25519PrivateKey a = OrDie(X25519PrivateKey::Generate());
  const X25519PrivateKey b = OrDie(X25519PrivateKey::Generate());
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(a.Agree(b.public_key())));
}
BENCHMARK(BM_X25519Agree);

void BM_HkdfSha256(benchmark::State& state) {
  const SecretBytes ikm = OrDie(RandomBytes(32));
  for (auto _ : state) {
    benchmark::DoNotOptimize(OrDie(HkdfSha256(ikm, "tessera", "mask", 16)));
  }
}
BENCHMARK(BM_HkdfSha256);

void BM_AesGcmEncryptShare(benchmark::State& state) {
  const AesGcm256 aead = OrDie(AesGcm256::Create(OrDie(RandomBytes(32))));
  const std::string share(kShamirShareBytes * 2, 's');  // two shares per recipient
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(aead.Encrypt(share, "ad")));
}
BENCHMARK(BM_AesGcmEncryptShare);

void BM_AesGcmDecryptShare(benchmark::State& state) {
  const AesGcm256 aead = OrDie(AesGcm256::Create(OrDie(RandomBytes(32))));
  const std::string sealed = OrDie(aead.Encrypt(std::string(kShamirShareBytes * 2, 's'), "ad"));
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(aead.Decrypt(sealed, "ad")));
}
BENCHMARK(BM_AesGcmDecryptShare);

struct EcdsaKeys {
  Signer signer;
  Verifier verifier;
};

EcdsaKeys MakeEcdsaKeys() {
  // A self-signed CA certificate is the quickest P-256 key with a certificate.
  CertificateAuthority ca = OrDie(CreateCertificateAuthority("bench", 1, absl::Now()));
  return {OrDie(Signer::Create(ca.key_pem)), OrDie(Verifier::Create(ca.cert_pem))};
}

void BM_EcdsaSign(benchmark::State& state) {
  const EcdsaKeys keys = MakeEcdsaKeys();
  const std::string message(200, 'm');
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(keys.signer.Sign(message)));
}
BENCHMARK(BM_EcdsaSign);

void BM_EcdsaVerify(benchmark::State& state) {
  const EcdsaKeys keys = MakeEcdsaKeys();
  const std::string message(200, 'm');
  const std::string signature = OrDie(keys.signer.Sign(message));
  for (auto _ : state) {
    const absl::Status status = keys.verifier.Verify(message, signature);
    if (!status.ok()) std::abort();
  }
}
BENCHMARK(BM_EcdsaVerify);

void BM_ShamirSplit(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int t = static_cast<int>(state.range(1));
  const SecretBytes secret = OrDie(RandomBytes(kShamirSecretBytes));
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(ShamirSplit(secret, t, n)));
}
BENCHMARK(BM_ShamirSplit)->Args({100, 67})->Args({10, 7});

void BM_ShamirCombine(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int t = static_cast<int>(state.range(1));
  const SecretBytes secret = OrDie(RandomBytes(kShamirSecretBytes));
  std::vector<ShamirShare> shares = OrDie(ShamirSplit(secret, t, n));
  std::reverse(shares.begin(), shares.end());
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(ShamirCombine(shares, t)));
}
BENCHMARK(BM_ShamirCombine)->Args({100, 67})->Args({10, 7});

void BM_Quantize(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> dist(-1.5, 1.5);
  std::vector<double> values(n);
  std::vector<uint32_t> random(n);
  for (size_t i = 0; i < n; ++i) {
    values[i] = dist(rng);
    random[i] = rng();
  }
  std::vector<uint32_t> out(n);
  const QuantizationSpec spec{.bits = 24, .bound = 1.0};
  for (auto _ : state) {
    Quantize(values, spec, random, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  PerItem(state, state.range(0), "per_coord");
}
BENCHMARK(BM_Quantize)->Arg(1'000'000);

void BM_Dequantize(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::mt19937 rng(2);
  std::vector<uint32_t> words(n);
  for (uint32_t& w : words) w = rng();
  std::vector<double> out(n);
  const QuantizationSpec spec{.bits = 24, .bound = 1.0};
  for (auto _ : state) {
    Dequantize(words, spec, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  PerItem(state, state.range(0), "per_coord");
}
BENCHMARK(BM_Dequantize)->Arg(1'000'000);

}  // namespace
}  // namespace tessera::crypto

BENCHMARK_MAIN();
