#!/bin/sh
# Runs inside an image build (RUN step of deploy/container/*.Containerfile, as root):
#   install-package.sh PACKAGE UID CONTEXT
# Makes PACKAGE's system user and group with the fixed UID (= GID) the image's USER and the
# Kubernetes manifests name, installs CONTEXT/PACKAGE_*.deb (one of Tessera's own packages,
# deploy/package.sh) with its runtime dependencies from Debian's archive, and leaves nothing
# else behind: no apt lists or caches, no documentation (the copyright files stay), no
# setuid/setgid programs. The package's postinst finds the user already there and keeps it.
set -eu

if [ "$#" -ne 3 ]; then
  echo "usage: install-package.sh PACKAGE UID CONTEXT" >&2
  exit 2
fi
pkg="$1"
uid="$2"
deb_dir="$3"  # the build context: the package and dpkg-nodoc.cfg

set -- "$deb_dir/${pkg}"_*.deb
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
  echo "install-package.sh: want exactly one ${pkg}_*.deb in $deb_dir (deploy/package.sh" \
    "writes it; deploy/container/build.sh copies it into the build context)" >&2
  exit 1
fi
deb="$1"

# No documentation (the copyright files stay), as in Debian's bookworm-slim image.
install -m 0644 "$deb_dir/dpkg-nodoc.cfg" /etc/dpkg/dpkg.cfg.d/tessera-nodoc

groupadd --system --gid "$uid" "$pkg"
useradd --system --uid "$uid" --gid "$uid" --home-dir "/var/lib/$pkg" --no-create-home \
  --shell /usr/sbin/nologin --comment "$pkg (container)" "$pkg"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "$deb"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/apt \
  /var/log/dpkg.log /var/log/alternatives.log

# The state directory (a volume at run time) and the runtime directory (a tmpfs) exist
# with the daemon's ownership, so an empty volume mounted there inherits it.
install -d -m 0700 -o "$uid" -g "$uid" "/var/lib/$pkg"
install -d -m 0750 -o "$uid" -g "$uid" "/run/$pkg"

# Nothing in the image may gain privileges: drop every setuid/setgid bit.
find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
