#!/usr/bin/env bash
# The scale run of docs/PERFORMANCE.md ("Many keys"): a Keyward server
# holding 1,000, 10,000 and 100,000 keys (`keyward bench --keys N`), and
# what a list page (with and without a state filter), describe, generate
# and decrypt cost at each size; how long creating the keys took, how long
# the server takes to start with them and how much memory it holds.
#
# Usage: scripts/scale.sh BACKEND [COUNTS] [DURATION]
#   BACKEND   local, vault or vault-transit
#   COUNTS    comma-separated key counts, ascending (default 1000,10000,100000)
#   DURATION  per step (default 5s)
# Environment:
#   SCALE_OUT       output directory (default /tmp/keyward-scale)
#   SCALE_ROUNDS    rounds per count (default 3): the figures are medians
#   SCALE_CONC      concurrency (default 16)
#   SCALE_BASE_BIN  another keyward binary (an older build) to measure in the
#                   same rounds on the same keys, alternating with this one
#   SCALE_BASE_INDEX=1  the older build has the key index too: wait for its
#                   "key index loaded" before measuring it, as for this one
#
# The keys accumulate: each count adds the missing keys to the same data
# directory (or Vault prefix), so a run over 1k,10k,100k creates 100,000
# keys once. Results: $SCALE_OUT/BACKEND/results.tsv (one line per binary,
# count, round and op) and startup.tsv; scripts/scale_plot.py draws them.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${1:?usage: scripts/scale.sh local|vault|vault-transit [COUNTS] [DURATION]}"
COUNTS="${2:-1000,10000,100000}"
DURATION="${3:-5s}"
OUT="${SCALE_OUT:-/tmp/keyward-scale}/$BACKEND"
ROUNDS="${SCALE_ROUNDS:-3}"
CONC="${SCALE_CONC:-16}"
PORT=19701
VAULT_PORT=18700
mkdir -p "$OUT"
go build -o "$OUT/keyward" ./cmd/keyward
BINS=("new=$OUT/keyward")
if [ -n "${SCALE_BASE_BIN:-}" ]; then BINS+=("base=$SCALE_BASE_BIN"); fi

export KEYWARD_ROOT_USER=scale KEYWARD_ROOT_PASSWORD=scale-secret-key
export KEYWARD_ACCESS_KEY=scale KEYWARD_SECRET_KEY=scale-secret-key KEYWARD_ENDPOINT="http://127.0.0.1:$PORT"
SERVER_PID=""
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
	if [ "$BACKEND" != local ]; then bash scripts/vault.sh stop "$VAULT_PORT" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

case "$BACKEND" in
local) CONFIG='{"backend_type":"local","master_key":"scale master key"}' ;;
vault | vault-transit)
	bash scripts/vault.sh build >&2
	eval "$(bash scripts/vault.sh start-dev "$VAULT_PORT" | sed 's/^/export /')"
	CONFIG="{\"backend_type\":\"$BACKEND\",\"address\":\"$VAULT_ADDR\",\"auth_method\":{\"token\":\"$VAULT_TOKEN\"},\"key_path_prefix\":\"scale/$BACKEND\"}"
	;;
*) echo "unknown backend $BACKEND" >&2; exit 2 ;;
esac

signed() { curl -fsS --aws-sigv4 aws:amz:us-east-1:kms --user "scale:scale-secret-key" -H 'Content-Type: application/json' "$@"; }
now_ms() { date +%s%3N; }

# start BIN [INDEX]: starts the server on the data dir, configured on its
# first start; prints "ready_ms index_ms": when it serves, and (INDEX=1,
# a build with the key index) when it logged "key index loaded" ("-"
# otherwise), in READY and INDEX.
start() {
	local bin="$1" want_index="${2:-0}" t0 log="$OUT/server.log"
	: >"$log"
	t0=$(now_ms)
	"$bin" server --address "127.0.0.1:$PORT" --data-dir "$OUT/data" 2>"$log" &
	SERVER_PID=$!
	until grep -q '"keyward ready"' "$log"; do sleep 0.02; done
	if ! grep -q '"status":"Running"' "$log"; then
		signed -X POST -d "$CONFIG" "$KEYWARD_ENDPOINT/rustfs/admin/v3/kms/configure" >/dev/null
		signed -X POST -d '{}' "$KEYWARD_ENDPOINT/rustfs/admin/v3/kms/start" >/dev/null
	fi
	until signed "$KEYWARD_ENDPOINT/rustfs/admin/v3/kms/status" 2>/dev/null | grep -q '"Running"'; do sleep 0.02; done
	READY=$(($(now_ms) - t0)) INDEX=-
	if [ "$want_index" = 1 ]; then
		until grep -q '"key index loaded"' "$log"; do sleep 0.05; done
		INDEX=$(($(now_ms) - t0))
	fi
}
stop() { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }
rss_mb() { signed "$KEYWARD_ENDPOINT/metrics" | awk '/^process_resident_memory_bytes/ {printf "%.0f", $2/1048576}'; }

echo -e "bin\tkeys\tround\top\treq_per_s\tp50_ms\tp99_ms\terrors" >"$OUT/results.tsv"
echo -e "bin\tkeys\tready_ms\tindex_loaded_ms\trss_mb_started\trss_mb_after\tcreated\tcreate_s\tcreate_per_s" >"$OUT/startup.tsv"
IFS=, read -r -a counts <<<"$COUNTS"
for n in "${counts[@]}"; do
	# Prepare the key set with this build (timed: the creation rate).
	start "$OUT/keyward" 1
	"$OUT/keyward" bench --keys "$n" --ops describe --concurrency 1 --duration 1s --warmup 0s >/dev/null 2>"$OUT/prepare-$n.log"
	stop
	created=$(grep -o 'created [0-9]* keys in [^:]*: [0-9]* keys/s' "$OUT/prepare-$n.log" || true)
	echo "prepared $n keys: ${created:-nothing to create}" >&2
	for round in $(seq "$ROUNDS"); do
		for entry in "${BINS[@]}"; do
			name="${entry%%=*}" bin="${entry#*=}"
			idx=0
			if [ "$name" = new ] || [ "${SCALE_BASE_INDEX:-0}" = 1 ]; then idx=1; fi
			start "$bin" "$idx"
			ready=$READY index=$INDEX
			rss0=$(rss_mb)
			"$OUT/keyward" bench --keys "$n" --ops list,list-disabled,describe,generate,decrypt --concurrency "$CONC" \
				--duration "$DURATION" --json >"$OUT/$name-$n-$round.json" 2>>"$OUT/bench.log" || true
			rss1=$(rss_mb)
			stop
			jq -r --arg b "$name" --arg n "$n" --arg r "$round" \
				'.[] | [$b, $n, $r, .op, .req_per_s, .p50_ms, .p99_ms, .errors] | @tsv' "$OUT/$name-$n-$round.json" >>"$OUT/results.tsv"
			if [ "$round" = 1 ]; then
				c=$(echo "$created" | awk '{print $2}') s=$(echo "$created" | awk '{print $5}' | tr -d :) r=$(echo "$created" | awk '{print $6}')
				echo -e "$name\t$n\t$ready\t$index\t$rss0\t$rss1\t${c:--}\t${s:--}\t${r:--}" >>"$OUT/startup.tsv"
			fi
			echo "$BACKEND $name n=$n round $round: ready ${ready} ms, index ${index} ms, RSS ${rss0} -> ${rss1} MiB" >&2
		done
	done
done
# Medians over the rounds.
python3 - "$OUT/results.tsv" <<'EOF'
import csv, statistics, sys, collections
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
g = collections.defaultdict(list)
for r in rows:
    g[(r["bin"], int(r["keys"]), r["op"])].append(r)
print("bin\tkeys\top\treq/s (median)\tp50 ms\tp99 ms\terrors")
for (b, n, op), rs in sorted(g.items()):
    med = lambda k: statistics.median(float(x[k]) for x in rs)
    print(f"{b}\t{n}\t{op}\t{med('req_per_s'):.0f}\t{med('p50_ms'):.2f}\t{med('p99_ms'):.2f}\t{sum(int(x['errors']) for x in rs)}")
EOF
column -t "$OUT/startup.tsv"
