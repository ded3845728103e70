#!/usr/bin/env bash
# scripts/vault.sh: build and run a local HashiCorp Vault server for tests.
#
# Vault v1.14.1 is the last MPL-2.0 release line that builds here (v1.15+ is
# BSL-licensed: do not use). It is built from the Go module proxy: the module
# is copied to a temp dir, the replace directives pointing at the nested ./api
# modules (absent from the module zip) are dropped, sdk v0.9.2 is copied into
# ./sdk, and one start-up self-check panic in sdk/framework/backend.go is
# disabled (sdk v0.9.2 panics on two paths that Vault 1.14.1 defines).
#
# Usage:
#   scripts/vault.sh build                 build .vault/bin/vault (skipped if present)
#   scripts/vault.sh start-dev [PORT]      dev server on 127.0.0.1:PORT (default 8200),
#                                          root token "root", transit/ enabled
#   scripts/vault.sh start-file DIR PORT   persistent server, file storage in DIR/data,
#                                          initialised once (DIR/init.json), unsealed
#   scripts/vault.sh stop [PORT|DIR]       stop a dev (PORT) or file (DIR) server
#   scripts/vault.sh start-cluster DIR [BASEPORT]
#                                          3-node cluster with integrated (raft) storage,
#                                          API ports BASEPORT, +10, +20 (default 8210),
#                                          initialised once (3 Shamir shares, threshold 2,
#                                          DIR/init.json), unsealed, joined, all voters
#   scripts/vault.sh stop-cluster DIR      stop the cluster of DIR (data kept)
#   scripts/vault.sh env [PORT|DIR]        print export lines for VAULT_ADDR/VAULT_TOKEN
#
# All progress messages go to stderr; start-dev/start-file print exactly one
# line to stdout: VAULT_ADDR=... VAULT_TOKEN=... (start-cluster adds
# VAULT_ADDRS=, every node's address, comma-separated; VAULT_ADDR is the
# active node).
set -Eeuo pipefail

readonly PROG="vault.sh"
readonly VAULT_VERSION="1.14.1"
readonly SDK_VERSION="0.9.2"
readonly VAULT_MODULE="github.com/hashicorp/vault"
readonly SDK_MODULE="github.com/hashicorp/vault/sdk"
readonly DEFAULT_DEV_PORT="8200"

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
VAULT_HOME="$REPO_ROOT/.vault"
VAULT_BIN="$VAULT_HOME/bin/vault"
readonly SCRIPT_DIR REPO_ROOT VAULT_HOME VAULT_BIN

# Set by cmd_build, removed by cleanup_build on exit.
BUILD_TMP=""
BUILD_OUT_PARTIAL=""
# Set when this invocation launched a server: stopped again if we fail.
LAUNCHED_PID=""
LAUNCHED_PIDFILE=""

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}
on_err() {
	local rc="$1" line="$2" cmd="$3"
	printf '%s: error: command failed (exit %s) at line %s: %s\n' "$PROG" "$rc" "$line" "$cmd" >&2
}
trap 'on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR

# on_exit: remove build leftovers; if this invocation started a server and
# then failed (health timeout, init/unseal error...), stop that server again.
on_exit() {
	local rc=$?
	trap - ERR
	cleanup_build
	if ((rc != 0)) && [[ -n "$LAUNCHED_PID" ]] && is_vault_pid "$LAUNCHED_PID"; then
		printf '%s: stopping the vault server started by this failed run (pid %s)\n' "$PROG" "$LAUNCHED_PID" >&2
		kill -TERM "$LAUNCHED_PID" 2>/dev/null || true
		rm -f -- "$LAUNCHED_PIDFILE"
	fi
	# The script exits with rc: an EXIT trap that does not call exit keeps it.
}
trap on_exit EXIT

usage() {
	cat <<EOF
usage: $PROG COMMAND [ARGS]

  build                  build Vault v$VAULT_VERSION into $VAULT_BIN
                         (skipped when it exists and reports v$VAULT_VERSION)
  start-dev [PORT]       start a dev server on 127.0.0.1:PORT (default $DEFAULT_DEV_PORT),
                         root token "root", transit/ enabled; log/pid in $VAULT_HOME/dev-PORT.{log,pid}
  start-file DIR PORT    start a file-storage server (data in DIR/data), init once
                         (unseal key + root token in DIR/init.json, mode 0600), unseal
  stop [PORT|DIR]        stop the dev server on PORT or the file server of DIR
  start-cluster DIR [BASEPORT]
                         start a 3-node raft cluster on 127.0.0.1:BASEPORT, +10, +20
                         (default 8210; cluster ports +1), data and logs in DIR/node{1,2,3},
                         init once (3 Shamir shares, threshold 2, DIR/init.json), unseal,
                         join (retry_join), wait for 3 voters; secret/ (KV v2), transit/
  stop-cluster DIR       stop the three nodes of DIR (their data stays)
  env [PORT|DIR]         print 'export VAULT_ADDR=...' and 'export VAULT_TOKEN=...'
EOF
}

# now_ms prints the wall clock in milliseconds.
now_ms() {
	if [[ -n "${EPOCHREALTIME:-}" ]]; then
		local t="${EPOCHREALTIME/[.,]/}"
		printf '%s\n' "$((10#$t / 1000))"
	else
		printf '%s\n' "$(($(date +%s) * 1000))"
	fi
}

fmt_ms() {
	local ms="$1"
	if ((ms < 1000)); then
		printf '%d ms' "$ms"
	elif ((ms < 60000)); then
		printf '%d.%01d s' "$((ms / 1000))" "$((ms % 1000 / 100))"
	else
		printf '%dm%02ds' "$((ms / 60000))" "$((ms % 60000 / 1000))"
	fi
}

# validate_port PORT: prints the normalised port or dies.
validate_port() {
	local p="$1"
	[[ "$p" =~ ^[0-9]{1,5}$ ]] || die "invalid port: '$p'"
	p=$((10#$p))
	# Dev servers also bind PORT+1 (cluster listener).
	((p >= 1 && p <= 65534)) || die "port out of range (1-65534): '$1'"
	printf '%s\n' "$p"
}

# ---------------------------------------------------------------- build

vault_version_ok() {
	[[ -x "$VAULT_BIN" ]] || return 1
	local out re
	out="$("$VAULT_BIN" version 2>/dev/null)" || return 1
	re="^Vault v${VAULT_VERSION//./\\.}([^0-9A-Za-z.-]|$)"
	[[ "$out" =~ $re ]]
}

cleanup_build() {
	if [[ -n "$BUILD_OUT_PARTIAL" ]]; then
		rm -f -- "$BUILD_OUT_PARTIAL"
	fi
	if [[ -n "$BUILD_TMP" && -d "$BUILD_TMP" ]]; then
		# Files copied from the module cache are read-only.
		chmod -R u+w -- "$BUILD_TMP" 2>/dev/null || true
		rm -rf -- "$BUILD_TMP"
	fi
}

# module_dir MODULE@VERSION: downloads the module through the Go module proxy
# and prints its directory in the module cache.
module_dir() {
	local modver="$1" json dir
	if ! json="$(cd -- "$BUILD_TMP" && GOFLAGS='' GOWORK=off GO111MODULE=on GOTOOLCHAIN=local \
		go mod download -json "$modver")"; then
		die "go mod download $modver failed: $json"
	fi
	dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)"
	[[ -n "$dir" && -d "$dir" ]] || die "go mod download $modver: no module directory in its output: $json"
	printf '%s\n' "$dir"
}

cmd_build() {
	local start src vault_dir sdk_dir backend gomod n
	start="$(now_ms)"
	if vault_version_ok; then
		log "$VAULT_BIN already reports v$VAULT_VERSION: skipping build ($(fmt_ms "$(($(now_ms) - start))"))"
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go is not installed or not in PATH"

	BUILD_TMP="$(mktemp -d "${TMPDIR:-/tmp}/keyward-vault-build.XXXXXX")" ||
		die "cannot create a temporary directory"
	log "building Vault v$VAULT_VERSION in $BUILD_TMP (first build: ~5 min, CPU heavy)"

	vault_dir="$(module_dir "$VAULT_MODULE@v$VAULT_VERSION")"
	sdk_dir="$(module_dir "$SDK_MODULE@v$SDK_VERSION")"

	src="$BUILD_TMP/vault"
	cp -R -- "$vault_dir" "$src" || die "cannot copy $vault_dir to $src"
	chmod -R u+w -- "$src"
	[[ ! -e "$src/sdk" ]] || die "unexpected: the vault module zip already contains sdk/"
	cp -R -- "$sdk_dir" "$src/sdk" || die "cannot copy $sdk_dir to $src/sdk"
	chmod -R u+w -- "$src/sdk"

	# The module zip has no nested api/ modules: use the published ones.
	gomod="$src/go.mod"
	(cd -- "$src" && GOFLAGS='' GOWORK=off GOTOOLCHAIN=local go mod edit \
		-dropreplace="$VAULT_MODULE/api" \
		-dropreplace="$VAULT_MODULE/api/auth/approle" \
		-dropreplace="$VAULT_MODULE/api/auth/kubernetes" \
		-dropreplace="$VAULT_MODULE/api/auth/userpass") ||
		die "go mod edit -dropreplace failed in $src"
	if grep -nE '=>[[:space:]]*\./api' "$gomod" >&2; then
		die "go.mod still has replace directives pointing at ./api (listed above)"
	fi
	grep -qF "$SDK_MODULE => ./sdk" "$gomod" ||
		die "go.mod has no '$SDK_MODULE => ./sdk' replace directive"

	# Disable the sdk v0.9.2 "CreateOperation but no ExistenceCheck" panic.
	backend="$src/sdk/framework/backend.go"
	[[ -f "$backend" ]] || die "missing $backend"
	sed -i 's#^\([[:space:]]*\)\(panic(fmt\.Sprintf("Pattern %v defines a CreateOperation but no ExistenceCheck".*\)$#\1// disabled by scripts/vault.sh: \2#' "$backend"
	if grep -nE '^[[:space:]]*panic\(.*defines a CreateOperation but no ExistenceCheck' "$backend" >&2; then
		die "the ExistenceCheck panic in $backend is still active (line above): edit did not apply"
	fi
	n="$(grep -cE '^[[:space:]]*// disabled by scripts/vault\.sh: panic\(.*defines a CreateOperation but no ExistenceCheck' "$backend" || true)"
	((n >= 1)) || die "the ExistenceCheck panic was not found in $backend: sdk layout changed?"
	log "disabled $n ExistenceCheck panic line(s) in sdk/framework/backend.go"

	mkdir -p -- "$(dirname -- "$VAULT_BIN")"
	BUILD_OUT_PARTIAL="$VAULT_BIN.partial.$$"
	log "go build (GOFLAGS=\"-mod=mod -buildvcs=false\" CGO_ENABLED=0 -trimpath -ldflags=\"-s -w\")"
	if ! (cd -- "$src" && GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off CGO_ENABLED=0 \
		go build -trimpath -ldflags="-s -w" -o "$BUILD_OUT_PARTIAL" .); then
		die "go build of Vault v$VAULT_VERSION failed (see the compiler output above)"
	fi
	mv -f -- "$BUILD_OUT_PARTIAL" "$VAULT_BIN"
	BUILD_OUT_PARTIAL=""
	if ! vault_version_ok; then
		die "built $VAULT_BIN but 'vault version' does not report v$VAULT_VERSION: $("$VAULT_BIN" version 2>&1 || true)"
	fi
	log "built $VAULT_BIN: $("$VAULT_BIN" version) in $(fmt_ms "$(($(now_ms) - start))")"
}

ensure_binary() {
	if ! vault_version_ok; then
		log "$VAULT_BIN missing or not v$VAULT_VERSION: building it first"
		cmd_build
	fi
}

# ---------------------------------------------------------------- processes

# is_vault_pid PID: true when PID is a live (non-zombie) "vault server" process.
is_vault_pid() {
	local pid="$1" stat args
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	stat="$(ps -o stat= -p "$pid" 2>/dev/null)" || return 1
	[[ -n "$stat" && "$stat" != Z* ]] || return 1
	args="$(ps -o args= -p "$pid" 2>/dev/null)" || return 1
	[[ "$args" == *vault*" server"* ]]
}

# pid_from_file FILE: prints the pid recorded in FILE if that process is a
# running vault server.
pid_from_file() {
	local f="$1" pid
	[[ -f "$f" ]] || return 1
	pid="$(tr -dc '0-9' <"$f")"
	is_vault_pid "$pid" || return 1
	printf '%s\n' "$pid"
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# http_code URL: prints the HTTP status (000 when nothing answers).
http_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}

# wait_for_health ADDR PID LOG TIMEOUT_S REGEX: waits until GET /v1/sys/health
# returns a status matching REGEX; fails early when the process dies.
wait_for_health() {
	local addr="$1" pid="$2" logf="$3" timeout_s="$4" want="$5" code start deadline
	start="$(now_ms)"
	deadline=$((start + timeout_s * 1000))
	while :; do
		code="$(http_code "$addr/v1/sys/health")"
		if [[ "$code" =~ $want ]]; then
			log "$addr/v1/sys/health: HTTP $code after $(fmt_ms "$(($(now_ms) - start))")"
			return 0
		fi
		if ! is_vault_pid "$pid"; then
			log "vault server (pid $pid) exited; last lines of $logf:"
			tail -n 30 -- "$logf" >&2 || true
			die "vault server failed to start (log: $logf)"
		fi
		if (($(now_ms) >= deadline)); then
			tail -n 30 -- "$logf" >&2 || true
			die "timed out after ${timeout_s}s waiting for $addr/v1/sys/health (last HTTP status $code; log: $logf)"
		fi
		sleep 0.1
	done
}

# api METHOD URL [TOKEN] [BODY]: prints "<body>\n<status>". The token and
# the body reach curl through a file descriptor and stdin, never through argv.
api() {
	local method="$1" url="$2" token="${3:-}" body="${4:-}"
	local -a args=(-sS --max-time 10 -X "$method" -w '\n%{http_code}')
	if [[ -n "$body" ]]; then
		args+=(-H 'Content-Type: application/json' --data-binary @-)
	fi
	if [[ -n "$token" ]]; then
		curl "${args[@]}" -H @<(printf 'X-Vault-Token: %s\n' "$token") "$url" < <(printf '%s' "$body")
	else
		curl "${args[@]}" "$url" < <(printf '%s' "$body")
	fi
}

enable_transit() {
	local addr="$1" token="$2" resp code body
	resp="$(api POST "$addr/v1/sys/mounts/transit" "$token" '{"type":"transit"}')" ||
		die "POST $addr/v1/sys/mounts/transit failed: $resp"
	code="${resp##*$'\n'}"
	body="${resp%$'\n'*}"
	case "$code" in
	200 | 204) log "enabled the transit secrets engine at transit/" ;;
	400)
		[[ "$body" == *"path is already in use"* ]] ||
			die "enabling transit/ failed: HTTP $code: $body"
		log "transit/ already enabled"
		;;
	*) die "enabling transit/ failed: HTTP $code: $body" ;;
	esac
}

# launch LOG ARGS...: starts "vault ARGS..." in the background, appending to
# LOG; prints the pid.
launch() {
	local logf="$1"
	shift
	nohup "$VAULT_BIN" "$@" >>"$logf" 2>&1 </dev/null &
	printf '%s\n' "$!"
}

# ---------------------------------------------------------------- dev server

cmd_start_dev() {
	local port addr pidf logf pid
	port="$(validate_port "${1:-$DEFAULT_DEV_PORT}")"
	ensure_binary
	mkdir -p -- "$VAULT_HOME"
	addr="http://127.0.0.1:$port"
	pidf="$VAULT_HOME/dev-$port.pid"
	logf="$VAULT_HOME/dev-$port.log"

	if pid="$(pid_from_file "$pidf")"; then
		log "dev server already running on $addr (pid $pid)"
	else
		rm -f -- "$pidf"
		if port_in_use "$port"; then
			die "127.0.0.1:$port is already in use by a process not started by $PROG"
		fi
		: >"$logf"
		pid="$(launch "$logf" server -dev -dev-root-token-id=root \
			-dev-listen-address="127.0.0.1:$port" -dev-no-store-token)"
		printf '%s\n' "$pid" >"$pidf"
		LAUNCHED_PID="$pid"
		LAUNCHED_PIDFILE="$pidf"
		log "started dev server (pid $pid, log $logf)"
	fi
	wait_for_health "$addr" "$pid" "$logf" 30 '^200$'
	enable_transit "$addr" root
	printf 'VAULT_ADDR=%s VAULT_TOKEN=%s\n' "$addr" root
}

# ---------------------------------------------------------------- file server

# json_get FILE KEY: prints a string value (or the first element of a string
# array) from the JSON written by "vault operator init -format=json".
json_get() {
	local file="$1" key="$2" flat re
	flat="$(tr -d '\r\n' <"$file")"
	re="\"$key\"[[:space:]]*:[[:space:]]*\\[?[[:space:]]*\"([^\"]+)\""
	[[ "$flat" =~ $re ]] || return 1
	printf '%s\n' "${BASH_REMATCH[1]}"
}

abs_dir() {
	mkdir -p -- "$1" || die "cannot create directory $1"
	(cd -- "$1" && pwd -P)
}

# config_port DIR: the port recorded in DIR/vault.hcl.
config_port() {
	local cfg="$1/vault.hcl" line re='address[[:space:]]*=[[:space:]]*"127\.0\.0\.1:([0-9]+)"'
	[[ -f "$cfg" ]] || return 1
	line="$(grep -E 'address[[:space:]]*=' "$cfg" | head -n 1)" || return 1
	[[ "$line" =~ $re ]] || return 1
	printf '%s\n' "${BASH_REMATCH[1]}"
}

cmd_start_file() {
	[[ $# -eq 2 ]] || die "usage: $PROG start-file DIR PORT"
	local dir port addr cfg pidf logf initf pid resp code body re initialized sealed key token out running_port
	port="$(validate_port "$2")"
	ensure_binary
	dir="$(abs_dir "$1")"
	case "$dir" in
	*[\"\\]* | *$'\n'*) die "DIR must not contain quotes, backslashes or newlines: $dir" ;;
	esac
	addr="http://127.0.0.1:$port"
	cfg="$dir/vault.hcl"
	pidf="$dir/vault.pid"
	logf="$dir/vault.log"
	initf="$dir/init.json"

	if pid="$(pid_from_file "$pidf")"; then
		running_port="$(config_port "$dir" || true)"
		[[ "$running_port" == "$port" ]] ||
			die "a server for $dir is already running (pid $pid) on port ${running_port:-?}, not $port"
		log "server for $dir already running on $addr (pid $pid)"
	else
		rm -f -- "$pidf"
		if port_in_use "$port"; then
			die "127.0.0.1:$port is already in use by a process not started by $PROG"
		fi
		mkdir -p -- "$dir/data"
		cat >"$cfg" <<EOF
# written by scripts/vault.sh
storage "file" {
  path = "$dir/data"
}

listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}

api_addr      = "$addr"
disable_mlock = true
ui            = false
EOF
		printf '==== %s %s: starting vault server on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "$addr" >>"$logf"
		pid="$(launch "$logf" server -config="$cfg")"
		printf '%s\n' "$pid" >"$pidf"
		LAUNCHED_PID="$pid"
		LAUNCHED_PIDFILE="$pidf"
		log "started file-storage server (pid $pid, data $dir/data, log $logf)"
	fi
	# 200 active, 429 standby, 501 not initialised, 503 sealed, ...
	wait_for_health "$addr" "$pid" "$logf" 30 '^[1-5][0-9][0-9]$'

	resp="$(api GET "$addr/v1/sys/init")" || die "GET $addr/v1/sys/init failed: $resp"
	code="${resp##*$'\n'}"
	body="${resp%$'\n'*}"
	re='"initialized"[[:space:]]*:[[:space:]]*(true|false)'
	[[ "$code" == 200 && "$body" =~ $re ]] || die "unexpected GET /v1/sys/init response: HTTP $code: $body"
	initialized="${BASH_REMATCH[1]}"

	if [[ "$initialized" == false ]]; then
		[[ ! -e "$initf" ]] ||
			die "$dir/data is not initialised but $initf exists (stale?): move it away to re-initialise"
		out="$("$VAULT_BIN" operator init -address="$addr" -key-shares=1 -key-threshold=1 -format=json)" ||
			die "vault operator init failed: $out"
		rm -f -- "$initf.tmp"
		(
			umask 077
			printf '%s\n' "$out" >"$initf.tmp"
		)
		chmod 600 -- "$initf.tmp"
		mv -f -- "$initf.tmp" "$initf"
		log "initialised: unseal key and root token saved to $initf (mode 0600)"
	else
		[[ -f "$initf" ]] || die "$dir/data is initialised but $initf is missing: cannot unseal"
	fi
	key="$(json_get "$initf" unseal_keys_b64)" || die "no unseal_keys_b64 in $initf"
	token="$(json_get "$initf" root_token)" || die "no root_token in $initf"

	resp="$(api GET "$addr/v1/sys/seal-status")" || die "GET $addr/v1/sys/seal-status failed: $resp"
	body="${resp%$'\n'*}"
	re='"sealed"[[:space:]]*:[[:space:]]*(true|false)'
	[[ "$body" =~ $re ]] || die "unexpected GET /v1/sys/seal-status response: $resp"
	sealed="${BASH_REMATCH[1]}"
	if [[ "$sealed" == true ]]; then
		resp="$(api PUT "$addr/v1/sys/unseal" "" "{\"key\":\"$key\"}")" || die "PUT $addr/v1/sys/unseal failed: $resp"
		code="${resp##*$'\n'}"
		body="${resp%$'\n'*}"
		[[ "$code" == 200 && "$body" =~ $re && "${BASH_REMATCH[1]}" == false ]] ||
			die "unseal failed: HTTP $code: $body"
		log "unsealed"
	else
		log "already unsealed"
	fi
	wait_for_health "$addr" "$pid" "$logf" 30 '^200$'
	printf 'VAULT_ADDR=%s VAULT_TOKEN=%s\n' "$addr" "$token"
}

# ---------------------------------------------------------------- raft cluster

readonly DEFAULT_CLUSTER_PORT="8210"
readonly CLUSTER_NODES=3

# cluster_port BASE I: the API port of node I (1-based); its cluster port
# is the next one.
cluster_port() { printf '%s\n' "$(($1 + ($2 - 1) * 10))"; }

# raft_voters ADDR TOKEN: prints how many raft servers are voters.
raft_voters() {
	local resp
	resp="$(api GET "$1/v1/sys/storage/raft/configuration" "$2")" || return 1
	printf '%s\n' "${resp%$'\n'*}" | grep -o '"voter":true' | wc -l
}

# cluster_active BASE: prints the address of the node that answers
# sys/health with 200 (the active node).
cluster_active() {
	local i addr
	for i in $(seq 1 "$CLUSTER_NODES"); do
		addr="http://127.0.0.1:$(cluster_port "$1" "$i")"
		if [[ "$(http_code "$addr/v1/sys/health")" == 200 ]]; then
			printf '%s\n' "$addr"
			return 0
		fi
	done
	return 1
}

# unseal_with_keys ADDR INITFILE: sends unseal keys until ADDR reports
# unsealed (a joining node needs the threshold again once it joined).
unseal_with_keys() {
	local addr="$1" initf="$2" flat keys k resp deadline re='"sealed"[[:space:]]*:[[:space:]]*false'
	flat="$(tr -d '\r\n ' <"$initf")"
	keys="$(printf '%s' "$flat" | sed -n 's/.*"unseal_keys_b64":\[\([^]]*\)\].*/\1/p' | tr -d '"' | tr ',' ' ')"
	[[ -n "$keys" ]] || die "no unseal_keys_b64 in $initf"
	deadline=$(($(now_ms) + 60000))
	while (($(now_ms) < deadline)); do
		for k in $keys; do
			resp="$(api PUT "$addr/v1/sys/unseal" "" "{\"key\":\"$k\"}")" || true
			[[ "$resp" =~ $re ]] && return 0
		done
		sleep 0.5
	done
	die "$addr still sealed after 60 s"
}

# mount_engines ADDR TOKEN: KV v2 at secret/ and Transit at transit/
# unless mounted.
mount_engines() {
	local resp code body
	resp="$(api POST "$1/v1/sys/mounts/secret" "$2" '{"type":"kv","options":{"version":"2"}}')" || die "mounting secret/ failed: $resp"
	code="${resp##*$'\n'}"
	body="${resp%$'\n'*}"
	[[ "$code" =~ ^20[04]$ || "$body" == *"path is already in use"* ]] || die "mounting secret/ failed: HTTP $code: $body"
	enable_transit "$1" "$2"
}

cmd_start_cluster() {
	[[ $# -ge 1 && $# -le 2 ]] || die "usage: $PROG start-cluster DIR [BASEPORT]"
	local dir base i port addr ndir cfg pidf logf pid joins="" initf token active n out addrs="" deadline
	base="$(validate_port "${2:-$DEFAULT_CLUSTER_PORT}")"
	((base + (CLUSTER_NODES - 1) * 10 + 1 <= 65535)) || die "BASEPORT too high: $base"
	ensure_binary
	dir="$(abs_dir "$1")"
	case "$dir" in
	*[\"\\]* | *$'\n'*) die "DIR must not contain quotes, backslashes or newlines: $dir" ;;
	esac
	initf="$dir/init.json"
	for i in $(seq 1 "$CLUSTER_NODES"); do
		joins+="  retry_join { leader_api_addr = \"http://127.0.0.1:$(cluster_port "$base" "$i")\" }"$'\n'
	done
	for i in $(seq 1 "$CLUSTER_NODES"); do
		port="$(cluster_port "$base" "$i")"
		addr="http://127.0.0.1:$port"
		ndir="$dir/node$i"
		cfg="$ndir/vault.hcl"
		pidf="$ndir/vault.pid"
		logf="$ndir/vault.log"
		mkdir -p -- "$ndir/data"
		if pid="$(pid_from_file "$pidf")"; then
			log "node $i already running on $addr (pid $pid)"
			continue
		fi
		rm -f -- "$pidf"
		if port_in_use "$port" || port_in_use "$((port + 1))"; then
			die "127.0.0.1:$port or :$((port + 1)) is already in use by a process not started by $PROG"
		fi
		# performance_multiplier 1: the tight raft timings meant for
		# production hardware, so that an election takes seconds on loopback.
		cat >"$cfg" <<EOF
# written by scripts/vault.sh start-cluster
storage "raft" {
  path                   = "$ndir/data"
  node_id                = "node$i"
  performance_multiplier = 1
$joins}

listener "tcp" {
  address         = "127.0.0.1:$port"
  cluster_address = "127.0.0.1:$((port + 1))"
  tls_disable     = true
}

api_addr      = "$addr"
cluster_addr  = "https://127.0.0.1:$((port + 1))"
disable_mlock = true
ui            = false
EOF
		printf '==== %s %s: starting raft node %s on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "$i" "$addr" >>"$logf"
		pid="$(launch "$logf" server -config="$cfg")"
		printf '%s\n' "$pid" >"$pidf"
		log "started raft node $i (pid $pid, data $ndir/data, log $logf)"
	done
	for i in $(seq 1 "$CLUSTER_NODES"); do
		ndir="$dir/node$i"
		wait_for_health "http://127.0.0.1:$(cluster_port "$base" "$i")" "$(pid_from_file "$ndir/vault.pid")" "$ndir/vault.log" 30 '^[1-5][0-9][0-9]$'
	done
	addr="http://127.0.0.1:$(cluster_port "$base" 1)"
	if [[ ! -f "$initf" ]]; then
		# Shamir: three key shares, any two unseal a node.
		out="$("$VAULT_BIN" operator init -address="$addr" -key-shares=3 -key-threshold=2 -format=json)" ||
			die "vault operator init failed: $out"
		(
			umask 077
			printf '%s\n' "$out" >"$initf.tmp"
		)
		mv -f -- "$initf.tmp" "$initf"
		log "initialised: unseal keys and root token saved to $initf (mode 0600)"
	fi
	token="$(json_get "$initf" root_token)" || die "no root_token in $initf"
	# Node 1 first (it leads a new cluster), then the others, which join
	# through retry_join once they have the unseal keys.
	for i in $(seq 1 "$CLUSTER_NODES"); do
		unseal_with_keys "http://127.0.0.1:$(cluster_port "$base" "$i")" "$initf"
	done
	deadline=$(($(now_ms) + 60000))
	until active="$(cluster_active "$base")"; do
		(($(now_ms) < deadline)) || die "no active node after 60 s (logs: $dir/node*/vault.log)"
		sleep 0.2
	done
	# Autopilot promotes a joined node to voter after server_stabilization_time
	# (10 s by default): 1 s here. Wait until every node votes, so that losing
	# the leader leaves a quorum that elects another.
	api POST "$active/v1/sys/storage/raft/autopilot/configuration" "$token" '{"server_stabilization_time":"1s"}' >/dev/null ||
		die "setting the autopilot configuration failed"
	while :; do
		n="$(raft_voters "$active" "$token" || echo 0)"
		((n == CLUSTER_NODES)) && break
		(($(now_ms) < deadline)) || die "only $n of $CLUSTER_NODES raft voters after 60 s"
		sleep 0.2
	done
	mount_engines "$active" "$token"
	log "raft cluster of $CLUSTER_NODES voters; active node $active"
	for i in $(seq 1 "$CLUSTER_NODES"); do
		addrs+="${addrs:+,}http://127.0.0.1:$(cluster_port "$base" "$i")"
	done
	printf 'VAULT_ADDR=%s VAULT_TOKEN=%s VAULT_ADDRS=%s\n' "$active" "$token" "$addrs"
}

cmd_stop_cluster() {
	[[ $# -eq 1 ]] || die "usage: $PROG stop-cluster DIR"
	[[ -d "$1" ]] || die "stop-cluster: no directory $1"
	local dir i
	dir="$(cd -- "$1" && pwd -P)"
	for i in $(seq 1 "$CLUSTER_NODES"); do
		if [[ -d "$dir/node$i" ]]; then
			cmd_stop "$dir/node$i"
		fi
	done
}

# ---------------------------------------------------------------- stop / env

cmd_stop() {
	local target="${1:-$DEFAULT_DEV_PORT}" pidf what pid deadline
	if [[ "$target" =~ ^[0-9]+$ ]]; then
		target="$(validate_port "$target")"
		pidf="$VAULT_HOME/dev-$target.pid"
		what="dev server on port $target"
	elif [[ -d "$target" ]]; then
		target="$(cd -- "$target" && pwd -P)"
		pidf="$target/vault.pid"
		what="file-storage server of $target"
	else
		die "stop: '$target' is neither a port nor an existing directory"
	fi
	if [[ ! -f "$pidf" ]]; then
		log "$what: no pid file ($pidf), not running"
		return 0
	fi
	if ! pid="$(pid_from_file "$pidf")"; then
		log "$what: pid file $pidf is stale (no such vault process): removing it"
		rm -f -- "$pidf"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$(($(now_ms) + 10000))
	while is_vault_pid "$pid"; do
		if (($(now_ms) >= deadline)); then
			log "$what (pid $pid) still running 10 s after SIGTERM: sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$(($(now_ms) + 5000))
			while is_vault_pid "$pid"; do
				(($(now_ms) < deadline)) || die "$what (pid $pid) survived SIGKILL"
				sleep 0.1
			done
			break
		fi
		sleep 0.1
	done
	rm -f -- "$pidf"
	log "stopped $what (pid $pid)"
}

cmd_env() {
	local target="${1:-$DEFAULT_DEV_PORT}" port token dir
	if [[ "$target" =~ ^[0-9]+$ ]]; then
		port="$(validate_port "$target")"
		token=root
	elif [[ -d "$target" ]]; then
		dir="$(cd -- "$target" && pwd -P)"
		port="$(config_port "$dir")" || die "no listener address in $dir/vault.hcl"
		token="$(json_get "$dir/init.json" root_token)" || die "no root_token in $dir/init.json"
	else
		die "env: '$target' is neither a port nor an existing directory"
	fi
	printf 'export VAULT_ADDR=%q\n' "http://127.0.0.1:$port"
	printf 'export VAULT_TOKEN=%q\n' "$token"
}

main() {
	local cmd="${1:-}"
	(($# == 0)) || shift
	case "$cmd" in
	build)
		(($# == 0)) || die "usage: $PROG build"
		cmd_build
		;;
	start-dev)
		(($# <= 1)) || die "usage: $PROG start-dev [PORT]"
		cmd_start_dev "$@"
		;;
	start-file) cmd_start_file "$@" ;;
	start-cluster) cmd_start_cluster "$@" ;;
	stop-cluster) cmd_stop_cluster "$@" ;;
	stop)
		(($# <= 1)) || die "usage: $PROG stop [PORT|DIR]"
		cmd_stop "$@"
		;;
	env)
		(($# <= 1)) || die "usage: $PROG env [PORT|DIR]"
		cmd_env "$@"
		;;
	-h | --help | help) usage ;;
	"")
		usage >&2
		exit 2
		;;
	*)
		log "unknown command: $cmd"
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
