#!/usr/bin/env bash
# kchat's load balancer on this machine, without Docker: Debian's haproxy
# package run with the repository's deploy/haproxy/haproxy.cfg (the file
# docker-compose.scale.yml mounts) in front of gateways that already run.
# Not the package's system service: a process of its own, in the
# foreground of a background job, its log in a file.
#
# Usage: scripts/haproxy.sh COMMAND
#   install   install Debian's haproxy with apt-get unless a haproxy binary is found
#   up        install if missing, check the config, start HAProxy on $LB_ADDR in front of
#             $GATEWAYS, wait until it accepts connections, then print the env lines (on
#             stdout; progress on stderr), so `eval "$(scripts/haproxy.sh up)"` works.
#             Running already with the same settings: nothing to do; with others: an error.
#   down      stop the HAProxy this script started (soft stop, then SIGKILL after 10 s).
#   status    whether it runs, and each gateway as HAProxy sees it (UP/DOWN, open and total
#             connections); exit 0 only when it runs.
#   check     only check the config with $GATEWAYS (haproxy -c).
#   env       print the env lines.
#
# Environment:
#   GATEWAYS       the gateways, comma-separated host:port, 1 to 8 of them
#                  (default 127.0.0.1:8002, a gateway binary's default address)
#   LB_ADDR        where HAProxy listens for clients (default 127.0.0.1:18080)
#   LB_STATS_ADDR  HAProxy's stats page, CSV at /;csv (default 127.0.0.1:18081; "off": none)
#   LB_DIR         state dir: pid file, log, settings (default
#                  ${KCHAT_SERVICES_DIR:-$HOME/.cache/kchat-services}/haproxy); one HAProxy
#                  per state dir, so give each a dir of its own to run several
#   LB_TIMEOUT     seconds to wait for HAProxy to accept connections (default 30)
#   HAPROXY        the haproxy binary (default: haproxy on PATH, else /usr/sbin/haproxy)
#
# The gateways must trust this proxy's X-Forwarded-For: start them with
# KCHAT_TRUSTED_PROXIES=127.0.0.1 (HAProxy connects to loopback gateways from
# 127.0.0.1), or their limits per address count every client as one.

# The bash -c snippets below take $0/$1 as arguments on purpose.
# shellcheck disable=SC2016
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CFG=$(cd "$SCRIPT_DIR/.." && pwd)/deploy/haproxy/haproxy.cfg
GATEWAYS=${GATEWAYS:-127.0.0.1:8002}
LB_ADDR=${LB_ADDR:-127.0.0.1:18080}
LB_STATS_ADDR=${LB_STATS_ADDR:-127.0.0.1:18081}
LB_DIR=${LB_DIR:-${KCHAT_SERVICES_DIR:-${HOME:-/root}/.cache/kchat-services}/haproxy}
LB_TIMEOUT=${LB_TIMEOUT:-30}
MAX_GATEWAYS=8 # the server lines deploy/haproxy/haproxy.cfg has

PID_FILE=$LB_DIR/haproxy.pid
LOG_FILE=$LB_DIR/haproxy.log
SETTINGS=$LB_DIR/settings # what the running HAProxy was started with

log() { echo "haproxy.sh: $*" >&2; }
die() {
	echo "haproxy.sh: ERROR: $*" >&2
	exit 1
}

# The same retry as install_pkgs in scripts/services.sh.
install_pkgs() {
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q "$@" </dev/null >&2; then
		# Package lists missing or stale: refresh them once and retry.
		apt-get update -q </dev/null >&2
		apt-get install -y -q "$@" </dev/null >&2
	fi
}

find_haproxy() {
	local cand
	for cand in "${HAPROXY:-}" "$(command -v haproxy || true)" /usr/sbin/haproxy; do
		if [[ -n $cand && -x $cand ]]; then
			echo "$cand"
			return 0
		fi
	done
	return 1
}

ensure_haproxy() {
	[[ -n ${HAPROXY_BIN:-} ]] && return 0
	if ! HAPROXY_BIN=$(find_haproxy); then
		# Debian's package also installs a system service with a config of its
		# own (/etc/haproxy/haproxy.cfg, which listens nowhere); this script
		# neither uses nor stops it.
		install_pkgs haproxy
		HAPROXY_BIN=$(find_haproxy) || die "no haproxy binary after installing the haproxy package"
	fi
}

# host and port of an address such as 127.0.0.1:18080, [::1]:18080 or :8002.
addr_host() {
	local h=${1%:*}
	h=${h#[}
	h=${h%]}
	[[ -z $h || $h == "*" || $h == 0.0.0.0 ]] && h=127.0.0.1
	[[ $h == :: ]] && h=::1
	echo "$h"
}
addr_port() { echo "${1##*:}"; }

port_open() { # true when something accepts TCP connections at address $1
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$(addr_host "$1")" "$(addr_port "$1")" 2>/dev/null
}

# HTTP GET of path $2 at address $1, the whole response on stdout (pure bash, no curl).
http_get() {
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
		cat <&3' "$(addr_host "$1")" "$(addr_port "$1")" "$2" 2>/dev/null
}

# Export LB_GATEWAY_1.. from $GATEWAYS, and the other variables the config reads.
export_config_env() {
	local -a gws
	local i gw
	IFS=, read -r -a gws <<<"$GATEWAYS"
	((${#gws[@]} >= 1)) || die "GATEWAYS is empty: name the gateways, e.g. GATEWAYS=127.0.0.1:18002,127.0.0.1:18012"
	((${#gws[@]} <= MAX_GATEWAYS)) || die "GATEWAYS names ${#gws[@]} gateways; $CFG has server lines for $MAX_GATEWAYS"
	for i in $(seq 1 "$MAX_GATEWAYS"); do
		unset "LB_GATEWAY_$i"
	done
	for i in "${!gws[@]}"; do
		gw=${gws[$i]// /}
		[[ $gw =~ ^.+:[0-9]+$ ]] || die "GATEWAYS entry $((i + 1)) ($gw) is not host:port"
		export "LB_GATEWAY_$((i + 1))=$gw"
	done
	[[ $LB_ADDR =~ ^.*:[0-9]+$ ]] || die "LB_ADDR ($LB_ADDR) is not host:port"
	export LB_ADDR
	if [[ $LB_STATS_ADDR == off ]]; then
		unset LB_STATS_ADDR
	else
		export LB_STATS_ADDR
	fi
}

settings() { echo "GATEWAYS=$GATEWAYS LB_ADDR=$LB_ADDR LB_STATS_ADDR=${LB_STATS_ADDR:-off} CFG=$CFG"; }

print_env() {
	echo "export LB_URL=http://$(addr_host "$LB_ADDR"):$(addr_port "$LB_ADDR")"
	echo "export KCHAT_GATEWAY_WS=ws://$(addr_host "$LB_ADDR"):$(addr_port "$LB_ADDR")/ws"
}

# The pid of the HAProxy this script started from $LB_DIR, if it runs.
lb_pid() {
	local pid
	[[ -f $PID_FILE ]] || return 1
	pid=$(<"$PID_FILE")
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $CFG" || return 1
	# A zombie (killed, not yet reaped) counts as gone.
	[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
	echo "$pid"
}

check_config() {
	local out
	if ! out=$("$HAPROXY_BIN" -c -f "$CFG" 2>&1); then
		echo "$out" >&2
		die "$CFG is not valid with $(settings)"
	fi
	log "config valid: $CFG with $(settings)"
}

lb_up() {
	local pid start=$SECONDS
	mkdir -p "$LB_DIR"
	exec 9>"$LB_DIR/.lock"
	flock -w 60 9 || die "could not lock $LB_DIR/.lock"
	if pid=$(lb_pid); then
		if [[ $(cat "$SETTINGS" 2>/dev/null) == "$(settings)" ]]; then
			log "already running (pid $pid) with $(settings)"
			return 0
		fi
		die "already running (pid $pid) with $(cat "$SETTINGS" 2>/dev/null): run down first"
	fi
	ensure_haproxy
	export_config_env
	check_config
	port_open "$LB_ADDR" && die "$LB_ADDR is taken: set LB_ADDR to a free address"
	if [[ -n ${LB_STATS_ADDR:-} ]] && port_open "$LB_STATS_ADDR"; then
		die "$LB_STATS_ADDR is taken: set LB_STATS_ADDR to a free address (or off)"
	fi
	[[ -f $LOG_FILE ]] && mv -f "$LOG_FILE" "$LOG_FILE.prev"
	# -db: the foreground, no daemon (its log lines go to stdout, into the log file).
	setsid nohup "$HAPROXY_BIN" -db -f "$CFG" </dev/null >"$LOG_FILE" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$PID_FILE"
	settings >"$SETTINGS"
	until port_open "$LB_ADDR"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$LOG_FILE" >&2 || true
			rm -f "$PID_FILE"
			die "haproxy (pid $pid) exited during startup (log: $LOG_FILE)"
		fi
		((SECONDS - start < LB_TIMEOUT)) || die "haproxy did not accept connections on $LB_ADDR within ${LB_TIMEOUT}s (log: $LOG_FILE)"
		sleep 0.1
	done
	log "up: pid $pid on $LB_ADDR in front of $GATEWAYS${LB_STATS_ADDR:+, stats http://$LB_STATS_ADDR/}; log $LOG_FILE"
}

lb_down() {
	local pid i
	mkdir -p "$LB_DIR"
	exec 9>"$LB_DIR/.lock"
	flock -w 60 9 || die "could not lock $LB_DIR/.lock"
	if ! pid=$(lb_pid); then
		log "not running (no HAProxy started from $LB_DIR)"
		rm -f "$PID_FILE"
		return 0
	fi
	# SIGUSR1: soft stop; open WebSockets are closed after the config's
	# hard-stop-after (5 s).
	kill -USR1 "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		lb_pid >/dev/null || break
		sleep 0.1
	done
	if lb_pid >/dev/null; then
		log "pid $pid still running 10 s after SIGUSR1, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$PID_FILE"
	log "stopped pid $pid"
}

lb_status() {
	local pid stats
	if ! pid=$(lb_pid); then
		echo "haproxy: down (none started from $LB_DIR)"
		return 3
	fi
	echo "haproxy: up   pid $pid, $(cat "$SETTINGS" 2>/dev/null), log $LOG_FILE"
	# The stats address it was started with.
	stats=$(sed -n 's/.* LB_STATS_ADDR=\([^ ]*\) .*/\1/p' "$SETTINGS" 2>/dev/null)
	if [[ -z $stats || $stats == off ]]; then
		return 0
	fi
	# The stats CSV: pxname,svname,qcur,qmax,scur(5),smax,slim,stot(8),... status(18),... check_status(37)
	while IFS=, read -r -a f; do
		[[ ${f[0]:-} == gateways && ${f[1]:-} != BACKEND ]] || continue
		printf '  %-10s %-5s open %-5s total %-6s check %s\n' "${f[1]}" "${f[17]}" "${f[4]}" "${f[7]}" "${f[36]}"
	done < <(http_get "$stats" "/;csv" | tr -d '\r')
	return 0
}

usage() {
	sed -n '2,/^$/{/^$/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}" >&2
}

case ${1:-} in
install)
	ensure_haproxy
	log "$("$HAPROXY_BIN" -v | head -n 1) at $HAPROXY_BIN"
	;;
up)
	lb_up
	print_env
	;;
down) lb_down ;;
status) lb_status ;;
check)
	ensure_haproxy
	export_config_env
	check_config
	;;
env) print_env ;;
-h | --help | help) usage ;;
*)
	usage
	exit 2
	;;
esac
