#!/usr/bin/env bash
# Installs every build and run dependency of Tessera from Debian 12's own archive.
# Idempotent: packages already present are left as they are; nothing is fetched from
# anywhere but the configured apt sources. Must run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libprotobuf-dev protobuf-compiler
  libabsl-dev
  libssl-dev
  libeigen3-dev
  librocksdb-dev
  libboost-dev libboost-system-dev
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  zlib1g-dev
  dataset-fashion-mnist
  # the ONNX export (schema; checker and numpy for its tests), the metrics test's
  # Prometheus server, the dashboard test's headless browser
  libonnx-dev python3-onnx python3-numpy
  prometheus
  chromium
  # sd_notify (the daemons' readiness under systemd); the Debian packages' checks
  # (deploy/package.sh, tests/package/) and the package test's Debian 12 root and its
  # systemd-nspawn boot (TESSERA_PACKAGE_TEST=1)
  libsystemd-dev
  lintian
  debootstrap systemd-container
  # the network-namespace suite (tests/netns): ip netns, veth, bridge, tc tbf
  iproute2
  # the Kubernetes manifests' schema check (the API models of python3-kubernetes); the
  # container images' build and run test (podman; its Debian 12 base from debootstrap, above)
  python3-yaml python3-kubernetes
  podman
  # the fuzz targets (deploy/fuzz.sh): clang and its runtime, which holds libFuzzer
  # (-fsanitize=fuzzer), ASan and UBSan; libfuzzer-14-dev is not needed
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
