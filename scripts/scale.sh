#!/usr/bin/env bash
# kchat replicated on this machine, without Docker: the deployment of
# docker-compose.scale.yml (README, "Scaling out") as processes, in one
# command. It reuses scripts/services.sh for the 3-broker test cluster
# (KRaft, RF 3, min ISR 2) and Redis, and scripts/haproxy.sh for the load
# balancer; it builds the kchat binaries itself and runs, as in the compose
# file:
#   - 2 producers, 2 consumers (one group, one KCHAT_RECEIPT_KEY), 2 answerers
#     (one group, KCHAT_ANSWERER_INSTANCE scale-answerer-1 and -2), 3 gateways
#     (the same KCHAT_COOKIE_KEY and KCHAT_ANSWER_KEY, KCHAT_TRUSTED_PROXIES=
#     127.0.0.1, queries through the producer service), every one with the
#     three brokers and KCHAT_TOPIC_REPLICATION_FACTOR=3;
#   - HAProxy with deploy/haproxy/haproxy.cfg in front of the gateways.
# Compose gives the gateways both producers (and both consumers) behind one
# DNS name; here gateway N is given producer and consumer ((N-1) mod 2)+1.
# The keys are random, made once into the state dir (as make compose-env).
#
# Usage: scripts/scale.sh COMMAND
#   up      start what does not run: the cluster (services.sh cluster-up) unless its three
#           nodes are up, Redis (services.sh start-redis) unless it answers, the binaries
#           (go build), the replicas, then HAProxy; wait until every /readyz answers 200 and
#           HAProxy sees every gateway UP; print the env lines (on stdout; progress on
#           stderr), so `eval "$(scripts/scale.sh up)"` works. A replica that runs with the
#           same settings and binary is kept; one whose settings or binary changed is
#           restarted; one beyond the counts asked for is stopped.
#   down    stop HAProxy, then the gateways, the answerers, the producers and the consumers
#           (SIGTERM, then SIGKILL after SCALE_STOP_TIMEOUT). The cluster and Redis keep
#           running: they are shared (make cluster-down and make services-down stop them).
#   status  each process (up and ready, up and not ready, down), HAProxy's view of the
#           gateways, the cluster's nodes, Redis; exit 0 only when everything is up.
#   check   up (or reuse a deployment that is up), then prove it: the topics have 3
#           replicas, 2 or more in sync; a question through HAProxy over WebSocket
#           (cmd/ask) and one to each gateway are answered with citations; a message
#           POSTed through each producer is taken through the consumers; then down, unless
#           everything was up before. Every step must pass: none is ever skipped.
#   env     print the env lines.
#
# Environment:
#   SCALE_DIR          state dir: binaries, pid files, logs, keys, HAProxy's LB_DIR (default
#                      ${KCHAT_SERVICES_DIR:-$HOME/.cache/kchat-services}/scale)
#   SCALE_PORT_BASE    first port (default 32000): producer N on BASE+10(N-1), consumer N on
#                      that +1, gateway N +2, answerer N +3, each one's admin listener
#                      (KCHAT_ADMIN_ADDR) 100 above; HAProxy on BASE+80, its stats on BASE+81.
#                      32000-32199 is above the free ports the test targets draw
#                      (20000-31999) and below Linux's ephemeral range (32768-60999), clear
#                      of services.sh's ports and of kchat's defaults (8000-8003, 8100-8103)
#   SCALE_PRODUCERS, SCALE_CONSUMERS, SCALE_ANSWERERS, SCALE_GATEWAYS
#                      replicas of each (default 2, 2, 2, 3; 1 to 8 each)
#   SCALE_REDIS        single (default: the Redis of services.sh, 127.0.0.1:6379) or cluster
#                      (the Redis test cluster of services.sh redis-cluster-up, :7000-7005)
#   SCALE_TRACING      auto (default: OTLP to the Jaeger of services.sh up when it answers on
#                      127.0.0.1:4318, else off), otlp (Jaeger required) or off
#   SCALE_TOPIC_PREFIX prefix of the topics and consumer groups (default "scale."): the
#                      cluster is shared with the fault tests; Redis keys get "kchat-scale:"
#   SCALE_EXTRA_ENV    extra KCHAT_*=value words for every kchat process, e.g.
#                      "KCHAT_LOG_LEVEL=debug KCHAT_EXTRACTIVE_PACE=60ms". The caller's own
#                      KCHAT_* and OTEL_* variables are not passed on.
#   SCALE_TIMEOUT      seconds to wait for readiness (default 120)
#   SCALE_STOP_TIMEOUT seconds a process has after SIGTERM before SIGKILL (default 30)
#   GO, JAVA           the go and java binaries (default: on PATH)

# The bash -c snippets below take $0/$1 as arguments on purpose.
# shellcheck disable=SC2016
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
SERVICES_DIR=${KCHAT_SERVICES_DIR:-${HOME:-/root}/.cache/kchat-services}
DIR=${SCALE_DIR:-$SERVICES_DIR/scale}
LAST=$DIR/settings # the settings of the last up
# status and env describe what the last up started: the settings it had are their
# defaults (up itself takes the environment's, else the defaults below).
if [[ ${1:-} == status || ${1:-} == env ]] && [[ -f $LAST ]]; then
	while IFS='=' read -r k v; do
		if [[ $k =~ ^SCALE_(PORT_BASE|PRODUCERS|CONSUMERS|ANSWERERS|GATEWAYS|REDIS|TOPIC_PREFIX)$ && -z ${!k+set} ]]; then
			declare "$k=$v"
		fi
	done <"$LAST"
fi
PORT_BASE=${SCALE_PORT_BASE:-32000}
REDIS_MODE=${SCALE_REDIS:-single}
TRACING=${SCALE_TRACING:-auto}
TOPIC_PREFIX=${SCALE_TOPIC_PREFIX-scale.}
TIMEOUT=${SCALE_TIMEOUT:-120}
STOP_TIMEOUT=${SCALE_STOP_TIMEOUT:-30}
GO=${GO:-go}
JAVA=${JAVA:-java}
declare -A COUNT=(
	[producer]=${SCALE_PRODUCERS:-2}
	[consumer]=${SCALE_CONSUMERS:-2}
	[answerer]=${SCALE_ANSWERERS:-2}
	[gateway]=${SCALE_GATEWAYS:-3}
)
declare -A OFFSET=([producer]=0 [consumer]=1 [gateway]=2 [answerer]=3)
KINDS=(producer consumer answerer gateway) # start order; gateways need the others
STOP_ORDER=(gateway answerer producer consumer)

HOST=127.0.0.1
SERVICES=$SCRIPT_DIR/services.sh
HAPROXY_SH=$SCRIPT_DIR/haproxy.sh
SELF=$SCRIPT_DIR/scale.sh
BIN=$DIR/bin
KEYS=$DIR/keys
LB_DIR=$DIR/haproxy
LB_ADDR=$HOST:$((PORT_BASE + 80))
LB_STATS_ADDR=$HOST:$((PORT_BASE + 81))
REDIS_URL=redis://$HOST:6379/0
REDIS_CLUSTER_NODES=$HOST:7000,$HOST:7001,$HOST:7002
OTLP_PORT=4318

log() { echo "scale.sh: $*" >&2; }
die() {
	echo "scale.sh: ERROR: $*" >&2
	exit 1
}

validate() {
	local k
	if ! [[ $PORT_BASE =~ ^[0-9]+$ ]] || ((PORT_BASE < 1024 || PORT_BASE + 199 > 65535)); then
		die "SCALE_PORT_BASE ($PORT_BASE) must be a number from 1024 to 65336"
	fi
	for k in "${KINDS[@]}"; do
		[[ ${COUNT[$k]} =~ ^[1-8]$ ]] || die "SCALE_${k^^}S (${COUNT[$k]}) must be 1 to 8"
	done
	[[ $REDIS_MODE == single || $REDIS_MODE == cluster ]] || die "SCALE_REDIS ($REDIS_MODE) must be single or cluster"
	[[ $TRACING == auto || $TRACING == otlp || $TRACING == off ]] || die "SCALE_TRACING ($TRACING) must be auto, otlp or off"
	[[ $TOPIC_PREFIX =~ ^[A-Za-z0-9._-]*$ ]] || die "SCALE_TOPIC_PREFIX ($TOPIC_PREFIX) may hold only letters, digits, '.', '_' and '-'"
}

# ---------------------------------------------------------------- helpers

take_lock() {
	mkdir -p "$DIR"
	chmod 700 "$DIR" # the env files hold the keys
	exec 9>"$DIR/.lock"
	flock -w 600 9 || die "could not lock $DIR/.lock"
}

port_open() { # true when something accepts TCP connections on $HOST:$1
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

redis_answers() { # $1: port
	local reply
	reply=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "PING\r\n" >&3
		head -c 5 <&3' "$HOST" "$1" 2>/dev/null) || return 1
	[[ $reply == "+PONG" ]]
}

api_port() { echo $((PORT_BASE + OFFSET[$1] + 10 * ($2 - 1))); } # kind, replica
admin_port() { echo $(($(api_port "$1" "$2") + 100)); }
url_of() { echo "http://$HOST:$(api_port "$1" "$2")"; }

urls_of() { # every replica's URL of kind $1, comma-separated
	local n out=""
	for ((n = 1; n <= COUNT[$1]; n++)); do
		out+="${out:+,}$(url_of "$1" "$n")"
	done
	echo "$out"
}

# The pid of process $1 (kind-N) if it runs from our binary; a zombie counts as gone.
proc_pid() {
	local name=$1 pid
	[[ -f $DIR/$name.pid ]] || return 1
	pid=$(<"$DIR/$name.pid")
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	[[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "$BIN/${name%-*} " ]] || return 1
	alive "$pid" || return 1
	echo "$pid"
}

alive() { # pid $1 runs (a zombie, killed but not reaped yet, does not)
	kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

ready() { # $1: base URL; GET /readyz answers 200
	curl -fsS -m 3 -o /dev/null "$1/readyz" 2>/dev/null
}

# ---------------------------------------------------------------- dependencies

# The cluster's brokers, from services.sh; with $1 = up, cluster-up (which takes
# services.sh's lock and makes a cluster with a node down whole again) when not all three
# nodes are up.
cluster_brokers() {
	local line
	if [[ ${1:-} == up ]] && ! bash "$SERVICES" cluster-status >/dev/null 2>&1; then
		log "the 3-broker cluster is not all up: services.sh cluster-up ..."
		line=$(bash "$SERVICES" cluster-up) || die "services.sh cluster-up failed"
	else
		line=$(bash "$SERVICES" cluster-env)
	fi
	line=${line##*KCHAT_TEST_CLUSTER_BROKERS=}
	[[ $line =~ ^[0-9.:,]+$ ]] || die "could not read the cluster's brokers from services.sh (got '$line')"
	echo "$line"
}

ensure_redis() {
	local n
	if [[ $REDIS_MODE == single ]]; then
		redis_answers 6379 && return 0
		log "Redis does not answer on $HOST:6379: services.sh start-redis ..."
		bash "$SERVICES" start-redis || die "services.sh start-redis failed"
		return 0
	fi
	for n in 0 1 2 3 4 5; do
		redis_answers $((7000 + n)) || {
			log "the Redis test cluster is not all up: services.sh redis-cluster-up ..."
			bash "$SERVICES" redis-cluster-up >/dev/null || die "services.sh redis-cluster-up failed"
			return 0
		}
	done
}

tracing_env() { # the tracing variables every process gets
	local mode=$TRACING
	if [[ $mode == auto ]]; then
		if port_open "$OTLP_PORT"; then mode=otlp; else mode=off; fi
	elif [[ $mode == otlp ]] && ! port_open "$OTLP_PORT"; then
		die "SCALE_TRACING=otlp, but nothing accepts OTLP on $HOST:$OTLP_PORT (make services-up starts Jaeger)"
	fi
	echo "KCHAT_TRACING=$mode"
	[[ $mode == off ]] || echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://$HOST:$OTLP_PORT"
}

# Random keys, made once and kept: restarted gateways still accept the cookies they signed.
ensure_keys() {
	local k
	(
		umask 077
		touch "$KEYS"
		for k in KCHAT_COOKIE_KEY KCHAT_ANSWER_KEY KCHAT_RECEIPT_KEY; do
			grep -q "^$k=." "$KEYS" && continue
			echo "$k=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >>"$KEYS"
			log "$k: new random key in $KEYS"
		done
	)
}

key() { sed -n "s/^$1=//p" "$KEYS"; }

# Build every binary into $DIR/build (kept: the next build relinks only what changed), then
# put those that changed into $BIN by a rename: a process running the old one keeps it, and
# up restarts it on the new one.
build() {
	local start=$SECONDS b
	mkdir -p "$DIR/build" "$BIN"
	log "building producer, consumer, answerer, gateway and ask into $BIN ..."
	(cd "$ROOT" && "$GO" build -o "$DIR/build/" ./cmd/producer ./cmd/consumer ./cmd/answerer ./cmd/gateway ./cmd/ask) </dev/null >&2 9>&- ||
		die "go build failed (see above)"
	for b in producer consumer answerer gateway ask; do
		cmp -s "$DIR/build/$b" "$BIN/$b" && continue
		cp "$DIR/build/$b" "$BIN/.$b.new"
		mv -f "$BIN/.$b.new" "$BIN/$b"
	done
	log "built in $((SECONDS - start))s"
}

# ---------------------------------------------------------------- the processes

# The environment of process kind $1, replica $2: one KEY=value a line. Mirrors
# docker-compose.scale.yml's x-kchat-env and each service's own variables.
proc_env() {
	local kind=$1 n=$2 w
	local -a extra=()
	echo "KCHAT_KAFKA_BROKERS=$BROKERS"
	echo "KCHAT_TOPIC_REPLICATION_FACTOR=3"
	echo "KCHAT_TOPIC_PREFIX=$TOPIC_PREFIX"
	echo "KCHAT_LOG_FORMAT=json"
	echo "$TRACING_ENV"
	echo "KCHAT_ADMIN_ADDR=$HOST:$(admin_port "$kind" "$n")"
	case $kind in
	producer) echo "KCHAT_PRODUCER_ADDR=$HOST:$(api_port producer "$n")" ;;
	consumer)
		echo "KCHAT_CONSUMER_ADDR=$HOST:$(api_port consumer "$n")"
		echo "KCHAT_CONSUMER_GROUP=${TOPIC_PREFIX}kchat-consumer"
		echo "KCHAT_RECEIPT_KEY=$(key KCHAT_RECEIPT_KEY)"
		;;
	answerer)
		echo "KCHAT_ANSWERER_ADDR=$HOST:$(api_port answerer "$n")"
		echo "KCHAT_ANSWERER_GROUP=${TOPIC_PREFIX}kchat-answerer"
		echo "KCHAT_ANSWERER_INSTANCE=scale-answerer-$n"
		echo "KCHAT_ANSWER_KEY=$(key KCHAT_ANSWER_KEY)"
		;;
	gateway)
		echo "KCHAT_GATEWAY_ADDR=$HOST:$(api_port gateway "$n")"
		echo "KCHAT_COOKIE_KEY=$(key KCHAT_COOKIE_KEY)"
		echo "KCHAT_ANSWER_KEY=$(key KCHAT_ANSWER_KEY)"
		echo "KCHAT_ALLOWED_ORIGINS=http://$LB_ADDR,http://localhost:${LB_ADDR##*:}"
		# HAProxy connects to loopback gateways from 127.0.0.1.
		echo "KCHAT_TRUSTED_PROXIES=$HOST"
		echo "KCHAT_QUERY_PUBLISHER=producer"
		echo "KCHAT_PRODUCER_URL=$(url_of producer $((((n - 1) % COUNT[producer]) + 1)))"
		echo "KCHAT_CONSUMER_URL=$(url_of consumer $((((n - 1) % COUNT[consumer]) + 1)))"
		;;
	esac
	if [[ $kind == answerer || $kind == gateway ]]; then
		if [[ $REDIS_MODE == single ]]; then
			echo "KCHAT_REDIS_URL=$REDIS_URL"
		else
			echo "KCHAT_REDIS_CLUSTER_NODES=$REDIS_CLUSTER_NODES"
		fi
		echo "KCHAT_REDIS_PREFIX=kchat-scale:"
	fi
	read -r -a extra <<<"${SCALE_EXTRA_ENV:-}"
	for w in "${extra[@]}"; do
		[[ $w =~ ^[A-Z][A-Z0-9_]*=.*$ ]] || die "SCALE_EXTRA_ENV: '$w' is not NAME=value"
		echo "$w"
	done
}

# Stop the processes named (all at once: SIGTERM, then wait, then SIGKILL).
stop_procs() {
	local name pid i left
	local -A pids=()
	for name in "$@"; do
		if pid=$(proc_pid "$name"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids[$name]=$pid
		fi
		rm -f "$DIR/$name.pid"
	done
	((${#pids[@]})) || return 0
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		left=0
		for name in "${!pids[@]}"; do
			if alive "${pids[$name]}"; then left=1; fi
		done
		((left)) || break
		sleep 0.1
	done
	for name in "${!pids[@]}"; do
		if alive "${pids[$name]}"; then
			log "$name (pid ${pids[$name]}) still running ${STOP_TIMEOUT}s after SIGTERM, sending SIGKILL"
			kill -KILL "${pids[$name]}" 2>/dev/null || true
		fi
		log "$name: stopped (pid ${pids[$name]})"
	done
}

# Start process kind $1 replica $2 unless it runs with the same environment and binary.
start_proc() {
	local kind=$1 n=$2 name pid port exe v restart=0
	local -a envs unset_args=()
	name=$kind-$n
	port=$(api_port "$kind" "$n")
	proc_env "$kind" "$n" >"$DIR/$name.env.new"
	if pid=$(proc_pid "$name"); then
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		if [[ $exe == *" (deleted)" ]]; then
			log "$name: pid $pid runs a binary rebuilt since, restarting it"
		elif ! cmp -s "$DIR/$name.env.new" "$DIR/$name.env"; then
			log "$name: pid $pid runs with other settings, restarting it"
		else
			rm -f "$DIR/$name.env.new"
			log "$name: already running (pid $pid) on $HOST:$port"
			return 0
		fi
		stop_procs "$name"
		restart=1
	fi
	port_open "$port" && die "$HOST:$port is taken by a process scale.sh did not start: set SCALE_PORT_BASE"
	port_open "$(admin_port "$kind" "$n")" && die "$HOST:$(admin_port "$kind" "$n") is taken by a process scale.sh did not start: set SCALE_PORT_BASE"
	mv -f "$DIR/$name.env.new" "$DIR/$name.env"
	mapfile -t envs <"$DIR/$name.env"
	# The caller's own KCHAT_* and OTEL_* settings stay out: only the file's count.
	while read -r v; do unset_args+=(-u "$v"); done < <(compgen -e | grep -E '^(KCHAT|OTEL)_' || true)
	[[ -f $DIR/$name.log ]] && mv -f "$DIR/$name.log" "$DIR/$name.log.prev"
	setsid nohup env "${unset_args[@]}" "${envs[@]}" "$BIN/$kind" </dev/null >"$DIR/$name.log" 2>&1 9>&- &
	echo "$!" >"$DIR/$name.pid"
	log "$name: started pid $! on $HOST:$port (admin $HOST:$(admin_port "$kind" "$n")), log $DIR/$name.log"
	# A restart is a rolling one: the next replica is stopped once this one is ready.
	if ((restart)); then wait_ready "$name"; fi
}

names_of() { # every replica's name (kind-N) of the kinds named
	local kind n
	for kind in "$@"; do
		for ((n = 1; n <= COUNT[$kind]; n++)); do
			echo "$kind-$n"
		done
	done
}

# Wait until every process named (kind-N) answers /readyz with 200.
wait_ready() {
	local start=$SECONDS name waiting
	while :; do
		waiting=""
		for name in "$@"; do
			# Not proc_pid: a process just started may not have exec'd the binary yet.
			if ! alive "$(cat "$DIR/$name.pid" 2>/dev/null || echo none)"; then
				tail -n 20 "$DIR/$name.log" >&2 2>/dev/null || true
				die "$name exited during startup (log: $DIR/$name.log)"
			fi
			ready "$(url_of "${name%-*}" "${name##*-}")" || waiting+=" $name"
		done
		[[ -z $waiting ]] && return 0
		if ((SECONDS - start >= TIMEOUT)); then
			for name in $waiting; do
				echo "---- tail of $DIR/$name.log" >&2
				tail -n 10 "$DIR/$name.log" >&2 2>/dev/null || true
			done
			die "not ready within ${TIMEOUT}s:$waiting"
		fi
		sleep 0.3
	done
}

# Every process named by a pid file, kind by kind in stop order.
running_names() {
	local kind f
	for kind in "$@"; do
		for f in "$DIR/$kind"-[0-9]*.pid; do
			[[ -e $f ]] || continue
			f=${f##*/}
			echo "${f%.pid}"
		done
	done
}

gateway_addrs() {
	local n out=""
	for ((n = 1; n <= COUNT[gateway]; n++)); do
		out+="${out:+,}$HOST:$(api_port gateway "$n")"
	done
	echo "$out"
}

lb() { # scripts/haproxy.sh with this deployment's settings
	GATEWAYS=$(gateway_addrs) LB_ADDR=$LB_ADDR LB_STATS_ADDR=$LB_STATS_ADDR LB_DIR=$LB_DIR bash "$HAPROXY_SH" "$@"
}

# Gateways HAProxy reports UP after a passed check (stats CSV: status is field 18,
# check_status field 37).
lb_gateways_up() {
	curl -fsS -m 3 "http://$LB_STATS_ADDR/;csv" 2>/dev/null |
		awk -F, '$1 == "gateways" && $2 != "BACKEND" && $18 == "UP" && $37 ~ /^L7OK/ { n++ } END { print n + 0 }'
}

lb_up() {
	local start=$SECONDS up
	# A HAProxy started for another set of gateways is restarted.
	if [[ -f $LB_DIR/settings ]] && ! grep -qF "GATEWAYS=$(gateway_addrs) LB_ADDR=$LB_ADDR LB_STATS_ADDR=$LB_STATS_ADDR " "$LB_DIR/settings"; then
		lb down
	fi
	lb up >/dev/null
	while :; do
		up=$(lb_gateways_up)
		((up == COUNT[gateway])) && break
		if ((SECONDS - start >= TIMEOUT)); then
			lb status >&2 || true
			die "HAProxy sees $up of ${COUNT[gateway]} gateways UP after ${TIMEOUT}s"
		fi
		sleep 0.3
	done
	log "HAProxy on $LB_ADDR sees all ${COUNT[gateway]} gateways UP"
}

print_env() {
	local kind
	echo "export LB_URL=http://$LB_ADDR"
	echo "export KCHAT_GATEWAY_WS=ws://$LB_ADDR/ws"
	echo "export SCALE_LB_STATS_URL=http://$LB_STATS_ADDR/"
	for kind in "${KINDS[@]}"; do
		echo "export SCALE_${kind^^}_URLS=$(urls_of "$kind")"
	done
	echo "export SCALE_KAFKA_BROKERS=${BROKERS:-$(cluster_brokers)}"
}

# ---------------------------------------------------------------- commands

cmd_up() {
	local start=$SECONDS kind n name want
	take_lock
	BROKERS=$(cluster_brokers up)
	log "the 3-broker cluster: $BROKERS"
	ensure_redis
	TRACING_ENV=$(tracing_env)
	log "tracing: ${TRACING_ENV//$'\n'/, }"
	ensure_keys
	build
	{
		echo "SCALE_PORT_BASE=$PORT_BASE"
		for kind in "${KINDS[@]}"; do
			echo "SCALE_${kind^^}S=${COUNT[$kind]}"
		done
		echo "SCALE_REDIS=$REDIS_MODE"
		echo "SCALE_TOPIC_PREFIX=$TOPIC_PREFIX"
	} >"$LAST"
	# Replicas beyond the counts asked for (a previous up with more) are stopped.
	for name in $(running_names "${STOP_ORDER[@]}"); do
		kind=${name%-*}
		want=${COUNT[$kind]}
		((${name##*-} > want)) && stop_procs "$name"
	done
	for kind in producer consumer answerer; do
		for ((n = 1; n <= COUNT[$kind]; n++)); do
			start_proc "$kind" "$n"
		done
	done
	# shellcheck disable=SC2046 # names have no spaces
	wait_ready $(names_of producer consumer answerer)
	for ((n = 1; n <= COUNT[gateway]; n++)); do
		start_proc gateway "$n"
	done
	# shellcheck disable=SC2046
	wait_ready $(names_of "${KINDS[@]}")
	log "every replica answers /readyz with 200"
	lb_up
	log "up in $((SECONDS - start))s: HAProxy http://$LB_ADDR/ in front of ${COUNT[gateway]} gateways; ${COUNT[producer]} producers, ${COUNT[consumer]} consumers, ${COUNT[answerer]} answerers on $BROKERS"
	print_env
}

cmd_down() {
	local kind start=$SECONDS
	[[ -d $DIR ]] || {
		log "nothing to stop (no $DIR)"
		return 0
	}
	take_lock
	lb down
	for kind in "${STOP_ORDER[@]}"; do
		# shellcheck disable=SC2046 # names have no spaces
		stop_procs $(running_names "$kind")
	done
	log "down in $((SECONDS - start))s (the cluster and Redis keep running: make cluster-down, make services-down)"
}

cmd_status() {
	local rc=0 kind n name pid url
	for kind in "${KINDS[@]}"; do
		for ((n = 1; n <= COUNT[$kind]; n++)); do
			name=$kind-$n
			url=$(url_of "$kind" "$n")
			if ! pid=$(proc_pid "$name"); then
				printf '%-11s down  %s\n' "$name" "$url"
				rc=3
			elif ready "$url"; then
				printf '%-11s up    %s pid %s, ready\n' "$name" "$url" "$pid"
			else
				printf '%-11s up    %s pid %s, NOT ready (log %s)\n' "$name" "$url" "$pid" "$DIR/$name.log"
				rc=3
			fi
		done
	done
	lb status || rc=3
	bash "$SERVICES" cluster-status || rc=3
	if [[ $REDIS_MODE == single ]]; then
		if redis_answers 6379; then echo "redis: up   $HOST:6379"; else
			echo "redis: down $HOST:6379"
			rc=3
		fi
	else
		bash "$SERVICES" redis-cluster-status || rc=3
	fi
	return $rc
}

# ---------------------------------------------------------------- check

check_fail() {
	echo "scale.sh: CHECK FAILED: $*" >&2
	exit 1
}

# Every topic of the deployment on 3 replicas with 2 or more in sync (Kafka's TopicCommand,
# from the jars services.sh fetched).
check_topics() {
	local out libs=$SERVICES_DIR/kafka-libs topics t
	[[ -f $libs/.complete ]] || check_fail "no Kafka jars in $libs (services.sh cluster-up fetches them)"
	out=$("$JAVA" -Dlog4j2.level=error -cp "$libs/*" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "${BROKERS%%,*}" --describe --topic "${TOPIC_PREFIX//./\\.}.*" 2>"$DIR/check-topics.err") ||
		check_fail "kafka TopicCommand --describe failed: $(tail -n 5 "$DIR/check-topics.err")"
	topics=$(awk '/^Topic:/ && /ReplicationFactor:/ { print $2 }' <<<"$out" | sort | tr '\n' ' ')
	for t in query prompt answer; do
		[[ " $topics " == *" $TOPIC_PREFIX$t "* ]] || check_fail "topic $TOPIC_PREFIX$t does not exist (topics: $topics)"
	done
	awk '/^Topic:/ && /ReplicationFactor:/ { for (i = 1; i <= NF; i++) if ($i == "ReplicationFactor:" && $(i+1) != 3) bad = bad " " $2 "(RF " $(i+1) ")" }
		/Partition:/ { for (i = 1; i <= NF; i++) if ($i == "Isr:") { if (split($(i+1), isr, ",") < 2) bad = bad " " $2 "/" $4 "(ISR " $(i+1) ")" } }
		END { if (bad != "") { print bad; exit 1 } }' <<<"$out" >"$DIR/check-topics.bad" ||
		check_fail "topics without 3 replicas or 2 in sync:$(cat "$DIR/check-topics.bad")"
	log "check: topics ${topics% } each have 3 replicas, 2 or more in sync"
}

check_ask() { # $1: WebSocket URL, $2: what it is
	local out
	out=$(KCHAT_GATEWAY_WS=$1 timeout 60 "$BIN/ask" "How do I start kchat?" 2>&1) ||
		check_fail "cmd/ask through $2 ($1): $out"
	if ! grep -q '\[1\]' <<<"$out" || ! grep -qE '^  \[1\] .+ › ' <<<"$out"; then
		check_fail "the answer through $2 has no citation: $out"
	fi
	log "check: answered through $2 with $(grep -cE '^  \[[0-9]+\] ' <<<"$out") citations"
}

check_messages() {
	local nonce n url out id start=$SECONDS c served
	local -A want=()
	nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	for ((n = 1; n <= COUNT[producer]; n++)); do
		url=$(url_of producer "$n")
		out=$(curl -sS -m 15 -XPOST "$url/messages" -H 'content-type: application/json' \
			-d "{\"session_id\":\"scale-check-$nonce-$n\",\"user_id\":\"scale-check\",\"type\":\"query\",\"message\":\"scale check $nonce through producer-$n\"}") ||
			check_fail "POST $url/messages: $out"
		[[ $out == *'"status":"queued"'* ]] || check_fail "POST $url/messages answered: $out"
		id=$(grep -o '"message_id":"[^"]*"' <<<"$out" | cut -d'"' -f4)
		want["scale check $nonce through producer-$n"]=$id
		log "check: producer-$n queued message $id"
	done
	# Each consumer serves the partitions its group gave it: take from both in turn.
	while ((${#want[@]})); do
		((SECONDS - start < 60)) || check_fail "not taken through any consumer within 60 s: ${!want[*]}"
		for ((c = 1; c <= COUNT[consumer]; c++)); do
			url=$(url_of consumer "$c")
			out=$(curl -sS -m 15 "$url/messages?type=query&limit=500&wait=1s") || check_fail "GET $url/messages: $out"
			[[ $out == *'"status":"success"'* ]] || check_fail "GET $url/messages answered: $out"
			for served in "${!want[@]}"; do
				if [[ $out == *"$served"* ]]; then
					log "check: consumer-$c gave message ${want[$served]} ($served)"
					unset "want[$served]"
				fi
			done
		done
	done
}

cmd_check() {
	local start=$SECONDS was_up=0 n lines
	bash "$SELF" status >/dev/null 2>&1 && was_up=1
	if ((was_up)); then
		log "check: the deployment is up already; it is reused and left running"
	else
		trap 'bash "$SELF" down || true' EXIT
	fi
	lines=$(bash "$SELF" up) || check_fail "scale.sh up failed"
	log "check: up took $((SECONDS - start))s"
	eval "$lines"
	BROKERS=$SCALE_KAFKA_BROKERS
	check_topics
	check_ask "$KCHAT_GATEWAY_WS" "HAProxy"
	for ((n = 1; n <= COUNT[gateway]; n++)); do
		check_ask "ws://$HOST:$(api_port gateway "$n")/ws" "gateway-$n"
	done
	check_messages
	log "check: passed in $((SECONDS - start))s"
	if ((!was_up)); then
		trap - EXIT
		bash "$SELF" down
	fi
}

usage() {
	sed -n '2,/^$/{/^$/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}" >&2
}

main() {
	validate
	case ${1:-} in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	check) cmd_check ;;
	env) print_env ;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
