#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang-14, ASan and UBSan in their own
# build directory, then runs every target for SECONDS seconds (default 60), one after the
# other, each on a scratch copy of its seed corpus and regression inputs (the repository's
# corpora are never changed). Prints, per target, the executions, executions per second,
# the size of the corpus at the end and the findings (crash, leak, timeout or out-of-memory
# inputs, kept under BUILD_DIR/findings/<target>/). Leaks are checked after the run, once
# per input of the final corpus. Exits 1 if any target found something.
#   bash deploy/fuzz.sh [SECONDS] [TARGET...]      e.g. bash deploy/fuzz.sh 10
# TARGET: names as in tests/fuzz/CMakeLists.txt (csv, secagg_client, ...); default all.
# Environment: BUILD_DIR (default: build-fuzz), JOBS (default: number of cores),
# FUZZ_CORPUS_DIR (default: none): a folder that keeps each target's corpus from one run to
# the next (FUZZ_CORPUS_DIR/<target>/): a run starts from it as well as from the seeds, and
# leaves its final corpus there, so that runs add up as on a fuzzing service.
# Needs clang-14 and libclang-rt-14-dev (deploy/install-deps.sh installs them).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
build_dir="${BUILD_DIR:-$root/build-fuzz}"
jobs="${JOBS:-$(nproc)}"
keep="${FUZZ_CORPUS_DIR:-}"
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;; esac

CXX=clang++-14 CC=clang-14 cmake -S "$root" -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_FUZZ=ON -DTESSERA_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs" --target tessera_fuzzers

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd "$build_dir/tests/fuzz" && ls fuzz_* | sed 's/^fuzz_//' | sort)
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
printf '%-18s %12s %9s %8s %8s %9s\n' target executions exec/s seconds corpus findings
for target in "${targets[@]}"; do
  binary="$build_dir/tests/fuzz/fuzz_$target"
  [ -x "$binary" ] || { echo "fuzz.sh: no fuzz target '$target'" >&2; exit 2; }
  work="$scratch/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$root/tests/fuzz/corpus/$target"/* "$work/corpus/"
  if [ -d "$root/tests/fuzz/regressions/$target" ]; then
    cp "$root/tests/fuzz/regressions/$target"/* "$work/corpus/"
  fi
  if [ -n "$keep" ] && [ -d "$keep/$target" ]; then
    cp -r "$keep/$target/." "$work/corpus/"
  fi
  status=0
  extra=()
  case "$target" in
    # About 20,000 coverage features: libFuzzer's entropic schedule looks each feature of
    # each input up in its list of rare ones, 41 % of this target's time (docs/fuzzing.md).
    secagg_server) extra+=(-entropic=0) ;;
  esac
  # Leaks are looked for in a second pass over the corpus, not after every input: with
  # libFuzzer's per-input check, an input that leaves memory in a cache (OpenSSL's, the
  # certificate memo's) costs a full LeakSanitizer scan, 90 % of the time of the PEM and
  # secure-aggregation targets (docs/fuzzing.md, "Leaks").
  "$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -detect_leaks=0 "${extra[@]}" -artifact_prefix="$work/artifacts/" "$work/corpus" \
    >"$work/log" 2>&1 ||
    status=$?
  if [ "$status" -eq 0 ]; then
    "$binary" -runs=0 -timeout=30 -rss_limit_mb=2048 -detect_leaks=1 \
      -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/leaks.log" 2>&1 || status=$?
    cat "$work/leaks.log" >>"$work/log"
  fi
  if [ -n "$keep" ]; then
    rm -rf "$keep/$target"
    mkdir -p "$keep/$target"
    cp -r "$work/corpus/." "$keep/$target/"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  runs="${runs:-0}"
  findings=$(find "$work/artifacts" -type f | wc -l)
  corpus=$(find "$work/corpus" -type f | wc -l)
  printf '%-18s %12s %9s %8s %8s %9s\n' "$target" "$runs" "$((runs / (seconds > 0 ? seconds : 1)))" \
    "$seconds" "$corpus" "$findings"
  if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
    failed=1
    mkdir -p "$build_dir/findings/$target"
    cp "$work/log" "$build_dir/findings/$target/log"
    find "$work/artifacts" -type f -exec cp {} "$build_dir/findings/$target/" \;
    echo "fuzz.sh: $target failed (exit $status); log and inputs in $build_dir/findings/$target" >&2
    grep -m 5 -E 'ERROR|runtime error|SUMMARY' "$work/log" >&2 || true
  fi
done
exit "$failed"
