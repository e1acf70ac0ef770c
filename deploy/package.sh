#!/usr/bin/env bash
# Builds Tessera's Debian packages:   OUT_DIR=DIR bash deploy/package.sh
# writes into DIR (default: ./out)
#   tessera-coordinator_<version>-1_<arch>.deb   daemon, systemd unit, example config
#   tessera-client_<version>-1_<arch>.deb        daemon, systemd unit, example config
#   tessera-console_<version>-1_<arch>.deb       the `tessera` console
# and each one's -dbgsym_*.ddeb (the debug symbols split off the stripped binaries).
# Optimised with debug info (RelWithDebInfo: -O2 -g) in its own build folder
# (BUILD_DIR, default build-package), so that CPack can split the symbols off; the
# dependencies come from dpkg-shlibdeps (Debian's runtime libraries, never -dev packages).
# Prints the binaries' sizes (unstripped in the build, stripped in the packages), the
# packages' sizes and how long it took. docs/packaging.md has the rest.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${OUT_DIR:-$PWD/out}"
build_dir="${BUILD_DIR:-$root/build-package}"
started=$(date +%s)

bash "$root/deploy/install-deps.sh" >/dev/null
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DCMAKE_INSTALL_PREFIX=/usr -DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" --target tessera tessera-coordinator tessera-client
built=$(date +%s)

staging="$build_dir/packages"
rm -rf "$staging"
(cd "$build_dir" && cpack -G DEB -B "$staging" >/dev/null)
shopt -s nullglob
debs=("$staging"/tessera-*.deb "$staging"/tessera-*.ddeb)
for name in tessera-coordinator tessera-client tessera-console; do
  if ! compgen -G "$staging/${name}_*.deb" >/dev/null; then
    echo "package.sh: CPack wrote no ${name}_*.deb into $staging" >&2
    exit 1
  fi
done
for pkg in "${debs[@]}"; do
  base="$(basename "$pkg")"
  rm -f "$out_dir/${base%%_*}"_*."${base##*.}"
  cp "$pkg" "$out_dir/"
done

echo "package.sh: binaries, unstripped (build) -> stripped (package):"
unpacked="$(mktemp -d)"
trap 'rm -rf "$unpacked"' EXIT
for name in tessera-coordinator tessera-client tessera-console; do
  dpkg-deb -x "$out_dir/${name}"_*.deb "$unpacked"
done
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1e6 }'; }
for bin in coordinator/tessera-coordinator client/tessera-client console/tessera; do
  printf '  %-20s %6s MB -> %5s MB\n' "$(basename "$bin")" "$(mb "$build_dir/$bin")" \
    "$(mb "$unpacked/usr/bin/$(basename "$bin")")"
done
echo "package.sh: packages in $out_dir:"
for pkg in "${debs[@]}"; do
  printf '  %-50s %5s MB\n' "$(basename "$pkg")" "$(mb "$pkg")"
done
echo "package.sh: build $((built - started)) s, packaging $(($(date +%s) - built)) s"
