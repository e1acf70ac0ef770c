#!/usr/bin/env bash
# Installs Tessera's dependencies (Debian 12 packages), builds everything with Ninja and
# runs every test through ctest: unit tests of each library and the end-to-end suite that
# starts real daemons on loopback. Run as root on a fresh Debian 12 machine:
#   bash deploy/test.sh
# Environment: BUILD_DIR (default: build), BUILD_TYPE (default: RelWithDebInfo),
# JOBS (default: number of cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
build_type="${BUILD_TYPE:-RelWithDebInfo}"
jobs="${JOBS:-$(nproc)}"

bash "$root/deploy/install-deps.sh"

start=$(date +%s)
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
cmake --build "$build_dir" -j "$jobs"
built=$(date +%s)
echo "test.sh: build took $((built - start)) s"

cd "$build_dir"
ctest --output-on-failure -j "$jobs" --timeout 600
echo "test.sh: tests took $(( $(date +%s) - built )) s"
