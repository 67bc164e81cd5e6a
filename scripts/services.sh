#!/usr/bin/env bash
# Local services for kchat's integration tests, started WITHOUT Docker:
#   - Apache Kafka 4.x, single node in KRaft mode (broker+controller in one JVM),
#     run from jars fetched from Maven Central (scripts/kafka/pom.xml);
#   - Redis (Debian's redis-server), without persistence.
#   - Jaeger v2 (all-in-one: OTLP receivers, in-memory span storage, query API and UI),
#     built with Go from the version scripts/jaeger/go.mod pins, run with no config file.
#   - on demand, a 3-broker Kafka cluster for the fault tests (cluster-* commands below).
#
# Usage: scripts/services.sh COMMAND
#   up           start Kafka, Redis and Jaeger unless already answering, wait until all three
#                answer, then print the env lines (on stdout; progress goes to stderr), so
#                `eval "$(scripts/services.sh up)"` works.
#                Kafka started from nothing gets a fresh, empty data dir; a broker stopped
#                with stop-kafka is resumed on its data dir instead.
#                Jaeger's binary is built first when the cached one is missing or older than
#                scripts/jaeger/go.sum (about 5 minutes the first time; see build-jaeger).
#   down         stop the three, delete Kafka's data dir. No error when nothing runs.
#   status       tell whether each answers; exit 0 only when all three do.
#   env          print the env lines.
#   build-jaeger only build Jaeger's binary into $KCHAT_SERVICES_DIR/jaeger (unless it is
#                fresh). CI runs it early in the background; an `up` meanwhile waits for
#                that build (a lock of its own) and reuses its binary.
#   build-centrifugo
#                build Centrifugo (the WebSocket server make bench's peer scenario compares the
#                gateway with; not a service of kchat's) into $KCHAT_SERVICES_DIR/centrifugo/<version>
#                unless it is there: `go install` of CENTRIFUGO_VERSION (its own go.mod's versions),
#                minutes the first time (12 min measured with empty module and build caches on 2
#                cores busy with other work; 17 s with warm caches). Prints the binary's path on
#                stdout. CI runs it early in the background; a build-centrifugo meanwhile (kbench's)
#                waits for it (a lock of its own) and finds the binary.
#   stop-kafka   stop only the Kafka broker, keeping its data dir (simulate an outage).
#   start-kafka  start the Kafka broker again on the same data dir (topics survive).
#   stop-redis   stop only Redis (simulate an outage; it keeps no data anyway).
#   start-redis  start Redis again.
#
# Jaeger listens on loopback only: query API and UI on 127.0.0.1:16686 (gRPC query :16685),
# OTLP on 127.0.0.1:4317 (gRPC) and :4318 (HTTP), and its other default ports (Jaeger and
# Zipkin receivers, sampling, health :13133, its own metrics :8888). Its default config
# (no --config) puts every port on localhost except the query API's, which listen on every
# interface: the two --set flags below put those on 127.0.0.1 too. Spans are kept in memory
# (up to 100000 traces) and lost when it stops.
#
# The 3-broker test cluster (scripts/kafka/cluster.sh; docs/reliability.md, "The test cluster"),
# three KRaft nodes (broker+controller each) on 127.0.0.1:19092, :19094, :19096 (controllers on
# :19093, :19095, :19097), replication factor 3, min.insync.replicas 2. Node N is broker id N.
#   cluster-up       start it from nothing on fresh data dirs unless it runs (a running cluster
#                    with nodes killed or paused is made whole again); wait until the three
#                    brokers have joined; print `export KCHAT_TEST_CLUSTER_BROKERS=...` on stdout.
#   cluster-down     SIGKILL every node and delete the data.
#   cluster-status   each node: up, paused, starting or down; exit 0 only when all three are up.
#   cluster-env      print the export line.
#   kill-broker N    SIGKILL node N (its data is kept).
#   start-broker N   restart node N on its data; wait until it answers and has rejoined
#                    (needs another node running: a quorum takes two).
#   pause-broker N   SIGSTOP node N.   resume-broker N   SIGCONT it and wait until it answers.
#
# The Redis test cluster (docs/reliability.md, "Sessions on Redis Cluster"): six Debian
# redis-server processes in cluster mode on 127.0.0.1:7000-7005, 3 masters with one replica
# each (redis-cli --cluster create --cluster-replicas 1), cluster-node-timeout 2000 ms, no
# persistence, cluster-require-full-coverage no. Node N (0-5) listens on port 7000+N; which
# nodes are masters changes with failovers (redis-cluster-status tells).
#   redis-cluster-up      start it on fresh data dirs unless it runs (nodes killed with
#                         kill-redis-node are started again); wait until every slot is served,
#                         every replica in sync; print `export KCHAT_TEST_REDIS_CLUSTER=...`.
#   redis-cluster-down    SIGKILL every node and delete the data.
#   redis-cluster-status  each node: its role (master of which slots, replica of which node)
#                         or down; the cluster's state; exit 0 only when all six are up and ok.
#   redis-cluster-env     print the export line.
#   kill-redis-node N     SIGKILL node N (its nodes.conf is kept; without persistence its data
#                         is gone: a master's replica takes over after the node timeout).
#   start-redis-node N    start node N again on its nodes.conf; it rejoins (a former master as
#                         the replica of the node that took over) and resyncs; wait until the
#                         cluster is ok and every replica in sync. Refused for a killed master
#                         whose replica has not taken over yet: it would come back empty.
#   pause-redis-node N    SIGSTOP node N.   resume-redis-node N   SIGCONT it, wait until it answers.
#
# The Redis Sentinel test deployment (scripts/redis/sentinel.sh; docs/reliability.md, "Sessions
# on Redis Sentinel"): two Debian redis-server processes, node N (0, 1) on 127.0.0.1:(7100+N),
# a master and its replica, and three sentinels (redis-server --sentinel) on 127.0.0.1:7110-7112
# watching them as master "kchat", quorum 2, down-after-milliseconds 1000, failover-timeout
# 2000; no persistence. Which node is the master changes with failovers (redis-sentinel-status).
#   redis-sentinel-up      start it in a fresh run dir unless it runs (processes killed are
#                          started again, a node as the replica of the current master); wait
#                          until the replica is in sync and every sentinel sees the master, the
#                          replica and the two other sentinels; print
#                          `export KCHAT_TEST_REDIS_SENTINEL_ADDRS=... KCHAT_TEST_REDIS_SENTINEL_MASTER=kchat`.
#   redis-sentinel-down    SIGKILL the five processes and delete the run dir.
#   redis-sentinel-status  each node's role, each sentinel's view; exit 0 only when it is whole.
#   redis-sentinel-env     print the export line.
#   kill-sentinel-redis N  SIGKILL node N (no persistence: its data is gone; if it was the
#                          master, the sentinels promote the replica after about 1 s).
#   start-sentinel-redis N start node N again as the replica of the master the sentinels name
#                          and wait until it is in sync. Refused while they still name node N.
#
# Environment:
#   KCHAT_SERVICES_DIR      state + cache dir (default $HOME/.cache/kchat-services)
#   KAFKA_VERSION           Kafka version fetched from Maven Central (default 4.1.1)
#   KCHAT_SERVICES_TIMEOUT  seconds to wait for a service to answer (default 120)
#   KCHAT_KAFKA_EXTRA_CONFIG  extra server.properties lines appended to the generated config
#   KCHAT_CLUSTER_EXTRA_CONFIG  extra server.properties lines for every cluster node
#   KCHAT_REDIS_CLUSTER_NODE_TIMEOUT  the Redis test cluster's cluster-node-timeout in ms (default 2000)
#   KAFKA_JVM_OPTS          extra JVM options for the broker (and the cluster's nodes)
#   JAVA                    java binary to use (otherwise the first java >= 17 found)
#   GO                      go binary that builds Jaeger (default go)
#   KCHAT_JAEGER_BUILD_TIMEOUT  seconds to wait for another process's Jaeger build (default 1800)
#   CENTRIFUGO_VERSION      the Centrifugo module version build-centrifugo installs (default v6.9.1)

# The bash -c snippets below take $0/$1 as arguments on purpose.
# shellcheck disable=SC2016
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_DIR=${KCHAT_SERVICES_DIR:-${HOME:-/root}/.cache/kchat-services}
KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
TIMEOUT=${KCHAT_SERVICES_TIMEOUT:-120}
JAEGER_BUILD_TIMEOUT=${KCHAT_JAEGER_BUILD_TIMEOUT:-1800}
GO=${GO:-go}

HOST=127.0.0.1
KAFKA_PORT=9092
CONTROLLER_PORT=9093
REDIS_PORT=6379
JAEGER_QUERY_PORT=16686
JAEGER_QUERY_GRPC_PORT=16685
OTLP_GRPC_PORT=4317
OTLP_HTTP_PORT=4318

KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
KAFKA_LIBS=$STATE_DIR/kafka-libs
KAFKA_STATE=$STATE_DIR/kafka
KAFKA_PROPS=$KAFKA_STATE/server.properties
KAFKA_LOG4J=$KAFKA_STATE/log4j2.properties
KAFKA_PID=$KAFKA_STATE/kafka.pid
KAFKA_OUT=$KAFKA_STATE/kafka.out        # the JVM's own stdout/stderr
KAFKA_LOG=$KAFKA_STATE/server.log       # log4j: the broker's log
KAFKA_DATA_REC=$KAFKA_STATE/data-dir    # holds the path of the current log.dirs
KAFKA_STOPPED=$KAFKA_STATE/stopped      # present while stopped by stop-kafka (data kept)
REDIS_STATE=$STATE_DIR/redis
REDIS_PID=$REDIS_STATE/redis.pid
REDIS_LOG=$REDIS_STATE/redis.log
JAEGER_MOD=$SCRIPT_DIR/jaeger              # the module whose go.mod pins Jaeger as a tool
JAEGER_STATE=$STATE_DIR/jaeger
JAEGER_BIN=$JAEGER_STATE/jaeger
JAEGER_BUILD_LOG=$JAEGER_STATE/build.log
JAEGER_BUILD_LOCK=$JAEGER_STATE/.build.lock
JAEGER_PID=$JAEGER_STATE/jaeger.pid
JAEGER_LOG=$JAEGER_STATE/jaeger.log
CENTRIFUGO_VERSION=${CENTRIFUGO_VERSION:-v6.9.1}
CENTRIFUGO_STATE=$STATE_DIR/centrifugo
# go install does not stamp Centrifugo's version into the binary (it says 0.0.0): the folder does.
CENTRIFUGO_BIN=$CENTRIFUGO_STATE/$CENTRIFUGO_VERSION/centrifugo
CENTRIFUGO_BUILD_LOG=$CENTRIFUGO_STATE/build.log
CENTRIFUGO_BUILD_LOCK=$CENTRIFUGO_STATE/.build.lock

log() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

print_env() {
	echo "export KCHAT_TEST_KAFKA_BROKERS=$HOST:$KAFKA_PORT"
	echo "export KCHAT_TEST_REDIS_URL=redis://$HOST:$REDIS_PORT/0"
	echo "export KCHAT_TEST_JAEGER_URL=http://$HOST:$JAEGER_QUERY_PORT"
	echo "export KCHAT_TEST_OTLP_ENDPOINT=http://$HOST:$OTLP_HTTP_PORT"
}

# ---------------------------------------------------------------- helpers

# Serialise commands that change state (tests may call start/stop concurrently).
# Children started below close fd 9 so that they don't keep holding the lock.
take_lock() {
	mkdir -p "$STATE_DIR"
	exec 9>"$STATE_DIR/.lock"
	flock -w 600 9 || die "could not lock $STATE_DIR/.lock"
}

install_pkgs() {
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q "$@" </dev/null >&2; then
		# Package lists missing or stale: refresh them once and retry.
		apt-get update -q </dev/null >&2
		apt-get install -y -q "$@" </dev/null >&2
	fi
}

java_major() { # prints the major version of the java binary $1 (1 for 1.8)
	"$1" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}' | cut -d. -f1
}

find_java() {
	local cand v
	for cand in "${JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
		[[ -n $cand && -x $cand ]] || continue
		v=$(java_major "$cand" 2>/dev/null || true)
		if [[ $v =~ ^[0-9]+$ ]] && ((v >= 17)); then
			echo "$cand"
			return 0
		fi
	done
	return 1
}

ensure_java() {
	[[ -n ${JAVA_BIN:-} ]] && return 0
	if ! JAVA_BIN=$(find_java); then
		install_pkgs openjdk-17-jre-headless
		JAVA_BIN=$(find_java) || die "no java >= 17 found (Kafka 4.x needs Java 17+)"
	fi
}

# Fetch the broker's jars once into $KAFKA_LIBS (rebuilt when KAFKA_VERSION or the pom change).
ensure_kafka_libs() {
	local stamp tmp
	stamp="$KAFKA_VERSION $(sha256sum "$KAFKA_POM" | cut -c1-16)"
	if [[ -f $KAFKA_LIBS/.complete && $(<"$KAFKA_LIBS/.complete") == "$stamp" ]]; then
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || install_pkgs maven
	log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS ..."
	mkdir -p "$STATE_DIR"
	tmp=$(mktemp -d "$STATE_DIR/kafka-libs.tmp.XXXXXX")
	if ! (cd "$tmp" && mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" \
		-Dkafka.version="$KAFKA_VERSION" \
		dependency:copy-dependencies -DoutputDirectory="$tmp/libs" \
		</dev/null >"$tmp/mvn.log" 2>&1); then
		sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" | tail -n 40 >&2 || true
		rm -rf "$tmp"
		die "mvn could not fetch Kafka $KAFKA_VERSION (see above)"
	fi
	echo "$stamp" >"$tmp/libs/.complete"
	rm -rf "$KAFKA_LIBS"
	mv "$tmp/libs" "$KAFKA_LIBS"
	rm -rf "$tmp"
}

# True when something on $HOST:$1 answers a Kafka ApiVersions (v0) request, i.e. a Kafka broker
# that processes requests. Pure bash, no JVM: the reply must echo our correlation id 0x4b43.
kafka_answers() { # $1: port (default the single broker's)
	local reply
	reply=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x4b\x43\xff\xff" >&3
		head -c 8 <&3 | od -An -v -tx1' "$HOST" "${1:-$KAFKA_PORT}" 2>/dev/null) || return 1
	reply=${reply//[$' \n']/}
	[[ ${#reply} -eq 16 && ${reply:8:8} == 00004b43 ]]
}

port_open() { # true when something accepts TCP connections on $HOST:$1
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

redis_answers() {
	local reply
	reply=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "PING\r\n" >&3
		head -c 5 <&3' "$HOST" "$REDIS_PORT" 2>/dev/null) || return 1
	[[ $reply == "+PONG" ]]
}

# Is $1 a live process whose command line contains $2?
pid_is() {
	local pid=$1 want=$2
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want"
}

# Wait until process $1 has exited, up to $2 seconds; then SIGKILL it.
wait_exit() {
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "pid $pid still alive after ${secs}s, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- Kafka

# The pid of the broker this script started (pid file, else a scan for our config path).
kafka_pid() {
	local pid
	if [[ -f $KAFKA_PID ]]; then
		pid=$(<"$KAFKA_PID")
		if pid_is "$pid" "$KAFKA_PROPS"; then
			echo "$pid"
			return 0
		fi
	fi
	for pid in /proc/[0-9]*; do
		pid=${pid#/proc/}
		if pid_is "$pid" "kafka.Kafka $KAFKA_PROPS"; then
			echo "$pid"
			return 0
		fi
	done
	return 1
}

kafka_data_dir() { # the recorded log.dirs, if it still exists
	local d
	[[ -f $KAFKA_DATA_REC ]] || return 1
	d=$(<"$KAFKA_DATA_REC")
	[[ -n $d && -d $d ]] || return 1
	echo "$d"
}

remove_kafka_data() {
	local d
	rm -f "$KAFKA_STOPPED"
	if [[ -f $KAFKA_DATA_REC ]]; then
		d=$(<"$KAFKA_DATA_REC")
		# Only ever delete a dir this script made.
		if [[ $d == */kchat-kafka-data.* && -d $d ]]; then
			rm -rf "$d"
			log "kafka: removed data dir $d"
		fi
		rm -f "$KAFKA_DATA_REC"
	fi
}

write_kafka_config() {
	local data=$1
	mkdir -p "$KAFKA_STATE"
	cat >"$KAFKA_PROPS" <<EOF
# Generated by scripts/services.sh; rewritten at every start.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
log.dirs=$data

num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

# single node: every internal topic at replication 1, few partitions (fast to create)
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=3

# fast for tests
group.initial.rebalance.delay.ms=0
# Offset commits (and a transaction's offsets) are written at once rather
# than held up to 5 ms (the 4.x default) to batch them: a single dev broker
# has nothing to batch, and commit latency bounds the consumer service's
# throughput per partition and each answerer stage's transaction time.
group.coordinator.append.linger.ms=0
log.initial.task.delay.ms=0
log.retention.check.interval.ms=10000
log.segment.delete.delay.ms=1000
num.network.threads=2
num.io.threads=4
EOF
	if [[ -n ${KCHAT_KAFKA_EXTRA_CONFIG:-} ]]; then
		printf '\n# KCHAT_KAFKA_EXTRA_CONFIG\n%s\n' "$KCHAT_KAFKA_EXTRA_CONFIG" >>"$KAFKA_PROPS"
	fi
	write_log4j "$KAFKA_LOG4J"
}

write_log4j() { # $1: the file; the JVM's -Dkafka.logs.dir says where server.log goes
	cat >"$1" <<'EOF'
# Generated by scripts/services.sh: everything goes to server.log, nothing to the console.
status = warn
name = kchat-kafka
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

kafka_java() { # run a Kafka main class from the jars in the foreground
	"$JAVA_BIN" -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_STATE" \
		-cp "$KAFKA_LIBS/*" "$@"
}

kafka_fail() {
	echo "services: ERROR: $*" >&2
	echo "---- tail of $KAFKA_LOG" >&2
	tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
	echo "---- tail of $KAFKA_OUT" >&2
	tail -n 20 "$KAFKA_OUT" >&2 2>/dev/null || true
	exit 1
}

# Wait until the broker answers ApiVersions and (when it is ours) has logged that it started.
wait_kafka() {
	local pid=${1:-} start=$SECONDS
	while :; do
		if kafka_answers; then
			if [[ -z $pid ]] || grep -q "Kafka Server started" "$KAFKA_LOG" 2>/dev/null; then
				return 0
			fi
		fi
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$KAFKA_PID"
			kafka_fail "Kafka broker (pid $pid) exited during startup"
		fi
		((SECONDS - start < TIMEOUT)) || kafka_fail "Kafka did not answer on $HOST:$KAFKA_PORT within ${TIMEOUT}s"
		sleep 0.2
	done
}

# Everything a start needs except the data dir; fails before anything is changed.
prepare_kafka() {
	ensure_java
	ensure_kafka_libs
	if port_open "$KAFKA_PORT" || port_open "$CONTROLLER_PORT"; then
		die "port $KAFKA_PORT or $CONTROLLER_PORT is taken by something that is not a working Kafka broker"
	fi
}

# A new KRaft cluster id: any 16 random bytes in base64url without padding, except that
# one starting with "-" reads as an option to kafka-storage's argument parser (Kafka's own
# Uuid.randomUuid draws again in that case too; a CI run failed on it once in 64).
new_cluster_id() {
	local cid
	cid=-
	while [[ $cid == -* ]]; do
		cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	done
	echo "$cid"
}

# Start the broker on data dir $1 (formatting it when it is empty) and wait for it.
launch_kafka() {
	local data=$1 pid cid
	prepare_kafka
	write_kafka_config "$data"
	# One log per start, so that "started" below is this start's.
	[[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"
	[[ -f $KAFKA_OUT ]] && mv -f "$KAFKA_OUT" "$KAFKA_OUT.prev"
	: >"$KAFKA_OUT"
	if [[ ! -f $data/meta.properties ]]; then
		cid=$(new_cluster_id)
		kafka_java kafka.tools.StorageTool format --standalone -t "$cid" -c "$KAFKA_PROPS" \
			</dev/null >>"$KAFKA_OUT" 2>&1 9>&- ||
			kafka_fail "formatting $data failed"
	fi
	# setsid: own session, so a Ctrl-C in the caller's terminal doesn't reach the broker.
	# shellcheck disable=SC2086
	setsid nohup "$JAVA_BIN" -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-Djava.awt.headless=true ${KAFKA_JVM_OPTS:-} \
		-Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_STATE" \
		-cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
		</dev/null >>"$KAFKA_OUT" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$KAFKA_PID"
	log "kafka: started broker pid $pid (Kafka $KAFKA_VERSION, data $data), waiting for it ..."
	wait_kafka "$pid"
	rm -f "$KAFKA_STOPPED"
	log "kafka: ready on $HOST:$KAFKA_PORT"
}

# up: reuse a running broker; resume one stopped by stop-kafka; else start one on a fresh data dir.
kafka_up() {
	local pid data
	if kafka_answers; then
		log "kafka: already answering on $HOST:$KAFKA_PORT"
		return 0
	fi
	if pid=$(kafka_pid); then
		log "kafka: broker pid $pid is starting, waiting for it ..."
		wait_kafka "$pid"
		return 0
	fi
	if [[ -f $KAFKA_STOPPED ]] && data=$(kafka_data_dir); then
		log "kafka: resuming the broker stopped by stop-kafka"
		launch_kafka "$data"
		return 0
	fi
	prepare_kafka
	remove_kafka_data
	data=$(mktemp -d "${TMPDIR:-/tmp}/kchat-kafka-data.XXXXXX")
	mkdir -p "$KAFKA_STATE"
	echo "$data" >"$KAFKA_DATA_REC"
	launch_kafka "$data"
}

# start-kafka: restart the broker on the data dir it had.
kafka_start() {
	local pid data
	if kafka_answers; then
		log "kafka: already answering on $HOST:$KAFKA_PORT"
		return 0
	fi
	if pid=$(kafka_pid); then
		log "kafka: broker pid $pid is starting, waiting for it ..."
		wait_kafka "$pid"
		return 0
	fi
	if ! data=$(kafka_data_dir); then
		log "kafka: no previous data dir, starting fresh"
		kafka_up
		return 0
	fi
	launch_kafka "$data"
}

kafka_stop() {
	local pid
	if pid=$(kafka_pid); then
		log "kafka: stopping broker pid $pid ..."
		kill -TERM "$pid" 2>/dev/null || true
		wait_exit "$pid" 60 || die "could not stop Kafka broker pid $pid"
		[[ -f $KAFKA_DATA_REC ]] && : >"$KAFKA_STOPPED"
		log "kafka: stopped"
	elif kafka_answers; then
		log "kafka: WARNING: a broker answers on $HOST:$KAFKA_PORT but was not started from $STATE_DIR; left alone"
	else
		log "kafka: not running"
	fi
	rm -f "$KAFKA_PID"
}

# ---------------------------------------------------------------- Redis

redis_up() {
	local i
	if redis_answers; then
		log "redis: already answering on $HOST:$REDIS_PORT"
		return 0
	fi
	if ! command -v redis-server >/dev/null 2>&1; then
		install_pkgs redis-server
		# The package may have started its own redis (service scripts); fine if it answers.
		for ((i = 0; i < 20; i++)); do
			redis_answers && { log "redis: the package's redis answers on $HOST:$REDIS_PORT"; return 0; }
			port_open "$REDIS_PORT" || break
			sleep 0.2
		done
	fi
	port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something that does not answer Redis PING"
	mkdir -p "$REDIS_STATE"
	redis-server --bind "$HOST" --port "$REDIS_PORT" --save '' --appendonly no \
		--daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$REDIS_STATE" \
		</dev/null >&2 9>&- || die "redis-server failed to start (see $REDIS_LOG)"
	for ((i = 0; i < 100; i++)); do
		if redis_answers; then
			log "redis: ready on $HOST:$REDIS_PORT"
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$REDIS_LOG" >&2 2>/dev/null || true
	die "redis did not answer PING on $HOST:$REDIS_PORT"
}

redis_down() {
	local pid="" i
	[[ -f $REDIS_PID ]] && pid=$(<"$REDIS_PID")
	if pid_is "$pid" redis-server; then
		log "redis: stopping pid $pid ..."
		kill -TERM "$pid" 2>/dev/null || true
		wait_exit "$pid" 20 || true
	fi
	rm -f "$REDIS_PID"
	if redis_answers; then
		# Not ours (e.g. started by the package's service scripts), or it survived SIGTERM.
		log "redis: shutting down the redis on $HOST:$REDIS_PORT (SHUTDOWN NOSAVE)"
		redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
		for ((i = 0; i < 50; i++)); do
			redis_answers || break
			sleep 0.1
		done
	fi
	if redis_answers; then
		die "redis still answers on $HOST:$REDIS_PORT"
	fi
	log "redis: stopped"
}

# ---------------------------------------------------------------- Jaeger

jaeger_version() { # the version scripts/jaeger/go.mod pins (module v1.76.0 is Jaeger v2.13.0)
	awk '$1 == "github.com/jaegertracing/jaeger" { print $2; exit }' "$JAEGER_MOD/go.mod"
}

# True when the cached binary is at least as new as scripts/jaeger/go.sum.
jaeger_fresh() {
	[[ -x $JAEGER_BIN && $JAEGER_BIN -nt $JAEGER_MOD/go.sum ]]
}

# Build Jaeger into the cache unless the binary there is fresh. The build has a lock of its
# own (fd 8), apart from the one of the state-changing commands: an `up` (which holds that
# one) waits here for a build-jaeger running in the background, then finds its binary fresh.
jaeger_build() {
	local tmp start=$SECONDS
	mkdir -p "$JAEGER_STATE"
	exec 8>"$JAEGER_BUILD_LOCK"
	if ! flock -n 8; then
		log "jaeger: another process is building Jaeger, waiting for it (up to ${JAEGER_BUILD_TIMEOUT}s) ..."
		flock -w "$JAEGER_BUILD_TIMEOUT" 8 || die "could not lock $JAEGER_BUILD_LOCK"
	fi
	if jaeger_fresh; then
		exec 8>&-
		return 0
	fi
	command -v "$GO" >/dev/null 2>&1 || die "no $GO on PATH: building Jaeger needs Go"
	log "building Jaeger $(jaeger_version) (about 5 minutes the first time) into $JAEGER_BIN; log: $JAEGER_BUILD_LOG"
	tmp=$JAEGER_BIN.tmp.$$
	# GOWORK=off: scripts/jaeger is a module of its own; a go.work elsewhere must not pull it in.
	if ! (cd "$JAEGER_MOD" && GOWORK=off "$GO" build -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger) \
		</dev/null >"$JAEGER_BUILD_LOG" 2>&1 8>&- 9>&-; then
		tail -n 40 "$JAEGER_BUILD_LOG" >&2 || true
		rm -f "$tmp"
		die "building Jaeger failed (see above)"
	fi
	mv -f "$tmp" "$JAEGER_BIN"
	log "jaeger: built in $((SECONDS - start))s"
	exec 8>&-
}

# True when Jaeger's query API answers GET /api/services with a 200 (pure bash, no curl).
jaeger_answers() {
	local reply
	reply=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET /api/services HTTP/1.0\r\nHost: %s:%s\r\n\r\n" "$0" "$1" >&3
		head -c 12 <&3' "$HOST" "$JAEGER_QUERY_PORT" 2>/dev/null) || return 1
	[[ $reply == "HTTP/1."[01]" 200" ]]
}

jaeger_ready() { # the query API answers and both OTLP receivers accept connections
	jaeger_answers && port_open "$OTLP_HTTP_PORT" && port_open "$OTLP_GRPC_PORT"
}

jaeger_pid() { # the pid of the Jaeger this script started
	local pid
	[[ -f $JAEGER_PID ]] || return 1
	pid=$(<"$JAEGER_PID")
	pid_is "$pid" "$JAEGER_BIN --set=" || return 1
	echo "$pid"
}

jaeger_fail() {
	echo "services: ERROR: $*" >&2
	echo "---- tail of $JAEGER_LOG" >&2
	tail -n 30 "$JAEGER_LOG" >&2 2>/dev/null || true
	exit 1
}

wait_jaeger() {
	local pid=$1 start=$SECONDS
	until jaeger_ready; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$JAEGER_PID"
			jaeger_fail "Jaeger (pid $pid) exited during startup"
		fi
		((SECONDS - start < TIMEOUT)) || jaeger_fail "Jaeger did not answer on $HOST:$JAEGER_QUERY_PORT within ${TIMEOUT}s"
		sleep 0.2
	done
}

jaeger_up() {
	local pid p
	if jaeger_answers; then
		log "jaeger: already answering on $HOST:$JAEGER_QUERY_PORT"
		return 0
	fi
	if pid=$(jaeger_pid); then
		log "jaeger: pid $pid is starting, waiting for it ..."
		wait_jaeger "$pid"
		return 0
	fi
	jaeger_build
	for p in "$JAEGER_QUERY_PORT" "$JAEGER_QUERY_GRPC_PORT" "$OTLP_GRPC_PORT" "$OTLP_HTTP_PORT"; do
		port_open "$p" && die "port $p is taken by something that is not a working Jaeger"
	done
	[[ -f $JAEGER_LOG ]] && mv -f "$JAEGER_LOG" "$JAEGER_LOG.prev"
	# No config file: the binary's all-in-one default (memory storage). JAEGER_LISTEN_HOST
	# places its receivers and extensions; the query API's endpoints ignore it (":16686").
	JAEGER_LISTEN_HOST=$HOST setsid nohup "$JAEGER_BIN" \
		--set=extensions.jaeger_query.http.endpoint="$HOST:$JAEGER_QUERY_PORT" \
		--set=extensions.jaeger_query.grpc.endpoint="$HOST:$JAEGER_QUERY_GRPC_PORT" \
		</dev/null >"$JAEGER_LOG" 2>&1 8>&- 9>&- &
	pid=$!
	echo "$pid" >"$JAEGER_PID"
	log "jaeger: started pid $pid (Jaeger $(jaeger_version), spans in memory), waiting for it ..."
	wait_jaeger "$pid"
	log "jaeger: ready: UI and query API http://$HOST:$JAEGER_QUERY_PORT, OTLP $HOST:$OTLP_GRPC_PORT (gRPC) and http://$HOST:$OTLP_HTTP_PORT (HTTP)"
}

jaeger_down() {
	local pid
	if pid=$(jaeger_pid); then
		log "jaeger: stopping pid $pid ..."
		kill -TERM "$pid" 2>/dev/null || true
		wait_exit "$pid" 20 || die "could not stop Jaeger pid $pid"
		log "jaeger: stopped"
	elif jaeger_answers; then
		log "jaeger: WARNING: a Jaeger answers on $HOST:$JAEGER_QUERY_PORT but was not started from $STATE_DIR; left alone"
	else
		log "jaeger: not running"
	fi
	rm -f "$JAEGER_PID"
}

# ---------------------------------------------------------------- Centrifugo (make bench)

# Build Centrifugo into the cache unless it is there, then print its path. Like jaeger_build,
# with a lock of its own (fd 7): a build-centrifugo started while CI's background one runs waits
# for it and finds the binary. `go install module@version` builds outside any module, with the
# versions Centrifugo's own go.mod pins.
centrifugo_build() {
	local tmp start=$SECONDS
	mkdir -p "$CENTRIFUGO_STATE"
	exec 7>"$CENTRIFUGO_BUILD_LOCK"
	if ! flock -n 7; then
		log "centrifugo: another process is building Centrifugo, waiting for it (up to ${JAEGER_BUILD_TIMEOUT}s) ..."
		flock -w "$JAEGER_BUILD_TIMEOUT" 7 || die "could not lock $CENTRIFUGO_BUILD_LOCK"
	fi
	if [[ ! -x $CENTRIFUGO_BIN ]]; then
		command -v "$GO" >/dev/null 2>&1 || die "no $GO on PATH: building Centrifugo needs Go"
		log "building Centrifugo $CENTRIFUGO_VERSION (minutes the first time) into $CENTRIFUGO_BIN; log: $CENTRIFUGO_BUILD_LOG"
		tmp=$(mktemp -d "$CENTRIFUGO_STATE/gobin.XXXXXX")
		if ! (cd "$tmp" && GOWORK=off GOBIN=$tmp "$GO" install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION") \
			</dev/null >"$CENTRIFUGO_BUILD_LOG" 2>&1 7>&- 8>&- 9>&-; then
			tail -n 40 "$CENTRIFUGO_BUILD_LOG" >&2 || true
			rm -rf "$tmp"
			die "building Centrifugo failed (see above)"
		fi
		mkdir -p "$(dirname "$CENTRIFUGO_BIN")"
		mv -f "$tmp/centrifugo" "$CENTRIFUGO_BIN"
		rm -rf "$tmp"
		log "centrifugo: built in $((SECONDS - start))s"
	fi
	exec 7>&-
	echo "$CENTRIFUGO_BIN"
}

# ---------------------------------------------------------------- the 3-broker cluster

# shellcheck source=scripts/kafka/cluster.sh
source "$SCRIPT_DIR/kafka/cluster.sh"

# ---------------------------------------------------------------- the Redis test cluster

# Six redis-server processes in cluster mode, node N (0-5) on $HOST:(7000+N), each with its own
# dir (nodes.conf, pid file, log) under a fresh temp dir per redis-cluster-up. Sessions'
# integration tests (adapters/redis) run on it; kill-redis-node / start-redis-node are their
# failover. No persistence: a killed node comes back empty and resyncs from its master.
RCLUSTER_STATE=$STATE_DIR/redis-cluster
RCLUSTER_DATA_REC=$RCLUSTER_STATE/data-dir # holds the path of the current data dir
RCLUSTER_NODES=(0 1 2 3 4 5)
RCLUSTER_NODE_TIMEOUT=${KCHAT_REDIS_CLUSTER_NODE_TIMEOUT:-2000}

rnode_port() { echo $((7000 + $1)); }

redis_cluster_addrs() {
	local n out=""
	for n in "${RCLUSTER_NODES[@]}"; do
		out+="${out:+,}$HOST:$(rnode_port "$n")"
	done
	echo "$out"
}

print_redis_cluster_env() {
	echo "export KCHAT_TEST_REDIS_CLUSTER=$(redis_cluster_addrs)"
}

check_redis_node() { # $1 must name a node
	[[ $1 =~ ^[0-5]$ ]] || die "no Redis node '$1': the cluster's nodes are 0 to 5 (ports 7000 to 7005)"
}

ensure_redis_bins() {
	command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
	install_pkgs redis-server redis-tools
}

rnode_cli() { # $1: node; the rest: a redis-cli command
	local n=$1
	shift
	timeout 5 redis-cli -h "$HOST" -p "$(rnode_port "$n")" "$@" </dev/null 2>/dev/null
}

rnode_answers() { [[ $(rnode_cli "$1" ping) == PONG ]]; }

rcluster_data_dir() { # the recorded data dir, if it still exists
	local d
	[[ -f $RCLUSTER_DATA_REC ]] || return 1
	d=$(<"$RCLUSTER_DATA_REC")
	[[ -n $d && -d $d ]] || return 1
	echo "$d"
}

rnode_dir() { # $1: node; the node's dir in the current data dir
	local d
	d=$(rcluster_data_dir) || return 1
	echo "$d/$(rnode_port "$1")"
}

# The pid of node $1, from its pid file; redis-server titles itself "redis-server host:port".
rnode_pid() {
	local d pid
	d=$(rnode_dir "$1") || return 1
	[[ -f $d/redis.pid ]] || return 1
	pid=$(<"$d/redis.pid")
	pid_is "$pid" "redis-server $HOST:$(rnode_port "$1")" || return 1
	echo "$pid"
}

# Start node $1 in its dir (keeping its nodes.conf, if any) and wait until it answers PING.
spawn_rnode() {
	local n=$1 d port i
	d=$(rnode_dir "$n") || die "no Redis cluster data dir: run redis-cluster-up"
	port=$(rnode_port "$n")
	mkdir -p "$d"
	[[ -f $d/redis.log ]] && mv -f "$d/redis.log" "$d/redis.log.prev"
	redis-server --bind "$HOST" --port "$port" --dir "$d" \
		--cluster-enabled yes --cluster-config-file nodes.conf \
		--cluster-node-timeout "$RCLUSTER_NODE_TIMEOUT" --cluster-require-full-coverage no \
		--save '' --appendonly no \
		--daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
		</dev/null >&2 9>&- || die "redis-server on port $port failed to start (see $d/redis.log)"
	for ((i = 0; i < 100; i++)); do
		rnode_answers "$n" && return 0
		sleep 0.1
	done
	tail -n 20 "$d/redis.log" >&2 2>/dev/null || true
	die "Redis node $n did not answer PING on $HOST:$port"
}

# True when every node answers, every slot is served, each of the six knows the others, and
# every master has one replica in sync (WAIT 1 then succeeds on every shard).
rcluster_ok() {
	local n info repl masters=0 synced=0
	for n in "${RCLUSTER_NODES[@]}"; do
		info=$(rnode_cli "$n" cluster info) || return 1
		[[ $info == *cluster_state:ok* && $info == *cluster_slots_ok:16384* && $info == *cluster_known_nodes:6* ]] || return 1
		repl=$(rnode_cli "$n" info replication) || return 1
		if [[ $repl == *role:master* ]]; then
			masters=$((masters + 1))
		elif [[ $repl == *master_link_status:up* && $repl != *master_sync_in_progress:1* ]]; then
			synced=$((synced + 1))
		fi
	done
	((masters == 3 && synced == 3))
}

wait_rcluster_ok() {
	local start=$SECONDS
	until rcluster_ok; do
		if ((SECONDS - start >= TIMEOUT)); then
			redis_cluster_status >&2 || true
			die "the Redis cluster is not ok within ${TIMEOUT}s"
		fi
		sleep 0.2
	done
}

redis_cluster_up() {
	local n data up=0 addrs=()
	ensure_redis_bins
	for n in "${RCLUSTER_NODES[@]}"; do
		rnode_answers "$n" && up=$((up + 1))
	done
	if ((up == ${#RCLUSTER_NODES[@]})) && rcluster_ok; then
		log "redis-cluster: already up on $(redis_cluster_addrs)"
		return 0
	fi
	if ((up > 0)) && rcluster_data_dir >/dev/null; then
		log "redis-cluster: $up of 6 nodes answer; starting the others on their nodes.conf"
		for n in "${RCLUSTER_NODES[@]}"; do
			rnode_answers "$n" || spawn_rnode "$n"
		done
		wait_rcluster_ok
		log "redis-cluster: ready on $(redis_cluster_addrs)"
		return 0
	fi
	for n in "${RCLUSTER_NODES[@]}"; do
		port_open "$(rnode_port "$n")" && die "port $(rnode_port "$n") is taken by something that is not the Redis test cluster"
	done
	remove_rcluster_data
	mkdir -p "$RCLUSTER_STATE"
	data=$(mktemp -d "${TMPDIR:-/tmp}/kchat-redis-cluster.XXXXXX")
	echo "$data" >"$RCLUSTER_DATA_REC"
	for n in "${RCLUSTER_NODES[@]}"; do
		spawn_rnode "$n"
		addrs+=("$HOST:$(rnode_port "$n")")
	done
	log "redis-cluster: six nodes started (data $data), creating the cluster ..."
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes </dev/null >&2 9>&- ||
		die "redis-cli --cluster create failed (see above)"
	wait_rcluster_ok
	log "redis-cluster: ready on $(redis_cluster_addrs) (3 masters, 1 replica each, node timeout ${RCLUSTER_NODE_TIMEOUT} ms)"
}

remove_rcluster_data() {
	local d
	if [[ -f $RCLUSTER_DATA_REC ]]; then
		d=$(<"$RCLUSTER_DATA_REC")
		# Only ever delete a dir this script made.
		if [[ $d == */kchat-redis-cluster.* && -d $d ]]; then
			rm -rf "$d"
			log "redis-cluster: removed data dir $d"
		fi
		rm -f "$RCLUSTER_DATA_REC"
	fi
}

redis_cluster_down() {
	local n pid
	for n in "${RCLUSTER_NODES[@]}"; do
		if pid=$(rnode_pid "$n"); then
			kill -KILL "$pid" 2>/dev/null || true
			wait_exit "$pid" 10 || die "could not stop Redis node $n (pid $pid)"
		elif rnode_answers "$n"; then
			log "redis-cluster: WARNING: something answers on $HOST:$(rnode_port "$n") but was not started by this script; left alone"
		fi
	done
	remove_rcluster_data
	log "redis-cluster: stopped"
}

kill_redis_node() {
	local n=$1 pid
	pid=$(rnode_pid "$n") || die "Redis node $n is not running"
	kill -KILL "$pid"
	wait_exit "$pid" 10 || die "Redis node $n (pid $pid) survived SIGKILL"
	log "redis-cluster: killed node $n (pid $pid, port $(rnode_port "$n"))"
}

pause_redis_node() {
	local n=$1 pid
	pid=$(rnode_pid "$n") || die "Redis node $n is not running"
	kill -STOP "$pid"
	log "redis-cluster: paused node $n (pid $pid)"
}

resume_redis_node() {
	local n=$1 pid i
	pid=$(rnode_pid "$n") || die "Redis node $n is not running"
	kill -CONT "$pid"
	for ((i = 0; i < 100; i++)); do
		rnode_answers "$n" && { log "redis-cluster: resumed node $n (pid $pid)"; return 0; }
		sleep 0.1
	done
	die "Redis node $n (pid $pid) does not answer after SIGCONT"
}

# The id node $1 recorded for itself in its nodes.conf.
rnode_id() {
	local d
	d=$(rnode_dir "$1") || return 1
	awk '$3 ~ /myself/ { print $1; exit }' "$d/nodes.conf" 2>/dev/null
}

start_redis_node() {
	local n=$1 id m view
	rnode_answers "$n" && { log "redis-cluster: node $n already answers"; return 0; }
	rcluster_data_dir >/dev/null || die "no Redis cluster data dir: run redis-cluster-up"
	id=$(rnode_id "$n") || true
	# A master without persistence comes back empty: it may rejoin only once the others have
	# moved its slots to its replica (or it served none), or it would serve them empty.
	if [[ -n $id ]]; then
		for m in "${RCLUSTER_NODES[@]}"; do
			[[ $m == "$n" ]] && continue
			view=$(rnode_cli "$m" cluster nodes) || continue
			if awk -v id="$id" '$1 == id && $3 ~ /master/ && NF > 8 { found = 1 } END { exit !found }' <<<"$view"; then
				die "Redis node $n was a master and no replica has taken its slots over yet (node $m still lists it with slots): starting it now would serve them empty; wait for the failover"
			fi
			break
		done
	fi
	spawn_rnode "$n"
	log "redis-cluster: node $n started again, waiting for the cluster to be ok ..."
	wait_rcluster_ok
	log "redis-cluster: node $n rejoined"
}

redis_cluster_status() {
	local n rc=0 port line state=unknown repl
	for n in "${RCLUSTER_NODES[@]}"; do
		port=$(rnode_port "$n")
		if ! rnode_answers "$n"; then
			echo "redis node $n: down $HOST:$port"
			rc=3
			continue
		fi
		line=$(rnode_cli "$n" cluster nodes | awk '$3 ~ /myself/ { for (i = 9; i <= NF; i++) printf "%s%s", (i > 9 ? " " : ""), $i }')
		repl=$(rnode_cli "$n" info replication)
		if [[ $repl == *role:master* ]]; then
			echo "redis node $n: up   $HOST:$port master, slots ${line:-none}"
		else
			echo "redis node $n: up   $HOST:$port replica of $(sed -n 's/^master_port:\([0-9]*\).*/\1/p' <<<"$repl" | tr -d '\r'), link $(sed -n 's/^master_link_status:\([a-z]*\).*/\1/p' <<<"$repl" | tr -d '\r')"
		fi
		[[ $state == unknown ]] && state=$(rnode_cli "$n" cluster info | sed -n 's/^cluster_state:\([a-z]*\).*/\1/p' | tr -d '\r')
	done
	echo "redis cluster: state $state"
	[[ $state == ok ]] || rc=3
	return $rc
}

# ---------------------------------------------------------------- the Redis Sentinel deployment

# shellcheck source=scripts/redis/sentinel.sh
source "$SCRIPT_DIR/redis/sentinel.sh"

# ---------------------------------------------------------------- commands

cmd_status() {
	local rc=0 pid data
	if kafka_answers; then
		pid=$(kafka_pid || echo "not started by this script")
		data=$(kafka_data_dir || echo "?")
		echo "kafka: up   $HOST:$KAFKA_PORT (pid $pid, data $data)"
	elif pid=$(kafka_pid); then
		echo "kafka: starting (pid $pid, not answering yet)"
		rc=3
	elif [[ -f $KAFKA_STOPPED ]] && data=$(kafka_data_dir); then
		echo "kafka: down (stopped by stop-kafka; data kept in $data)"
		rc=3
	else
		echo "kafka: down"
		rc=3
	fi
	if redis_answers; then
		echo "redis: up   $HOST:$REDIS_PORT"
	else
		echo "redis: down"
		rc=3
	fi
	if jaeger_answers; then
		pid=$(jaeger_pid || echo "not started by this script")
		echo "jaeger: up  http://$HOST:$JAEGER_QUERY_PORT (UI, query API), OTLP $HOST:$OTLP_GRPC_PORT gRPC, $HOST:$OTLP_HTTP_PORT HTTP (pid $pid, Jaeger $(jaeger_version))"
	elif pid=$(jaeger_pid); then
		echo "jaeger: starting (pid $pid, not answering yet)"
		rc=3
	elif jaeger_fresh; then
		echo "jaeger: down"
		rc=3
	else
		echo "jaeger: down (binary not built yet, or older than scripts/jaeger/go.sum: up or build-jaeger builds it)"
		rc=3
	fi
	return $rc
}

usage() {
	sed -n '2,/^$/{/^$/d; s/^# \{0,1\}//; p}' "${BASH_SOURCE[0]}" >&2
}

main() {
	local cmd=${1:-}
	case $cmd in
	up)
		take_lock
		redis_up
		kafka_up
		jaeger_up
		print_env
		;;
	down)
		take_lock
		kafka_stop
		remove_kafka_data
		redis_down
		jaeger_down
		;;
	build-jaeger) jaeger_build ;;
	build-centrifugo) centrifugo_build ;;
	start-kafka)
		take_lock
		kafka_start
		;;
	stop-kafka)
		take_lock
		kafka_stop
		;;
	start-redis)
		take_lock
		redis_up
		;;
	stop-redis)
		take_lock
		redis_down
		;;
	status) cmd_status ;;
	env) print_env ;;
	cluster-up)
		take_lock
		cluster_up
		print_cluster_env
		;;
	cluster-down)
		take_lock
		cluster_down
		;;
	cluster-status) cluster_status ;;
	cluster-env) print_cluster_env ;;
	kill-broker | start-broker | pause-broker | resume-broker)
		[[ $# -eq 2 ]] || die "usage: $0 $cmd N (N: 1, 2 or 3)"
		check_node "$2"
		take_lock
		"${cmd//-/_}" "$2"
		;;
	redis-cluster-up)
		take_lock
		redis_cluster_up
		print_redis_cluster_env
		;;
	redis-cluster-down)
		take_lock
		redis_cluster_down
		;;
	redis-cluster-status) redis_cluster_status ;;
	redis-cluster-env) print_redis_cluster_env ;;
	kill-redis-node | start-redis-node | pause-redis-node | resume-redis-node)
		[[ $# -eq 2 ]] || die "usage: $0 $cmd N (N: 0 to 5, the node on port 7000+N)"
		check_redis_node "$2"
		take_lock
		"${cmd//-/_}" "$2"
		;;
	redis-sentinel-up)
		take_lock
		redis_sentinel_up
		print_redis_sentinel_env
		;;
	redis-sentinel-down)
		take_lock
		redis_sentinel_down
		;;
	redis-sentinel-status) redis_sentinel_status ;;
	redis-sentinel-env) print_redis_sentinel_env ;;
	kill-sentinel-redis | start-sentinel-redis)
		[[ $# -eq 2 ]] || die "usage: $0 $cmd N (N: 0 or 1, the node on port 7100+N)"
		check_sentinel_redis "$2"
		take_lock
		"${cmd//-/_}" "$2"
		;;
	-h | --help | help)
		usage
		;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
