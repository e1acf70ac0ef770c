#!/usr/bin/env bash
# What a secure round costs on this machine, with real processes (docs/performance.md):
# builds a Release tree and runs
#   - federation_bench (tests/e2e/federation_bench.cc): a coordinator and N site daemons on
#     loopback, mutual TLS, real stores; the digits MLP 64-1333-10 (d = 99,985) over N
#     sites for two rounds (round time, FIT session time, bytes per site per round over
#     4d, site CPU per session), the same with 64-1000-925-10 (d = 1,000,185) for one
#     round (the coordinator's peak memory), and the demo's logistic regression over three
#     sites for 20 rounds (time in rounds, a site daemon's peak memory), then again on a
#     slow disk (tests/e2e/slow_sync.cc preloaded: every sync waits 2 ms, as a disk
#     without a write cache);
#   - client_bench's MLP 784-128-10 training on Fashion-MNIST (batch 32, one thread);
#   - secagg_bench's scaling in n (tests/secagg/secagg_bench.cc): whole Bonawitz sessions in
#     one process for n = 25..400 sites at d = 10^4 and 10^5, and the exponent b of
#     time ~ n^b for the session, a client and the server, and of the server's memory.
# It prints the machine (cores, CPU, load average before and after each part) and a table.
#
#   bash deploy/bench.sh                 # every row, N = 50
#   bash deploy/bench.sh --sites 100     # the secure rows with 100 sites
#   bash deploy/bench.sh --quick         # a smoke run: 4 sites, small models, a few rounds
#
# Environment: BUILD_DIR (default build-release; configured as Release with benchmarks if
# it has no CMakeCache.txt, else built as it is), JOBS (default: number of cores).
# Exits non-zero if a part fails or prints no figures. Wants an idle machine: every site
# and the coordinator share its cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build-release}"
jobs="${JOBS:-$(nproc)}"
sites=50
quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sites)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -ge 3 ]] || {
        echo "bench.sh: --sites takes a number of sites, at least 3" >&2
        exit 2
      }
      sites="$2"
      shift 2
      ;;
    --quick) quick=1; shift ;;
    *) echo "bench.sh: unknown argument '$1' (--sites N, --quick)" >&2; exit 2 ;;
  esac
done

if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTESSERA_BUILD_BENCHMARKS=ON >/dev/null
fi
cmake --build "$build_dir" -j "$jobs" --target federation_bench client_bench secagg_bench \
  tessera-coordinator tessera-client tessera_slow_sync >/dev/null
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build_dir/CMakeCache.txt")"

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)," \
  "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); build: $build_type" \
  "($build_dir)"

out="$(mktemp)"
trap 'rm -f "$out" "$out.log" "$out.train" "$out.scaling"' EXIT
# One federation_bench scenario with its environment; its BENCH line goes to $out.
federation() {
  local filter="$1"
  shift
  echo "load before $filter ($*): $(load)"
  env "$@" "$build_dir/tests/e2e/federation_bench" --gtest_filter="FederationBench.$filter" \
    >"$out.log" 2>&1 || { cat "$out.log" >&2; echo "bench.sh: $filter failed" >&2; exit 1; }
  grep '^BENCH ' "$out.log" >>"$out" || { echo "bench.sh: $filter printed no figures" >&2; exit 1; }
  echo "load after: $(load)"
}
# The logistic regression on a slow disk: its BENCH line tagged logistic_slow_disk.
slow_disk() {
  local preload="$build_dir/tests/e2e/libtessera_slow_sync.so"
  [[ -f "$preload" ]] || { echo "bench.sh: $preload was not built" >&2; exit 1; }
  federation LogisticRegressionRounds "$@" TESSERA_SLOW_SYNC_US=2000 LD_PRELOAD="$preload"
  sed -i '$ s/ scenario=logistic / scenario=logistic_slow_disk /' "$out"
}

if [[ $quick == 1 ]]; then
  federation SecureRoundsDigitsMlp TESSERA_BENCH_SITES=4 TESSERA_BENCH_HIDDEN=32 \
    TESSERA_BENCH_ROUNDS=1
  federation LogisticRegressionRounds TESSERA_BENCH_LR_ROUNDS=3
  slow_disk TESSERA_BENCH_LR_ROUNDS=3
  training_filter='BM_TrainMlpFashionMnist/0'
  training_time='--benchmark_min_time=0.1'
  scaling_n=10,20,40
  scaling_d=1000
else
  # Three rounds: round 1 is a plain fit, round 2 the steady state (one fit_evaluate
  # session), round 3 adds the last model's own evaluation; round_median_s is round 2's.
  federation SecureRoundsDigitsMlp TESSERA_BENCH_SITES="$sites" TESSERA_BENCH_HIDDEN=1333 \
    TESSERA_BENCH_ROUNDS=3
  federation SecureRoundsDigitsMlp TESSERA_BENCH_SITES="$sites" TESSERA_BENCH_HIDDEN=1000 \
    TESSERA_BENCH_HIDDEN2=925 TESSERA_BENCH_ROUNDS=1
  federation LogisticRegressionRounds TESSERA_BENCH_LR_ROUNDS=20
  slow_disk TESSERA_BENCH_LR_ROUNDS=20
  training_filter='BM_TrainMlpFashionMnist/0'
  training_time='--benchmark_min_time=2'
  scaling_n=25,50,100,200,400
  scaling_d=10000,100000
fi

echo "load before local training: $(load)"
"$build_dir/tests/client/client_bench" --benchmark_filter="$training_filter" "$training_time" \
  --benchmark_format=csv >"$out.train" 2>"$out.log" || {
  cat "$out.log" >&2
  echo "bench.sh: client_bench failed" >&2
  exit 1
}
echo "load after: $(load)"
# CSV: name,iterations,real_time,cpu_time,time_unit,bytes_per_second,items_per_second,...
samples="$(awk -F, '/^"BM_TrainMlpFashionMnist/ {printf "%.0f", $7}' "$out.train")"
[[ -n "$samples" ]] || { echo "bench.sh: no training figure (Fashion-MNIST missing?)" >&2; exit 1; }

echo "load before secure-aggregation scaling: $(load)"
TESSERA_SECAGG_SCALING="$scaling_n" TESSERA_SECAGG_SCALING_D="$scaling_d" \
  "$build_dir/tests/secagg/secagg_bench" --benchmark_filter=BM_Session >"$out.scaling" \
  2>"$out.log" || {
  cat "$out.log" >&2
  echo "bench.sh: secagg_bench failed" >&2
  exit 1
}
echo "load after: $(load)"
grep -q '^| [0-9]* | [0-9.]*\.\.' "$out.scaling" || {
  echo "bench.sh: secagg_bench printed no scaling exponents" >&2
  exit 1
}

# The table: one row per figure, from the BENCH lines.
/usr/bin/python3 - "$out" "$samples" <<'EOF'
import shlex, sys
rows = []
for line in open(sys.argv[1]):
    fields = dict(w.split("=", 1) for w in shlex.split(line)[1:])
    rows.append(fields)
secure = [r for r in rows if r["scenario"] == "secure-mlp"]
logistic = [r for r in rows if r["scenario"] == "logistic"]
slow_disk = [r for r in rows if r["scenario"] == "logistic_slow_disk"]
print()
print("| measure | value |")
print("|---|---|")
for r in secure:
    n, d = r["sites"], r["d"]
    print(f"| secure round, n={n}, d={d} ({r['what']}): round time | {r['round_s']} s, "
          f"median {r['round_median_s']} s (FIT session {r['fit_session_s']} s) |")
    print(f"| bytes per site per round / 4d, n={n}, d={d} | {r['bytes_over_4d']} "
          f"(up {r['up_over_4d']}, down {r['down_over_4d']}) |")
    later = (f"{r['site_cpu_ms_per_later_session']} ms" if int(r["rounds"]) > 1
             else "one round only")
    print(f"| site daemon CPU per secure session, n={n}, d={d} (training included) | "
          f"{r['site_cpu_ms_per_session']} ms (after round 1: {later}) |")
    print(f"| coordinator peak RSS, n={n}, d={d} | {r['coordinator_peak_mib']} MiB |")
for r in logistic:
    print(f"| {r['rounds']}-round logistic regression, {r['sites']} sites: time in rounds | "
          f"{r['rounds_total_s']} s (median round {r['round_median_s']} s) |")
    print(f"| site daemon peak RSS, logistic regression | {r['site_peak_mib']} MiB |")
for r in slow_disk:
    print(f"| the same on a slow disk (every sync 2 ms): time in rounds | "
          f"{r['rounds_total_s']} s (median round {r['round_median_s']} s) |")
print(f"| MLP 784-128-10 local training, batch 32, 1 thread | {int(sys.argv[2]):,} samples/s |")
EOF
echo
echo "Secure aggregation alone (secagg_bench, in one process), by n:"
# From the sessions' table (its header starts "| n | k | d |") to the exponents.
scaling_table="$(sed -n '/^| n | k | d |/,$p' "$out.scaling")"
[[ -n "$scaling_table" ]] || {
  echo "bench.sh: secagg_bench printed no sessions table" >&2
  exit 1
}
echo "$scaling_table"
echo "bench.sh: done"
