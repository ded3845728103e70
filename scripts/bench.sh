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

# An independent cross-check with wrk (a C load generator, lighter than any
# Go client), when it is installed: the same generate request, signed once
# by botocore and replayed, against the local backend, the ceiling and
# Vault Transit's datakey/plaintext. wrk's own latency figures on shared
# cores are not comparable (its two threads compete with the servers);
# read its req/s.
if command -v wrk >/dev/null && python3 -c 'import botocore' 2>/dev/null; then
	echo "== wrk cross-check, concurrency 16 (-t2 -c16 -d$DURATION)"
	curl -fs --aws-sigv4 aws:amz:us-east-1:kms --user "bench:bench-secret-key" -H 'Content-Type: application/json' \
		-X POST -d '{"key_id":"wrk-key"}' http://127.0.0.1:19601/rustfs/admin/v3/kms/keys >/dev/null
	body='{"key_id":"wrk-key","key_spec":"AES_256","encryption_context":{"app":"keyward-bench","purpose":"benchmark"}}'
	sign_lua() { # url: a wrk script replaying the request signed by botocore
		python3 - "$1" "$body" <<'PY'
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
req = AWSRequest(method="POST", url=sys.argv[1], data=sys.argv[2], headers={"Content-Type": "application/json"})
SigV4Auth(Credentials("bench", "bench-secret-key"), "kms", "us-east-1").add_auth(req)
print("wrk.method = 'POST'\nwrk.body = " + json.dumps(sys.argv[2]))
for k, v in req.headers.items():
    print("wrk.headers[" + json.dumps(k) + "] = " + json.dumps(v))
PY
	}
	rps() { wrk -t2 -c16 -d"$DURATION" -s "$1" "$2" | awk '/Non-2xx/ {bad=1} /Requests\/sec/ {r=$2} END {print (bad ? "ERRORS " : "") r}'; }
	sign_lua http://127.0.0.1:19601/rustfs/admin/v3/kms/generate-data-key >"$OUT/wrk-keyward.lua"
	echo "keyward local generate  $(rps "$OUT/wrk-keyward.lua" http://127.0.0.1:19601/rustfs/admin/v3/kms/generate-data-key) req/s"
	# The ceiling serves until its stdin closes: a FIFO this script holds
	# open, so it goes when the script does.
	rm -f "$OUT/ceiling.in" "$OUT/ceiling.url" && mkfifo "$OUT/ceiling.in"
	exec 3<>"$OUT/ceiling.in"
	"$OUT/keyward" bench-ceiling-server <"$OUT/ceiling.in" >"$OUT/ceiling.url" &
	PIDS+=($!)
	for _ in $(seq 50); do [ -s "$OUT/ceiling.url" ] && break; sleep 0.1; done
	ceiling="$(head -1 "$OUT/ceiling.url")rustfs/admin/v3/kms/generate-data-key"
	sign_lua "$ceiling" >"$OUT/wrk-ceiling.lua"
	echo "ceiling                 $(rps "$OUT/wrk-ceiling.lua" "$ceiling") req/s"
	curl -fs -X POST -H "X-Vault-Token: $VAULT_TOKEN" -d '{"type":"aes256-gcm96"}' "$VAULT_ADDR/v1/transit/keys/wrk-key" >/dev/null
	printf "wrk.method = 'POST'\nwrk.body = '{}'\nwrk.headers['X-Vault-Token'] = '%s'\n" "$VAULT_TOKEN" >"$OUT/wrk-vault.lua"
	echo "vault datakey/plaintext $(rps "$OUT/wrk-vault.lua" "$VAULT_ADDR/v1/transit/datakey/plaintext/wrk-key") req/s"
else
	echo "(wrk or botocore missing: no wrk cross-check; apt-get install wrk)"
fi
