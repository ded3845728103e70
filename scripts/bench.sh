#!/usr/bin/env bash
# The side-by-side performance run of docs/PERFORMANCE.md: Keyward on the
# local, vault and vault-transit backends, Vault Transit called directly,
# and a bare net/http handler (the ceiling), all driven by `keyward bench`
# on this machine. Starts and stops its own servers on loopback.
# Usage: scripts/bench.sh [DURATION] [CONCURRENCY]   (defaults: 5s 1,4,16,64)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5s}"
CONC="${2:-1,4,16,64}"
OUT="${BENCH_OUT:-/tmp/keyward-bench}"
mkdir -p "$OUT"

bash scripts/vault.sh build >&2
go build -o "$OUT/keyward" ./cmd/keyward
VAULT_PORT=18600
eval "$(bash scripts/vault.sh start-dev "$VAULT_PORT" | sed 's/^/export /')"
cleanup() {
	for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
	bash scripts/vault.sh stop "$VAULT_PORT" >/dev/null 2>&1 || true
}
PIDS=()
trap cleanup EXIT

export KEYWARD_ROOT_USER=bench KEYWARD_ROOT_PASSWORD=bench-secret-key
start_keyward() { # name port configure-body
	rm -rf "$OUT/$1" && mkdir -p "$OUT/$1"
	"$OUT/keyward" server --address "127.0.0.1:$2" --data-dir "$OUT/$1/data" 2>"$OUT/$1/log" &
	PIDS+=($!)
	for _ in $(seq 50); do curl -fs "http://127.0.0.1:$2/health/live" >/dev/null && break; sleep 0.1; done
	for route in configure start; do
		body='{}'; [ "$route" = configure ] && body="$3"
		curl -fs --aws-sigv4 aws:amz:us-east-1:kms --user "bench:bench-secret-key" -H 'Content-Type: application/json' \
			-X POST -d "$body" "http://127.0.0.1:$2/rustfs/admin/v3/kms/$route" >/dev/null
	done
}
start_keyward local 19601 '{"backend_type":"local","master_key":"bench master key"}'
start_keyward vault 19602 "{\"backend_type\":\"vault\",\"address\":\"$VAULT_ADDR\",\"auth_method\":{\"token\":\"$VAULT_TOKEN\"},\"key_path_prefix\":\"bench/vault\"}"
start_keyward vault-transit 19603 "{\"backend_type\":\"vault-transit\",\"address\":\"$VAULT_ADDR\",\"auth_method\":{\"token\":\"$VAULT_TOKEN\"},\"key_path_prefix\":\"bench/transit\"}"

export KEYWARD_ACCESS_KEY=bench KEYWARD_SECRET_KEY=bench-secret-key
run() { "$OUT/keyward" bench --duration "$DURATION" --concurrency "$CONC" "$@"; }
echo "== local backend, Vault Transit direct, net/http ceiling"
run --endpoint http://127.0.0.1:19601 --ops generate,decrypt --vault-addr "$VAULT_ADDR" --vault-token "$VAULT_TOKEN" --ceiling
echo "== vault backend"
run --endpoint http://127.0.0.1:19602 --ops generate,decrypt
echo "== vault-transit backend"
run --endpoint http://127.0.0.1:19603 --ops generate,decrypt
echo "== create-key on local (fsync), concurrency 16"
run --endpoint http://127.0.0.1:19601 --ops create --concurrency 16
