#!/usr/bin/env bash
# Installs Tessera's dependencies (Debian 12 packages), builds everything with Ninja and
# runs every test through ctest: unit tests of each library and the end-to-end suite that
# starts real daemons on loopback. Run as root on a fresh Debian 12 machine:
#   bash deploy/test.sh
#   bash deploy/test.sh --sanitize=address,undefined   # ASan + UBSan, in build-asan/
#   bash deploy/test.sh --sanitize=thread              # TSan, in build-tsan/
# With --sanitize, everything is built with the sanitizers (-DTESSERA_SANITIZE, -O1) in a
# build directory of its own and every test runs; a finding stops the program that made it
# (halt_on_error) and fails its test. Tests get TESSERA_TEST_TIMEOUT_MULTIPLIER times
# their usual time (default 4).
# --only=TARGET[,TARGET...] builds only those test binaries and runs them directly (CI's
# short sanitizer run: --sanitize=address,undefined --only=crypto_test,secagg_test).
# Other arguments go to ctest (e.g. -R Secagg).
# Environment: BUILD_DIR (default: build, build-asan or build-tsan), BUILD_TYPE (default:
# RelWithDebInfo), JOBS (default: number of cores), TESSERA_TEST_TIMEOUT_MULTIPLIER.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sanitize=""
only=()
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize=*) sanitize="${arg#--sanitize=}" ;;
    --only=*) IFS=, read -r -a only <<<"${arg#--only=}" ;;
    *) ctest_args+=("$arg") ;;
  esac
done

build_type="${BUILD_TYPE:-RelWithDebInfo}"
jobs="${JOBS:-$(nproc)}"
cmake_args=()
timeout=600
case "$sanitize" in
  "") build_dir="${BUILD_DIR:-$root/build}" ;;
  address,undefined | undefined,address | address | undefined)
    build_dir="${BUILD_DIR:-$root/build-asan}" ;;
  thread) build_dir="${BUILD_DIR:-$root/build-tsan}" ;;
  *)
    echo "test.sh: --sanitize=$sanitize: use address,undefined or thread" >&2
    exit 2 ;;
esac
if [[ -n "$sanitize" ]]; then
  multiplier="${TESSERA_TEST_TIMEOUT_MULTIPLIER:-4}"
  export TESSERA_TEST_TIMEOUT_MULTIPLIER="$multiplier"
  timeout=$((600 * multiplier))
  # -O1: the usual choice for sanitizers (readable reports, a fraction of -O0's run time);
  # line tables only (-g1) keep the build affordable.
  cmake_args+=(-DTESSERA_SANITIZE="$sanitize" -DTESSERA_TEST_TIMEOUT_MULTIPLIER="$multiplier"
               -DTESSERA_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1")
  # Stop at the first finding, with a stack; leaks are findings too (ASan's LeakSanitizer).
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  # suppress_equal_addresses=0: TSan otherwise checks every race it finds against the list
  # of every address it has already reported or suppressed, a list that grows with each
  # suppressed race in an uninstrumented library; a daemon that runs for minutes then spends
  # most of its time in that scan (an operator's GetTask took seconds, once 80 s). Each race
  # is still matched against the suppressions; nothing goes unchecked.
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppress_equal_addresses=0:suppressions=$root/tests/testing/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
fi

bash "$root/deploy/install-deps.sh"

start=$(date +%s)
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${cmake_args[@]}"
if [[ ${#only[@]} -gt 0 ]]; then
  cmake --build "$build_dir" -j "$jobs" --target "${only[@]}"
else
  cmake --build "$build_dir" -j "$jobs"
fi
built=$(date +%s)
echo "test.sh: build took $((built - start)) s"

cd "$build_dir"
if [[ ${#only[@]} -gt 0 ]]; then
  for target in "${only[@]}"; do
    binary="$(find "$build_dir/tests" -type f -perm -u+x -name "$target" | head -n 1)"
    [[ -n "$binary" ]] || { echo "test.sh: no test binary $target" >&2; exit 2; }
    (cd "$(dirname "$binary")" && "$binary" --gtest_brief=1)
  done
else
  ctest --output-on-failure -j "$jobs" --timeout "$timeout" "${ctest_args[@]}"
fi
echo "test.sh: tests took $(( $(date +%s) - built )) s"
