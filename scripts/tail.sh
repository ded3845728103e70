#!/usr/bin/env bash
# Tail latency at concurrency 16, measured with wrk (docs/PERFORMANCE.md,
# "Tail latency"): Keyward's generate-data-key and decrypt (local backend)
# against the bare net/http ceiling (`keyward bench-ceiling-server`, sent
# the same signed bytes) and Vault Transit's datakey/plaintext, in
# alternating rounds so that every round sees the same machine.
#
# Usage: scripts/tail.sh [DURATION] [ROUNDS]       (defaults: 5s 5)
# Environment:
#   TAIL_OUT       output directory (default /tmp/keyward-tail)
#   TAIL_BASE_BIN  another keyward binary (an older build): measured too,
#                  in the same rounds, as "base"
#   TAIL_CONNS     wrk connections (default 16)
# Prints a line per round and target (req/s, p50, p99 in ms, and the
# server's CPU time per request in µs, user and system, from
# /proc/PID/stat), then the medians; the raw wrk outputs are in $TAIL_OUT.
# With TAIL_GCTRACE=1 the Keyward server runs with GODEBUG=gctrace=1 (its
# log: $TAIL_OUT/keyward/log).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5s}"
ROUNDS="${2:-5}"
CONNS="${TAIL_CONNS:-16}"
OUT="${TAIL_OUT:-/tmp/keyward-tail}"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "tail.sh: wrk is required (apt-get install wrk)" >&2; exit 1; }
python3 -c 'import botocore' 2>/dev/null || { echo "tail.sh: python3 botocore is required" >&2; exit 1; }
bash scripts/vault.sh build >&2
go build -o "$OUT/bin/keyward" ./cmd/keyward
VAULT_PORT=18620
eval "$(bash scripts/vault.sh start-dev "$VAULT_PORT" | sed 's/^/export /')"
PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
	bash scripts/vault.sh stop "$VAULT_PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT

AK=tail SK=tail-secret-key
export KEYWARD_ROOT_USER=$AK KEYWARD_ROOT_PASSWORD=$SK
signed() { curl -fsS --aws-sigv4 aws:amz:us-east-1:kms --user "$AK:$SK" -H 'Content-Type: application/json' "$@"; }
# start_keyward NAME BIN PORT: a server on the local backend with a key.
start_keyward() {
	rm -rf "$OUT/$1" && mkdir -p "$OUT/$1"
	GODEBUG="${TAIL_GCTRACE:+gctrace=1}" "$2" server --address "127.0.0.1:$3" --data-dir "$OUT/$1/data" 2>"$OUT/$1/log" &
	PIDS+=($!)
	PID_OF[$1]=$!
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$3/health/live" >/dev/null && break; sleep 0.1; done
	signed -X POST -d '{"backend_type":"local","master_key":"tail master key"}' "http://127.0.0.1:$3/rustfs/admin/v3/kms/configure" >/dev/null
	signed -X POST -d '{}' "http://127.0.0.1:$3/rustfs/admin/v3/kms/start" >/dev/null
	signed -X POST -d '{"key_id":"tail-key"}' "http://127.0.0.1:$3/rustfs/admin/v3/kms/keys" >/dev/null
}
# sign_lua URL BODY: a wrk script replaying the request signed by botocore.
sign_lua() {
	python3 - "$1" "$2" "$AK" "$SK" <<'PY'
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
req = AWSRequest(method="POST", url=sys.argv[1], data=sys.argv[2], headers={"Content-Type": "application/json"})
SigV4Auth(Credentials(sys.argv[3], sys.argv[4]), "kms", "us-east-1").add_auth(req)
print("wrk.method = 'POST'\nwrk.body = " + json.dumps(sys.argv[2]))
for k, v in req.headers.items():
    print("wrk.headers[" + json.dumps(k) + "] = " + json.dumps(v))
PY
}
declare -A PID_OF # target name prefix -> server pid, for its CPU time
GEN='{"key_id":"tail-key","key_spec":"AES_256","encryption_context":{"app":"keyward-bench","purpose":"benchmark"}}'
TARGETS=()
# add_keyward NAME BIN PORT: its generate and decrypt targets.
add_keyward() {
	start_keyward "$1" "$2" "$3"
	local api="http://127.0.0.1:$3/rustfs/admin/v3/kms" blob
	sign_lua "$api/generate-data-key" "$GEN" >"$OUT/$1-generate.lua"
	blob=$(signed -X POST -d "$GEN" "$api/generate-data-key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ciphertext_blob"])')
	sign_lua "$api/decrypt" "{\"ciphertext_blob\":\"$blob\",\"encryption_context\":{\"app\":\"keyward-bench\",\"purpose\":\"benchmark\"}}" >"$OUT/$1-decrypt.lua"
	TARGETS+=("$1-generate=$api/generate-data-key" "$1-decrypt=$api/decrypt")
}
add_keyward keyward "$OUT/bin/keyward" 19611
if [ -n "${TAIL_BASE_BIN:-}" ]; then add_keyward base "$TAIL_BASE_BIN" 19612; fi

# The ceiling serves until its stdin closes: a FIFO held open here.
rm -f "$OUT/ceiling.in" "$OUT/ceiling.url" && mkfifo "$OUT/ceiling.in"
exec 3<>"$OUT/ceiling.in"
"$OUT/bin/keyward" bench-ceiling-server <"$OUT/ceiling.in" >"$OUT/ceiling.url" &
PIDS+=($!)
PID_OF[ceiling]=$!
for _ in $(seq 50); do [ -s "$OUT/ceiling.url" ] && break; sleep 0.1; done
ceiling="$(head -1 "$OUT/ceiling.url")rustfs/admin/v3/kms/generate-data-key"
sign_lua "$ceiling" "$GEN" >"$OUT/ceiling.lua"
TARGETS+=("ceiling=$ceiling")
curl -fs -X POST -H "X-Vault-Token: $VAULT_TOKEN" -d '{"type":"aes256-gcm96"}' "$VAULT_ADDR/v1/transit/keys/tail-key" >/dev/null
printf "wrk.method = 'POST'\nwrk.body = '{\"bits\":256}'\nwrk.headers['X-Vault-Token'] = '%s'\n" "$VAULT_TOKEN" >"$OUT/vault.lua"
TARGETS+=("vault=$VAULT_ADDR/v1/transit/datakey/plaintext/tail-key")
PID_OF[vault]=$(tr -dc '0-9' <".vault/dev-$VAULT_PORT.pid")
# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# to_ms VALUE: wrk's "1.23ms", "456.00us" or "1.2s" in ms.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }
# A short unrecorded run of each first: the first seconds of load on a
# fresh process are slower (lazy initialisation, page faults, warming
# caches) and would count against whichever target goes first.
for t in "${TARGETS[@]}"; do wrk -t2 -c"$CONNS" -d2s -s "$OUT/${t%%=*}.lua" "${t#*=}" >/dev/null; done
echo -e "round\ttarget\treq_per_s\tp50_ms\tp99_ms\tcpu_us" | tee "$OUT/results.tsv"
for round in $(seq "$ROUNDS"); do
	for t in "${TARGETS[@]}"; do
		name="${t%%=*}" url="${t#*=}"
		pid=${PID_OF[${name%%-*}]}
		ticks0=$(cpu_ticks "$pid")
		wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$OUT/$name.lua" "$url" >"$OUT/wrk-$name-$round.txt"
		if grep -q 'Non-2xx' "$OUT/wrk-$name-$round.txt"; then echo "tail.sh: $name answered errors" >&2; cat "$OUT/wrk-$name-$round.txt" >&2; exit 1; fi
		rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$name-$round.txt")
		p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$OUT/wrk-$name-$round.txt")")
		p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$name-$round.txt")")
		requests=$(awk '/requests in/ {print $1}' "$OUT/wrk-$name-$round.txt")
		cpu=$(awk -v t0="$ticks0" -v t1="$(cpu_ticks "$pid")" -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.1f", (t1 - t0) / hz * 1e6 / n }')
		echo -e "$round\t$name\t$rps\t$p50\t$p99\t$cpu" | tee -a "$OUT/results.tsv"
	done
done
python3 - "$OUT/results.tsv" <<'EOF'
import csv, statistics, sys, collections
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
g = collections.defaultdict(list)
for r in rows:
    g[r["target"]].append(r)
med = {t: {k: statistics.median(float(r[k]) for r in rs) for k in ("req_per_s", "p50_ms", "p99_ms", "cpu_us")} for t, rs in g.items()}
print("\nmedians over %d rounds:" % len({r["round"] for r in rows}))
for t, m in med.items():
    print(f"{t:18s} {m['req_per_s']:9.0f} req/s  p50 {m['p50_ms']:6.2f} ms  p99 {m['p99_ms']:6.2f} ms  server CPU {m['cpu_us']:5.1f} µs/request")
c, v = med.get("ceiling"), med.get("vault")
for t, m in med.items():
    if c and t not in ("ceiling", "vault"):
        print(f"{t:18s} {m['req_per_s']/c['req_per_s']:.0%} of the ceiling's throughput, p99 {m['p99_ms']/c['p99_ms']:.2f}x the ceiling's" +
              (f", {m['req_per_s']/v['req_per_s']:.1f}x Vault Transit" if v else ""))
EOF
