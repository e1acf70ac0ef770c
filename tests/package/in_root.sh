#!/usr/bin/env bash
# Runs inside the Debian 12 root that tests/package/debian_root_test.sh booted with
# systemd-nspawn --boot, as the unit tessera-package-test.service, with the three packages
# installed. The demo federation of deploy/demo.sh, but from the packages: the console makes
# the PKI, the coordinator runs as tessera-coordinator.service, hospital-a as
# tessera-client.service and hospitals b and c as tessera-client@hospital-b/-c.service, all
# started with systemctl (Type=notify: systemctl start returns once the daemon sent READY=1).
# Then reload, stop, the ready file's removal, journald, the security scores, remove and purge.
# Writes its log to /root/demo/run.log and "ok" to /root/demo/status only if all passed.
set -euo pipefail
cd /root/demo
exec >run.log 2>&1
echo failed >status
fail() { echo "FAIL: $*"; exit 1; }
started_ms=$(date +%s%3N)
echo "pid 1: $(cat /proc/1/comm); systemd $(systemctl --version | head -1)"

echo "== the packages' users, folders and modes"
for pkg in tessera-coordinator tessera-client; do
  id "$pkg"
  [ "$(stat -c '%a %U' "/var/lib/$pkg")" = "700 $pkg" ] || fail "/var/lib/$pkg: $(stat -c '%a %U' "/var/lib/$pkg")"
  [ "$(stat -c '%a %U %G' "/etc/$pkg")" = "750 root $pkg" ] || fail "/etc/$pkg: $(stat -c '%a %U %G' "/etc/$pkg")"
  stat -c '%a %U:%G %n' "/var/lib/$pkg" "/etc/$pkg" "/etc/$pkg"/* "/lib/systemd/system/$pkg.service"
done

echo "== PKI with the installed console"
sites=(hospital-a hospital-b hospital-c)
tessera pki init --dir ca --federation demo-federation
tessera pki keygen --name coordinator --out-dir coordinator >/dev/null
tessera pki sign --ca-dir ca --csr coordinator/coordinator.csr --role coordinator --san 127.0.0.1,localhost
tessera pki keygen --name operator --out-dir operator >/dev/null
tessera pki sign --ca-dir ca --csr operator/operator.csr --role operator
for site in "${sites[@]}"; do
  tessera-client keygen --name "$site" --out-dir "$site" >/dev/null
  tessera pki sign --ca-dir ca --csr "$site/$site.csr" --role institution
done

echo "== the coordinator: files in /etc/tessera-coordinator, then systemctl start"
etc=/etc/tessera-coordinator
install -m 0644 ca/ca.crt coordinator/coordinator.crt "$etc/tls/"
install -o tessera-coordinator -g tessera-coordinator -m 0600 coordinator/coordinator.key "$etc/tls/"
sed -i 's/^listen_address: .*/listen_address: "127.0.0.1:7443"/' "$etc/coordinator.textproto"
t0=$(date +%s%3N)
systemctl start tessera-coordinator
echo "systemctl start tessera-coordinator: $(($(date +%s%3N) - t0)) ms"
systemctl status --no-pager tessera-coordinator | head -12
[ "$(systemctl show -P Type tessera-coordinator)" = notify ] || fail "not Type=notify"
[ "$(cat /run/tessera-coordinator/ready)" = "127.0.0.1:7443" ] || fail "coordinator ready file"
systemctl show -P StatusText tessera-coordinator | grep -q "serving on 127.0.0.1:7443" || fail "STATUS="
[ "$(stat -c %U "/proc/$(systemctl show -P MainPID tessera-coordinator)")" = tessera-coordinator ] || fail "coordinator's user"

echo "== the sites' data and configs, then systemctl start"
awk -F, -v test_rows=breast_cancer_wisconsin.test_rows.txt '
  BEGIN {
    while ((getline line < test_rows) > 0) is_test[line + 0] = 1
    split("hospital-a hospital-b hospital-c", site, " ")
    for (s = 1; s <= 3; s++) system("mkdir -p /srv/tessera-client/" site[s])
  }
  NR == 1 { for (s = 1; s <= 3; s++) { d = "/srv/tessera-client/" site[s]; print > (d "/train.csv"); print > (d "/test.csv") }; next }
  {
    row = NR - 2
    if (row in is_test) { s = (n_test++ % 3) + 1; print > ("/srv/tessera-client/" site[s] "/test.csv") }
    else { s = (n_train++ % 3) + 1; print > ("/srv/tessera-client/" site[s] "/train.csv") }
  }' breast_cancer_wisconsin.csv
chmod -R a+rX /srv/tessera-client
etc=/etc/tessera-client
cp "$etc/client.textproto" client.example.textproto  # the shipped example
for site in "${sites[@]}"; do
  install -m 0644 ca/ca.crt "$etc/tls/ca.crt"
  install -m 0644 "$site/$site.crt" "$etc/tls/"
  install -o tessera-client -g tessera-client -m 0600 "$site/$site.key" "$etc/tls/"
  if [ "$site" = hospital-a ]; then config="$etc/client.textproto" run=/run/tessera-client state=/var/lib/tessera-client/store
  else config="$etc/$site.textproto" run="/run/tessera-client-$site" state="/var/lib/tessera-client/$site/store"; fi
  # The shipped example, edited as a site's IT staff would.
  sed -e 's/coordinator.example.org:7443/127.0.0.1:7443/' -e "s#tls/site\.#tls/$site.#" \
    -e "s#/srv/tessera-client/breast_cancer/#/srv/tessera-client/$site/#" \
    -e "s#/run/tessera-client/ready#$run/ready#" -e "s#/var/lib/tessera-client/store#$state#" \
    client.example.textproto >"$config.new"
  mv "$config.new" "$config"
  chgrp tessera-client "$config"
  chmod 0640 "$config"
done
t0=$(date +%s%3N)
systemctl start tessera-client tessera-client@hospital-b tessera-client@hospital-c
echo "systemctl start (three sites): $(($(date +%s%3N) - t0)) ms"
for unit in tessera-client tessera-client@hospital-b tessera-client@hospital-c; do
  echo "$unit: $(systemctl is-active "$unit"), $(systemctl show -P StatusText "$unit")"
  site=${unit#tessera-client@}
  [ "$site" = tessera-client ] && site=hospital-a
  systemctl show -P StatusText "$unit" | grep -q "connected to 127.0.0.1:7443 as $site" || fail "$unit STATUS="
done
[ -s /run/tessera-client/ready ] && [ -s /run/tessera-client-hospital-b/ready ] || fail "site ready files"
stat -c '%a %U %n' /var/lib/tessera-client/store /var/lib/tessera-client/hospital-b

echo "== the demo task"
cat >operator/console.textproto <<CONF
coordinator_address: "127.0.0.1:7443"
tls { ca_cert: "/root/demo/ca/ca.crt" cert: "/root/demo/operator/operator.crt" key: "/root/demo/operator/operator.key" }
CONF
export TESSERA_CONSOLE_CONFIG=/root/demo/operator/console.textproto
tessera clients list
t0=$(date +%s%3N)
task=$(tessera tasks submit breast_cancer_logistic.textproto)
timeout 600 tessera tasks wait "$task" --poll-ms 200
accuracy=$(tessera tasks show "$task" --metric accuracy)
echo "task: $(($(date +%s%3N) - t0)) ms"
echo "test_accuracy=$accuracy"
awk -v a="$accuracy" 'BEGIN { exit !(a > 0.9) }' || fail "accuracy $accuracy"

echo "== the site's control socket, from root, through the unit's sandbox (PrivateUsers)"
tessera-client tasks pending --config /etc/tessera-client/client.textproto || fail "tasks pending"

echo "== reload, logs, stop"
systemctl reload tessera-coordinator tessera-client
sleep_until_active() {  # systemctl reload returns once SIGHUP is sent; READY=1 ends the reload
  for _ in $(seq 100); do [ "$(systemctl is-active "$1")" = active ] && return 0; sleep 0.1; done
  return 1
}
sleep_until_active tessera-coordinator || fail "coordinator not active after reload"
sleep_until_active tessera-client || fail "client not active after reload"
journalctl -u tessera-coordinator --no-pager | grep -q coordinator_ready || fail "journal: coordinator_ready"
journalctl -u tessera-coordinator --no-pager | grep -q log_reopened || fail "journal: log_reopened"
journalctl -u tessera-client --no-pager | grep -q "Reloaded\|Reloading" || fail "journal: client reload"
journalctl -u tessera-coordinator -u tessera-client --no-pager | tail -8
systemctl stop tessera-client@hospital-b tessera-client@hospital-c tessera-client tessera-coordinator
for unit in tessera-coordinator tessera-client tessera-client@hospital-b; do
  echo "$unit: $(systemctl show -P ActiveState "$unit") result=$(systemctl show -P Result "$unit") status=$(systemctl show -P ExecMainStatus "$unit")"
  [ "$(systemctl show -P Result "$unit")" = success ] || fail "$unit did not stop cleanly"
done
[ ! -e /run/tessera-coordinator/ready ] || fail "coordinator ready file left"
echo "== systemd-analyze security (online, in the booted root)"
systemd-analyze security --no-pager tessera-coordinator.service tessera-client.service tessera-client@hospital-b.service | tail -4

echo "== remove keeps the state, purge deletes it"
export DEBIAN_FRONTEND=noninteractive
apt-get remove -y -q tessera-client >/dev/null
[ -d /var/lib/tessera-client/store ] && [ -f /etc/tessera-client/client.textproto ] || fail "remove deleted state or config"
apt-get purge -y -q tessera-client >/dev/null
[ ! -e /var/lib/tessera-client ] && [ ! -e /etc/tessera-client ] || fail "purge left state or config"
id tessera-client >/dev/null || fail "the system user went"
echo "removed, then purged: /var/lib/tessera-client and /etc/tessera-client gone"
echo "in_root.sh: $(($(date +%s%3N) - started_ms)) ms"
echo ok >status
