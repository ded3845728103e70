#!/usr/bin/env bash
# The soak of docs/PERFORMANCE.md ("Hours of load"): one Keyward server on
# the local, vault or vault-transit backend (a Vault dev server beside it
# for the Vault backends), and `keyward bench --soak` against it: mixed
# generate, decrypt, describe and list over 8 keys, a line per interval
# with throughput, errors, p99 and the server's RSS, goroutines and open
# files; it fails if a request failed or the goroutines and open files do
# not come back after the load.
#
# Usage: scripts/soak.sh BACKEND [DURATION] [INTERVAL]   (defaults: 30m 1m)
# Environment: SOAK_OUT (default /tmp/keyward-soak), SOAK_CONC (16),
# SOAK_PORT and SOAK_VAULT_PORT (19751, 18750: set them to run two soaks at once)
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${1:?usage: scripts/soak.sh local|vault|vault-transit [DURATION] [INTERVAL]}"
DURATION="${2:-30m}"
INTERVAL="${3:-1m}"
OUT="${SOAK_OUT:-/tmp/keyward-soak}/$BACKEND"
PORT="${SOAK_PORT:-19751}"
VAULT_PORT="${SOAK_VAULT_PORT:-18750}"
rm -rf "$OUT" && mkdir -p "$OUT"
go build -o "$OUT/keyward" ./cmd/keyward
SERVER_PID=""
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
	if [ "$BACKEND" != local ]; then bash scripts/vault.sh stop "$VAULT_PORT" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
case "$BACKEND" in
local) CONFIG='{"backend_type":"local","master_key":"soak master key"}' ;;
vault | vault-transit)
	bash scripts/vault.sh build >&2
	eval "$(bash scripts/vault.sh start-dev "$VAULT_PORT" | sed 's/^/export /')"
	CONFIG="{\"backend_type\":\"$BACKEND\",\"address\":\"$VAULT_ADDR\",\"auth_method\":{\"token\":\"$VAULT_TOKEN\"},\"key_path_prefix\":\"soak/$BACKEND\"}"
	;;
*) echo "unknown backend $BACKEND" >&2; exit 2 ;;
esac
export KEYWARD_ROOT_USER=soak KEYWARD_ROOT_PASSWORD=soak-secret-key
"$OUT/keyward" server --address "127.0.0.1:$PORT" --data-dir "$OUT/data" 2>"$OUT/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null && break; sleep 0.1; done
for route in configure start; do
	body='{}'; [ "$route" = configure ] && body="$CONFIG"
	curl -fsS --aws-sigv4 aws:amz:us-east-1:kms --user "soak:soak-secret-key" -H 'Content-Type: application/json' \
		-X POST -d "$body" "http://127.0.0.1:$PORT/rustfs/admin/v3/kms/$route" >/dev/null
done
KEYWARD_ENDPOINT="http://127.0.0.1:$PORT" KEYWARD_ACCESS_KEY=soak KEYWARD_SECRET_KEY=soak-secret-key \
	"$OUT/keyward" bench --soak "$DURATION" --soak-interval "$INTERVAL" --concurrency "${SOAK_CONC:-16}" | tee "$OUT/soak.txt"
