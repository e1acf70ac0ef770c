#!/usr/bin/env bash
# Runs clang-tidy (Debian 12's clang-tidy-14, the checks in .clang-tidy) over Tessera's
# own sources, with the compile commands of a configured build directory; exits non-zero
# on any finding. Generated protobuf code and third-party code are not checked.
#   bash deploy/tidy.sh                 # every library, the daemons and the tests
#   bash deploy/tidy.sh crypto secagg   # only these top-level folders
# Environment: BUILD_DIR (default: build; configured with cmake if it has no
# compile_commands.json), JOBS (default: number of cores). Runs under `nice`: it is slow
# (a few seconds per file).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
jobs="${JOBS:-$(nproc)}"
tidy="$(command -v clang-tidy-14 || command -v clang-tidy || true)"
runner="$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)"
if [[ -z "$tidy" || -z "$runner" ]]; then
  echo "tidy.sh: clang-tidy not found (apt-get install clang-tidy-14)" >&2
  exit 2
fi

if [[ ! -f "$build_dir/compile_commands.json" ]]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
# The generated protobuf headers must exist for the rest to parse (tessera_proto's, and
# the end-to-end tests' health service).
cmake --build "$build_dir" --target tessera_proto tests/e2e/health.pb.h -j "$jobs" >/dev/null

dirs=("$@")
if [[ ${#dirs[@]} -eq 0 ]]; then
  dirs=(common http metrics dp proto crypto secagg model_export client coordinator simulation
        dashboard console tests)
fi
# run-clang-tidy takes regular expressions matched against the files' absolute paths.
files=()
for dir in "${dirs[@]}"; do
  [[ -d "$root/$dir" ]] || { echo "tidy.sh: no folder $dir" >&2; exit 2; }
  files+=("^$root/$dir/.*\\.cc\$")
done

nice -n 10 "$runner" -clang-tidy-binary "$tidy" -p "$build_dir" -j "$jobs" -quiet \
  "${files[@]}"
echo "tidy.sh: clean (${dirs[*]})"
