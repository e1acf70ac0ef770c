#!/usr/bin/env bash
# ctest ContainerImagesRunTheDemoReadOnly (long; on request): builds the three images with
# deploy/container/build.sh, then runs the demo federation in containers as
# docs/containers.md describes it: a coordinator and three sites, each with a read-only
# root file system as its non-root user, no capabilities, no new privileges, its store on
# a volume, its runtime folder and /tmp on tmpfs, its config and certificates mounted
# read-only; the console image submits the breast-cancer task and waits for it. Asserts
# the images' user and base, that the root file system refuses writes, that a key of mode
# 0640 is refused, the health checks, that every site connects, the task's accuracy, and a
# graceful stop on SIGTERM (exit 0).
# Prints the timings and image sizes docs/containers.md quotes.
#   container_test.sh SOURCE_DIR TESSERA_BIN TESSERA_CLIENT_BIN
# Environment: TESSERA_CONTAINER_TEST=1 runs it (otherwise exit 77 = skipped, with the
# reason); TESSERA_DEB_DIR=DIR takes the packages from DIR instead of running
# deploy/package.sh; TESSERA_CONTAINER_REGISTRY_BASE=1 builds FROM debian:bookworm-slim
# from the registry instead of the local debootstrap base.
set -euo pipefail

if [ "${TESSERA_CONTAINER_TEST:-0}" != 1 ]; then
  echo "SKIP: builds images and runs containers (minutes); set TESSERA_CONTAINER_TEST=1"
  exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (podman with root storage, debootstrap)"
  exit 77
fi
for tool in podman debootstrap unshare; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (deploy/install-deps.sh)"
    exit 77
  fi
done

src="$1"
tessera="$2"
clientd="$3"

# Sandbox work-arounds (docs/containers.md, "What runs here"). crun refuses a cgroup v1
# host whose cgroup2 mount at /sys/fs/cgroup/unified still holds a controller ("cgroups in
# hybrid mode not supported, drop all controllers from cgroupv2"): run the whole test in a
# private mount namespace without that mount. The host's mounts stay as they are.
unified=/sys/fs/cgroup/unified
if [ -z "${TESSERA_CONTAINER_TEST_NS:-}" ] && [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] &&
  [ -n "$(cat "$unified/cgroup.controllers" 2>/dev/null)" ]; then
  echo "cgroup v1 with controllers on $unified: re-running in a private mount namespace"
  export TESSERA_CONTAINER_TEST_NS=1
  exec unshare --mount --propagation private bash -c \
    "umount -l $unified && exec bash \"\$0\" \"\$@\"" "${BASH_SOURCE[0]}" "$@"
fi
# podman asks for RLIMIT_NOFILE 1048576 and a large RLIMIT_NPROC, which a process without
# CAP_SYS_RESOURCE cannot raise to ("crun: setrlimit `RLIMIT_NOFILE`: Operation not
# permitted"): ask for what we have.
nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
[ "$nproc" = unlimited ] || [ "$nproc" -le 32768 ] || nproc=32768
[ "$nproc" != unlimited ] || nproc=32768
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

work="$(mktemp -d /tmp/tessera-container-test.XXXXXX)"
chmod 0755 "$work"
id="tessera-ctest-$$"
sites=(hospital-a hospital-b hospital-c)
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    for c in "$id-coordinator" "${sites[@]/#/$id-}"; do
      echo "--- podman logs $c (last 30 lines)"
      podman logs --tail 30 "$c" 2>&1 || true
    done
  fi
  podman rm -f -t 5 "$id-coordinator" "${sites[@]/#/$id-}" >/dev/null 2>&1 || true
  podman volume rm -f "$id-coordinator-store" "${sites[@]/#/$id-store-}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ms() { date +%s%3N; }
# podman without systemd logs an error for each health check timer it cannot make or
# remove (the test runs the checks itself): keep its stderr, show it on failure.
podman_quiet() {
  "$@" 2>>"$work/podman.err" || fail "$* failed: $(tail -5 "$work/podman.err")"
}
# eventually SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds.
eventually() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(ms) + seconds * 1000))
  until "$@" >/dev/null 2>&1; do
    [ "$(ms)" -lt "$deadline" ] || fail "$what: not within $seconds s (last: $("$@" 2>&1 | tail -1))"
    sleep 0.2
  done
}

# --- images --------------------------------------------------------------------------
started=$(ms)
build_args=(--tag ctest)
[ "${TESSERA_CONTAINER_REGISTRY_BASE:-0}" = 1 ] || build_args+=(--local-base)
[ -z "${TESSERA_DEB_DIR:-}" ] || build_args+=(--debs "$TESSERA_DEB_DIR")
bash "$src/deploy/container/build.sh" "${build_args[@]}" 2>&1 | tee "$work/build.log" |
  grep -E '^(build|package)\.sh:' || fail "build.sh: $(tail -20 "$work/build.log")"
built=$(ms)
for image in coordinator:990 client:991 console:992; do
  name="localhost/tessera-${image%%:*}:ctest"
  user="$(podman image inspect --format '{{.Config.User}}' "$name")"
  [ "$user" = "${image#*:}:${image#*:}" ] || fail "$name runs as '$user'"
  grep -q '^VERSION_CODENAME=bookworm$' <(podman run --rm --no-healthcheck "${limits[@]}" --entrypoint cat \
    "$name" /etc/os-release) || fail "$name is not Debian 12"
  # Only runtime packages, nothing that can gain privileges.
  content="$(podman run --rm --no-healthcheck "${limits[@]}" --entrypoint sh "$name" -c \
    'dpkg-query -W -f "\${Package}\n" | grep -E -- "-dev\$|^(gcc|g\+\+|cpp|make|curl|wget)(-[0-9]+)?\$" ;
     find / -xdev -type f -perm /6000 2>/dev/null; dpkg-query -W | wc -l')"
  [ "$(echo "$content" | wc -l)" = 1 ] || fail "$name holds: $content"
  echo "$name: $content Debian packages"
done

# --- PKI, configs, data (on the host, with the build's programs) ----------------------
"$tessera" pki init --dir "$work/ca" --federation container-test >/dev/null
etc_c="$work/etc-coordinator"
mkdir -p "$etc_c/tls"
"$tessera" pki keygen --name coordinator --out-dir "$etc_c/tls" >/dev/null
"$tessera" pki sign --ca-dir "$work/ca" --csr "$etc_c/tls/coordinator.csr" --role coordinator \
  --san tessera-coordinator >/dev/null
cp "$work/ca/ca.crt" "$etc_c/tls/"
cp "$src/deploy/container/coordinator.textproto" "$etc_c/"
chown -R 990:990 "$etc_c"

for site in "${sites[@]}"; do
  etc_s="$work/etc-$site"
  mkdir -p "$etc_s/tls" "$work/data-$site/breast_cancer"
  "$clientd" keygen --name "$site" --out-dir "$etc_s/tls" >/dev/null
  "$tessera" pki sign --ca-dir "$work/ca" --csr "$etc_s/tls/$site.csr" --role institution >/dev/null
  mv "$etc_s/tls/$site.crt" "$etc_s/tls/site.crt"
  mv "$etc_s/tls/$site.key" "$etc_s/tls/site.key"
  cp "$work/ca/ca.crt" "$etc_s/tls/"
  sed 's/coordinator\.example\.org:7443/tessera-coordinator:7443/' \
    "$src/deploy/container/client.textproto" >"$etc_s/client.textproto"
  grep -q '"tessera-coordinator:7443"' "$etc_s/client.textproto" || fail "client.textproto changed"
  chown -R 991:991 "$etc_s"
done
# deploy/demo.sh's split: a third of the training rows and of the test rows per site.
awk -F, -v dir="$work" \
  -v test_rows="$src/deploy/data/splits/breast_cancer_wisconsin.test_rows.txt" '
  BEGIN {
    while ((getline line < test_rows) > 0) is_test[line + 0] = 1
    split("hospital-a hospital-b hospital-c", site, " ")
  }
  NR == 1 {
    for (s = 1; s <= 3; s++) {
      print > (dir "/data-" site[s] "/breast_cancer/train.csv")
      print > (dir "/data-" site[s] "/breast_cancer/test.csv")
    }
    next
  }
  {
    row = NR - 2
    if (row in is_test) { s = (n_test++ % 3) + 1; f = "test.csv" }
    else { s = (n_train++ % 3) + 1; f = "train.csv" }
    print > (dir "/data-" site[s] "/breast_cancer/" f)
  }' "$src/deploy/data/breast_cancer_wisconsin.csv"
chmod -R a+rX "$work"/data-*

etc_o="$work/etc-console"
mkdir -p "$etc_o"
"$tessera" pki keygen --name operator --out-dir "$etc_o" >/dev/null
"$tessera" pki sign --ca-dir "$work/ca" --csr "$etc_o/operator.csr" --role operator >/dev/null
cp "$work/ca/ca.crt" "$etc_o/"
cat >"$etc_o/console.textproto" <<'EOF'
coordinator_address: "tessera-coordinator:7443"
tls {
  ca_cert: "/etc/tessera-console/ca.crt"
  cert: "/etc/tessera-console/operator.crt"
  key: "/etc/tessera-console/operator.key"
}
EOF
chown -R 992:992 "$etc_o"

# --- the federation ---------------------------------------------------------------------
# What docs/containers.md asks of every daemon container.
# shellcheck disable=SC2054  # the commas are tmpfs options
hardening=(--read-only --read-only-tmpfs=false --cap-drop=ALL
  --security-opt=no-new-privileges --tmpfs /tmp:rw,nosuid,nodev,mode=1777 "${limits[@]}")
# A key readable by the group is refused, in the container as anywhere (why the Kubernetes
# manifests copy it out of the Secret with mode 0600).
cp -a "$etc_c" "$work/etc-loose"
chmod 0640 "$work/etc-loose/tls/coordinator.key"
if podman run --rm --no-healthcheck "${hardening[@]}" \
  --tmpfs /run/tessera-coordinator:rw,nosuid,nodev,mode=0750,U \
  -v "$work/etc-loose:/etc/tessera-coordinator:ro" localhost/tessera-coordinator:ctest \
  >"$work/loose.log" 2>&1; then
  fail "the coordinator started with a key of mode 0640"
fi
grep -q "must not be accessible by group or others" "$work/loose.log" ||
  fail "no clear refusal of the 0640 key: $(tail -3 "$work/loose.log")"

podman_quiet podman run -d --name "$id-coordinator" "${hardening[@]}" \
  --tmpfs /run/tessera-coordinator:rw,nosuid,nodev,mode=0750,U \
  -v "$etc_c:/etc/tessera-coordinator:ro" \
  -v "$id-coordinator-store:/var/lib/tessera-coordinator" \
  localhost/tessera-coordinator:ctest >/dev/null
launched=$(ms)
eventually 60 "coordinator /readyz" podman exec "$id-coordinator" tessera-healthcheck readyz
coordinator_ready=$(ms)
ip="$(podman inspect --format '{{.NetworkSettings.IPAddress}}' "$id-coordinator")"
[ -n "$ip" ] || fail "the coordinator container has no address"
podman healthcheck run "$id-coordinator" || fail "podman healthcheck run: coordinator unhealthy"
[ "$(podman exec "$id-coordinator" id -u)" = 990 ] || fail "the coordinator does not run as 990"
if podman exec "$id-coordinator" touch /usr/bin/written 2>"$work/touch.err"; then
  fail "the coordinator's root file system is writable"
fi
grep -q "Read-only file system" "$work/touch.err" || fail "touch: $(cat "$work/touch.err")"
caps="$(podman exec "$id-coordinator" grep CapEff /proc/1/status)"
[ "$(echo "$caps" | awk '{print $2}')" = 0000000000000000 ] || fail "capabilities left: $caps"

for site in "${sites[@]}"; do
  podman_quiet podman run -d --name "$id-$site" "${hardening[@]}" --add-host "tessera-coordinator:$ip" \
    --tmpfs /run/tessera-client:rw,nosuid,nodev,mode=0750,U \
    -v "$work/etc-$site:/etc/tessera-client:ro" \
    -v "$work/data-$site:/srv/tessera-client:ro" \
    -v "$id-store-$site:/var/lib/tessera-client" \
    localhost/tessera-client:ctest >/dev/null
done
for site in "${sites[@]}"; do
  eventually 60 "$site /readyz (connected)" podman exec "$id-$site" tessera-healthcheck readyz
  podman exec "$id-$site" test -s /run/tessera-client/ready || fail "$site: no ready file"
  podman healthcheck run "$id-$site" || fail "podman healthcheck run: $site unhealthy"
done
# The approval queue through the control socket on the store's volume, as documented.
podman exec "$id-hospital-a" tessera-client tasks pending \
  --config /etc/tessera-client/client.textproto || fail "tessera-client tasks pending failed"
sites_ready=$(ms)

console=(podman_quiet podman run --rm "${hardening[@]}" --add-host "tessera-coordinator:$ip"
  -v "$etc_o:/etc/tessera-console:ro" -v "$src/deploy/examples:/srv/tasks:ro"
  localhost/tessera-console:ctest)
"${console[@]}" clients list | tee "$work/clients.txt"
for site in "${sites[@]}"; do
  grep -q "^$site .*ACTIVE" "$work/clients.txt" || fail "$site is not listed ACTIVE"
done
task="$("${console[@]}" tasks submit /srv/tasks/breast_cancer_logistic.textproto)"
"${console[@]}" tasks wait "$task" --poll-ms 200 | tail -3
accuracy="$("${console[@]}" tasks show "$task" --metric accuracy)"
awk -v a="$accuracy" 'BEGIN { exit !(a > 0.9) }' || fail "accuracy $accuracy"
trained=$(ms)

# A graceful stop on SIGTERM (the images' STOPSIGNAL): every daemon exits 0.
for c in "${sites[@]/#/$id-}" "$id-coordinator"; do
  podman_quiet podman stop -t 30 "$c" >/dev/null
  code="$(podman inspect --format '{{.State.ExitCode}}' "$c")"
  [ "$code" = 0 ] || fail "$c exited $code on SIGTERM"
done
stopped=$(ms)

echo "images:"
podman images --format '  {{.Repository}}:{{.Tag}} {{.Size}}' |
  grep -E 'tessera-((coordinator|client|console):ctest|debian)'
echo "timings: images built in $(((built - started) / 1000)) s;" \
  "coordinator ready $((coordinator_ready - launched)) ms after podman run;" \
  "3 sites connected $((sites_ready - coordinator_ready)) ms later;" \
  "breast-cancer task $((trained - sites_ready)) ms (accuracy $accuracy);" \
  "graceful stop of 4 containers $((stopped - trained)) ms"
echo "PASS"
