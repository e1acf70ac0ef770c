#!/usr/bin/env bash
# The packages in a clean Debian 12 root (tests/package/package_test.cc runs this when
# TESSERA_PACKAGE_TEST=1; docs/packaging.md). As root, on a machine that reaches Debian's
# archive:
#   1. deploy/package.sh builds the three .deb into the work folder;
#   2. a minimal Debian 12 root (debootstrap bookworm, plus systemd), cached in
#      $TESSERA_DEBIAN_ROOT_CACHE (default /var/cache/tessera-tests/bookworm-systemd), is
#      copied to a fresh folder;
#   3. apt inside that root installs the three .deb (and, from Debian's archive, the
#      runtime libraries they depend on);
#   4. systemd-nspawn --boot starts the root's systemd as its PID 1; a unit of the test
#      (tessera-package-test.service) runs in_root.sh, which makes the demo PKI with the
#      installed console, starts the installed units with systemctl and runs the demo's
#      breast-cancer task over three hospitals, then powers the container off;
#   5. the results (in_root.sh's log and its status file) are copied back and printed.
# Prints one "timing <step> <seconds>" line per step. Exit status 0 only if every step and
# every check of in_root.sh passed. KEEP=1 keeps the work folder; DEBS=DIR takes the .deb
# from DIR instead of running package.sh (to try a change of in_root.sh quickly).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${TESSERA_DEBIAN_ROOT_CACHE:-/var/cache/tessera-tests/bookworm-systemd}"
mirror="${TESSERA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d /var/tmp/tessera-package-test.XXXXXX)"
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
step_started=$(date +%s)
timing() {
  local now
  now=$(date +%s)
  echo "timing $1 $((now - step_started))"
  step_started=$now
}

if [ -n "${DEBS:-}" ]; then
  mkdir -p "$work/debs" && cp "$DEBS"/tessera-*.deb "$work/debs/"
else
  OUT_DIR="$work/debs" bash "$root/deploy/package.sh"
  timing package.sh
fi

if [ ! -x "$cache/lib/systemd/systemd" ]; then
  rm -rf "$cache.tmp"
  mkdir -p "$(dirname "$cache")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$cache.tmp" \
    "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
  mv "$cache.tmp" "$cache"
  timing debootstrap
else
  echo "debootstrap: cached root $cache"
fi

target="$work/root"
cp -a "$cache" "$target"
timing copy_root

# apt in the root (nspawn without --boot: a plain chroot with /proc, /dev and the host's
# network and resolv.conf) installs the packages and their runtime dependencies.
mkdir -p "$target/root/debs"
cp "$work/debs"/tessera-*.deb "$target/root/debs/"
nspawn=(systemd-nspawn -q --register=no --keep-unit -D "$target")
"${nspawn[@]}" sh -c 'apt-get update -q >/dev/null &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    /root/debs/tessera-coordinator_*.deb /root/debs/tessera-client_*.deb \
    /root/debs/tessera-console_*.deb' >"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log"; exit 1; }
grep -E "^(Setting up|Unpacking) tessera" "$work/apt.log" || true
echo "apt installed: $(grep -c '^Setting up' "$work/apt.log") packages"
timing apt_install

# The demo's inputs and the script that runs under the root's systemd.
demo="$target/root/demo"
mkdir -p "$demo"
cp "$root/deploy/data/breast_cancer_wisconsin.csv" \
  "$root/deploy/data/splits/breast_cancer_wisconsin.test_rows.txt" \
  "$root/deploy/examples/breast_cancer_logistic.textproto" \
  "$root/tests/package/in_root.sh" "$demo/"
cat >"$target/etc/systemd/system/tessera-package-test.service" <<'UNIT'
[Unit]
Description=Tessera package test (tests/package/in_root.sh)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /root/demo/in_root.sh
ExecStopPost=/bin/systemctl poweroff --no-block
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/tessera-package-test.service \
  "$target/etc/systemd/system/multi-user.target.wants/tessera-package-test.service"
echo "tessera-package-test" >"$target/etc/hostname"

timeout "${BOOT_TIMEOUT:-900}" systemd-nspawn -q --register=no --keep-unit --boot \
  -D "$target" --machine=tessera-package-test >"$work/boot.log" 2>&1 </dev/null || true
timing nspawn_boot_and_demo

echo "---- in_root.sh log"
cat "$demo/run.log" 2>/dev/null || { echo "no log; the boot:"; tail -40 "$work/boot.log"; }
status="$(cat "$demo/status" 2>/dev/null || echo missing)"
echo "---- in_root.sh status: $status"
[ "$status" = "ok" ]
