#!/bin/bash
# /usr/local/bin/tessera-healthcheck in the daemon images (deploy/container/*.Containerfile):
#   tessera-healthcheck [healthz|readyz]            (default readyz)
# Asks the daemon's own metrics listener (docs/monitoring.md) for /healthz (the process
# serves) or /readyz (the coordinator: store open, tasks resumed, gRPC serving; a site: the
# coordinator accepted its Hello). Exit 0 on "200", 1 otherwise with the answer's status
# line on stdout, which `podman healthcheck run` and `podman inspect` show.
#
# The listener's address is read from TESSERA_METRICS_READY_FILE (the daemon's
# metrics_ready_file; the images set it to /run/<package>/metrics), else taken from
# TESSERA_METRICS_ADDRESS (default 127.0.0.1:9464). Bash's /dev/tcp does the request, so the
# image needs no HTTP client.
set -u

path="${1:-readyz}"
case "$path" in
  healthz | readyz) ;;
  *)
    echo "usage: tessera-healthcheck [healthz|readyz]" >&2
    exit 2
    ;;
esac

address="${TESSERA_METRICS_ADDRESS:-127.0.0.1:9464}"
ready_file="${TESSERA_METRICS_READY_FILE:-}"
if [ -n "$ready_file" ] && [ -s "$ready_file" ]; then
  read -r address <"$ready_file"
fi
host="${address%:*}"
port="${address##*:}"
host="${host#[}"
host="${host%]}"
# A listener on every address answers on loopback too; the Host header check applies only
# to a loopback listener, and then wants the address as bound.
case "$host" in
  0.0.0.0 | "") host=127.0.0.1 ;;
  ::) host=::1 ;;
esac

if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "tessera-healthcheck: cannot connect to the metrics listener at $host:$port"
  exit 1
fi
printf 'GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$address" >&3
status=""
if ! read -r -t 5 status <&3; then
  echo "tessera-healthcheck: no answer from $host:$port within 5 s"
  exit 1
fi
status="${status%$'\r'}"
body="$(timeout 5 cat <&3 | tail -n 1)"
exec 3>&-
case "$status" in
  "HTTP/1."?" 200 "*)
    echo "$path: $body"
    exit 0
    ;;
esac
echo "$path: ${status:-no status line}: $body"
exit 1
