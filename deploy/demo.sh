#!/usr/bin/env bash
# Tessera's local federation demo, on real data:
#   - installs the dependencies (Debian 12 packages) and builds the three programs;
#   - makes a federation PKI in a temporary folder: a CA, the coordinator's certificate,
#     an operator's, and three hospitals' (each hospital makes its own key and CSR);
#   - splits breast_cancer_wisconsin.csv so that each hospital holds a third of the
#     training rows and its own share of the reference test rows;
#   - starts a coordinator and three client daemons on 127.0.0.1 (mutual TLS 1.3);
#   - submits deploy/examples/breast_cancer_logistic.textproto from the operator console,
#     prints each round's federated evaluation as it commits, and ends with
#     test_accuracy=0.xxxx on the reference test rows.
# Run as root on a fresh Debian 12 machine:   bash deploy/demo.sh
# Environment: BUILD_DIR (default: build), KEEP=1 keeps the temporary folder.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
started_ms=$(date +%s%3N)

bash "$root/deploy/install-deps.sh"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target tessera tessera-coordinator tessera-client
built_ms=$(date +%s%3N)

tessera="$build_dir/console/tessera"
coordinatord="$build_dir/coordinator/tessera-coordinator"
clientd="$build_dir/client/tessera-client"

work="$(mktemp -d /tmp/tessera-demo.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "demo files kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Waits (up to 60 s) for a daemon's ready file; fails if the daemon died.
wait_ready() {
  local file=$1 pid=$2 log=$3
  for _ in $(seq 600); do
    [ -s "$file" ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: daemon exited early; its log:" >&2; cat "$log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "demo: $file did not appear; log:" >&2; cat "$log" >&2; return 1
}

sites=(hospital-a hospital-b hospital-c)
echo "== PKI (in $work)"
"$tessera" pki init --dir "$work/ca" --federation demo-federation
"$tessera" pki keygen --name coordinator --out-dir "$work/coordinator" >/dev/null
"$tessera" pki sign --ca-dir "$work/ca" --csr "$work/coordinator/coordinator.csr" \
  --role coordinator --san 127.0.0.1,localhost
"$tessera" pki keygen --name operator --out-dir "$work/operator" >/dev/null
"$tessera" pki sign --ca-dir "$work/ca" --csr "$work/operator/operator.csr" --role operator
for site in "${sites[@]}"; do
  # At a real site, keygen runs there and only the CSR travels to the operator.
  "$clientd" keygen --name "$site" --out-dir "$work/$site" >/dev/null
  "$tessera" pki sign --ca-dir "$work/ca" --csr "$work/$site/$site.csr" --role institution
done

echo "== data: each hospital gets a third of the training rows and of the test rows"
awk -F, -v dir="$work" -v test_rows="$root/deploy/data/splits/breast_cancer_wisconsin.test_rows.txt" '
  BEGIN {
    while ((getline line < test_rows) > 0) is_test[line + 0] = 1
    split("hospital-a hospital-b hospital-c", site, " ")
  }
  NR == 1 { for (s = 1; s <= 3; s++) { print > (dir "/" site[s] "/train.csv"); print > (dir "/" site[s] "/test.csv") }; next }
  {
    row = NR - 2
    if (row in is_test) { s = (n_test++ % 3) + 1; print > (dir "/" site[s] "/test.csv") }
    else { s = (n_train++ % 3) + 1; print > (dir "/" site[s] "/train.csv") }
  }' "$root/deploy/data/breast_cancer_wisconsin.csv"
for site in "${sites[@]}"; do
  echo "$site: $(($(wc -l < "$work/$site/train.csv") - 1)) training rows, $(($(wc -l < "$work/$site/test.csv") - 1)) test rows"
done

echo "== coordinator"
cat > "$work/coordinator/config.textproto" <<CONF
listen_address: "127.0.0.1:0"
ready_file: "$work/coordinator/ready"
data_dir: "$work/coordinator/db"
tls { ca_cert: "$work/ca/ca.crt" cert: "$work/coordinator/coordinator.crt" key: "$work/coordinator/coordinator.key" }
CONF
"$coordinatord" --config "$work/coordinator/config.textproto" 2>"$work/coordinator/log" &
pids+=($!)
wait_ready "$work/coordinator/ready" "${pids[-1]}" "$work/coordinator/log"
address=$(cat "$work/coordinator/ready")
echo "coordinator listening on $address (log: $work/coordinator/log)"

echo "== clients"
for site in "${sites[@]}"; do
  cat > "$work/$site/config.textproto" <<CONF
coordinator_address: "$address"
tls { ca_cert: "$work/ca/ca.crt" cert: "$work/$site/$site.crt" key: "$work/$site/$site.key" }
datasets { id: "breast_cancer" train_csv: "$work/$site/train.csv" test_csv: "$work/$site/test.csv" }
policy { min_cohort: 3 }
ready_file: "$work/$site/ready"
data_dir: "$work/$site/store"
CONF
  "$clientd" run --config "$work/$site/config.textproto" 2>"$work/$site/log" &
  pids+=($!)
done
for i in 0 1 2; do
  wait_ready "$work/${sites[$i]}/ready" "${pids[$((i + 1))]}" "$work/${sites[$i]}/log"
done
cat > "$work/operator/console.textproto" <<CONF
coordinator_address: "$address"
tls { ca_cert: "$work/ca/ca.crt" cert: "$work/operator/operator.crt" key: "$work/operator/operator.key" }
CONF
export TESSERA_CONSOLE_CONFIG="$work/operator/console.textproto"
"$tessera" clients list

echo "== task"
task=$("$tessera" tasks submit "$root/deploy/examples/breast_cancer_logistic.textproto")
"$tessera" tasks wait "$task" --poll-ms 200
accuracy=$("$tessera" tasks show "$task" --metric accuracy)
federation_ms=$(( $(date +%s%3N) - built_ms ))
echo "demo: build $(( (built_ms - started_ms) / 1000 )) s; PKI, data split, daemons and training ${federation_ms} ms"
echo "test_accuracy=$accuracy"
