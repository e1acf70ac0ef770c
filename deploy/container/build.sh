#!/usr/bin/env bash
# Builds Tessera's container images from its Debian packages (docs/containers.md):
#   bash deploy/container/build.sh [--debs DIR] [--local-base] [--tag TAG] [IMAGE...]
# IMAGE is coordinator, client or console (default: all three); each becomes
# localhost/tessera-IMAGE:TAG (TAG default: the packages' version, e.g. 0.1.0-1).
#
#   --debs DIR     take tessera-*_*.deb from DIR (default: build them now with
#                  `OUT_DIR=... bash deploy/package.sh`)
#   --local-base   build FROM a Debian 12 base made here (debootstrap --variant=minbase
#                  bookworm from Debian's archive, `podman import`ed as
#                  localhost/tessera-debian:bookworm, cached in TESSERA_CACHE_DIR) instead of
#                  docker.io/library/debian:bookworm-slim, for machines without a registry
#   --tag TAG      the images' tag
#
# Environment: PODMAN (default podman); BUILDAH_ISOLATION (default chroot: RUN steps need no
# OCI runtime, which some sandboxes cannot start; `oci` for podman's usual isolation);
# TESSERA_CACHE_DIR (default /var/cache/tessera-tests/container); TESSERA_DEBIAN_MIRROR
# (default http://deb.debian.org/debian). The RUN steps fetch the packages' runtime
# dependencies from the base image's apt sources, nothing from anywhere else.
# Prints each image's size and build time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/deploy/container"
podman="${PODMAN:-podman}"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
cache_dir="${TESSERA_CACHE_DIR:-/var/cache/tessera-tests/container}"
mirror="${TESSERA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
local_base_image="localhost/tessera-debian:bookworm"

die() {
  echo "build.sh: $*" >&2
  exit 1
}

deb_dir=""
local_base=0
tag=""
images=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --debs) deb_dir="${2:?--debs wants a folder}"; shift 2 ;;
    --local-base) local_base=1; shift ;;
    --tag) tag="${2:?--tag wants a tag}"; shift 2 ;;
    coordinator | client | console) images+=("$1"); shift ;;
    -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ "${#images[@]}" -gt 0 ] || images=(coordinator client console)
command -v "$podman" >/dev/null || die "'$podman' not found (apt-get install podman)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -z "$deb_dir" ]; then
  deb_dir="$work/debs"
  echo "build.sh: building the packages (deploy/package.sh)"
  OUT_DIR="$deb_dir" bash "$root/deploy/package.sh"
fi
[ -d "$deb_dir" ] || die "--debs $deb_dir is not a folder"

# make_local_base: a Debian 12 minbase tree from Debian's archive, imported as an image.
# Kept between runs: the tarball in the cache folder, the image in podman's storage.
make_local_base() {
  if "$podman" image exists "$local_base_image"; then return; fi
  local tarball="$cache_dir/bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || die "--local-base needs debootstrap"
    mkdir -p "$cache_dir"
    local tree="$cache_dir/bookworm-minbase.tmp"
    rm -rf "$tree"
    local started=$SECONDS
    echo "build.sh: debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$tree" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $cache_dir/debootstrap.log"
    rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/* "$tree"/var/log/*.log
    # What bookworm-slim leaves out (dpkg-nodoc.cfg), out of the tree and of later installs.
    install -m 0644 "$here/dpkg-nodoc.cfg" "$tree/etc/dpkg/dpkg.cfg.d/tessera-nodoc"
    find "$tree/usr/share/doc" -type f ! -name copyright -delete
    find "$tree/usr/share/doc" -depth -type d -empty -delete
    rm -rf "$tree"/usr/share/{man,groff,info,lintian,locale}/*
    tar --numeric-owner -C "$tree" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$tree"
    echo "build.sh: base tree made in $((SECONDS - started)) s"
  fi
  "$podman" import --change 'CMD ["/bin/bash"]' "$tarball" "$local_base_image" >/dev/null
}

base_args=()
if [ "$local_base" = 1 ]; then
  make_local_base
  base_args=(--build-arg "BASE_IMAGE=$local_base_image")
fi

for image in "${images[@]}"; do
  package="tessera-$image"
  debs=("$deb_dir/${package}"_*.deb)
  [ -f "${debs[0]}" ] || die "no ${package}_*.deb in $deb_dir"
  [ "${#debs[@]}" -eq 1 ] || die "more than one ${package}_*.deb in $deb_dir"
  image_tag="${tag:-$(dpkg-deb -f "${debs[0]}" Version)}"
  context="$work/context-$image"
  mkdir -p "$context"
  cp "${debs[0]}" "$here"/{install-package.sh,healthcheck.sh,dpkg-nodoc.cfg} "$context/"
  # The image this build replaces, removed afterwards rather than left dangling.
  old_id="$("$podman" image inspect --format '{{.Id}}' "localhost/$package:$image_tag" 2>/dev/null ||
    true)"
  started=$SECONDS
  "$podman" build --format docker --layers=false "${base_args[@]}" \
    -f "$here/$image.Containerfile" -t "localhost/$package:$image_tag" "$context"
  if [ -n "$old_id" ]; then "$podman" rmi "$old_id" >/dev/null 2>&1 || true; fi
  size=$("$podman" image inspect --format '{{.Size}}' "localhost/$package:$image_tag")
  awk -v n="localhost/$package:$image_tag" -v b="$size" -v s="$((SECONDS - started))" \
    'BEGIN { printf "build.sh: %s: %.1f MB, built in %d s\n", n, b / 1e6, s }'
done
