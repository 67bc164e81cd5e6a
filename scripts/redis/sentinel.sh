# shellcheck shell=bash
# The Redis Sentinel test deployment of scripts/services.sh (sourced by it, not run on its
# own; it uses that script's helpers: the lock, log/die, pid_is, port_open, wait_exit,
# ensure_redis_bins). The session store's Sentinel tests (adapters/redis) run on it;
# docs/reliability.md, "Sessions on Redis Sentinel".
#
# Two Debian redis-server processes, node N (0, 1) on 127.0.0.1:(7100+N), started as a master
# (node 0) and its replica (node 1); which one is the master changes with failovers. Three
# sentinels (redis-server --sentinel: the same binary, no redis-sentinel package needed) on
# 127.0.0.1:7110-7112 watch them under the master name "kchat", quorum 2,
# down-after-milliseconds 1000 and failover-timeout 2000, so that a failover takes seconds.
# Not on Sentinel's usual 26379: that is where Debian's redis-sentinel service listens when
# installed, and it is inside 20000-31999, where the test targets draw free ports.
# No persistence (a killed node comes back empty and resyncs from the master); a replica's
# full sync starts at once (repl-diskless-sync-delay 0, not Redis 7's 5 s).
# Each process has a dir (the sentinels' rewritten sentinel.conf, pid file, log) in a fresh
# $STATE_DIR/redis-sentinel/run.* on each redis-sentinel-up from nothing.

RSENT_STATE=$STATE_DIR/redis-sentinel
RSENT_DATA_REC=$RSENT_STATE/data-dir # holds the path of the current run dir
RSENT_MASTER=kchat
RSENT_NODES=(0 1)
RSENT_SENTINELS=(0 1 2)
RSENT_QUORUM=2
RSENT_DOWN_AFTER=1000
RSENT_FAILOVER_TIMEOUT=2000

snode_port() { echo $((7100 + $1)); }
sentinel_port() { echo $((7110 + $1)); }

redis_sentinel_addrs() {
	local s out=""
	for s in "${RSENT_SENTINELS[@]}"; do
		out+="${out:+,}$HOST:$(sentinel_port "$s")"
	done
	echo "$out"
}

print_redis_sentinel_env() {
	echo "export KCHAT_TEST_REDIS_SENTINEL_ADDRS=$(redis_sentinel_addrs) KCHAT_TEST_REDIS_SENTINEL_MASTER=$RSENT_MASTER"
}

check_sentinel_redis() { # $1 must name a data node
	[[ $1 =~ ^[01]$ ]] || die "no Redis node '$1' in the Sentinel deployment: its nodes are 0 and 1 (ports 7100 and 7101)"
}

snode_cli() { # $1: node; the rest: a redis-cli command
	local n=$1
	shift
	timeout 5 redis-cli -h "$HOST" -p "$(snode_port "$n")" "$@" </dev/null 2>/dev/null
}

sentinel_cli() { # $1: sentinel; the rest: a redis-cli command
	local s=$1
	shift
	timeout 5 redis-cli -h "$HOST" -p "$(sentinel_port "$s")" "$@" </dev/null 2>/dev/null
}

snode_answers() { [[ $(snode_cli "$1" ping) == PONG ]]; }
sentinel_answers() { [[ $(sentinel_cli "$1" ping) == PONG ]]; }

rsent_data_dir() { # the recorded run dir, if it still exists
	local d
	[[ -f $RSENT_DATA_REC ]] || return 1
	d=$(<"$RSENT_DATA_REC")
	[[ -n $d && -d $d ]] || return 1
	echo "$d"
}

snode_dir() {
	local d
	d=$(rsent_data_dir) || return 1
	echo "$d/redis-$(snode_port "$1")"
}

sentinel_dir() {
	local d
	d=$(rsent_data_dir) || return 1
	echo "$d/sentinel-$(sentinel_port "$1")"
}

# The pid of data node $1 or sentinel $1, from its pid file; redis-server titles itself
# "redis-server host:port" (a sentinel adds " [sentinel]").
snode_pid() {
	local d pid
	d=$(snode_dir "$1") || return 1
	[[ -f $d/redis.pid ]] || return 1
	pid=$(<"$d/redis.pid")
	pid_is "$pid" "redis-server $HOST:$(snode_port "$1")" || return 1
	echo "$pid"
}

sentinel_pid() {
	local d pid
	d=$(sentinel_dir "$1") || return 1
	[[ -f $d/sentinel.pid ]] || return 1
	pid=$(<"$d/sentinel.pid")
	pid_is "$pid" "redis-server $HOST:$(sentinel_port "$1")" || return 1
	echo "$pid"
}

# wait_answers WHAT PORT LOG: wait up to 10 s until redis-cli -p PORT ping answers.
wait_answers() {
	local what=$1 port=$2 logf=$3 i
	for ((i = 0; i < 100; i++)); do
		[[ $(timeout 5 redis-cli -h "$HOST" -p "$port" ping </dev/null 2>/dev/null) == PONG ]] && return 0
		sleep 0.1
	done
	tail -n 20 "$logf" >&2 2>/dev/null || true
	die "$what did not answer PING on $HOST:$port"
}

# Start data node $1, a replica of $2 (host:port) when given, and wait until it answers.
spawn_snode() {
	local n=$1 of=${2:-} d port args=()
	d=$(snode_dir "$n") || die "no Sentinel deployment run dir: run redis-sentinel-up"
	port=$(snode_port "$n")
	mkdir -p "$d"
	[[ -f $d/redis.log ]] && mv -f "$d/redis.log" "$d/redis.log.prev"
	[[ -n $of ]] && args=(--replicaof "${of%:*}" "${of##*:}")
	redis-server --bind "$HOST" --port "$port" --dir "$d" \
		--save '' --appendonly no --repl-diskless-sync-delay 0 \
		--daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log" "${args[@]}" \
		</dev/null >&2 9>&- || die "redis-server on port $port failed to start (see $d/redis.log)"
	wait_answers "Redis node $n" "$port" "$d/redis.log"
}

# Start sentinel $1 on its sentinel.conf (written when missing: a fresh deployment whose master
# is node 0; later the sentinel rewrites it with what it learned) and wait until it answers.
spawn_sentinel() {
	local s=$1 d port
	d=$(sentinel_dir "$s") || die "no Sentinel deployment run dir: run redis-sentinel-up"
	port=$(sentinel_port "$s")
	mkdir -p "$d"
	if [[ ! -f $d/sentinel.conf ]]; then
		cat >"$d/sentinel.conf" <<EOF
# Generated by scripts/services.sh redis-sentinel-up; the sentinel rewrites it.
bind $HOST
port $port
dir $d
daemonize yes
pidfile $d/sentinel.pid
logfile $d/sentinel.log
sentinel monitor $RSENT_MASTER $HOST $(snode_port 0) $RSENT_QUORUM
sentinel down-after-milliseconds $RSENT_MASTER $RSENT_DOWN_AFTER
sentinel failover-timeout $RSENT_MASTER $RSENT_FAILOVER_TIMEOUT
sentinel parallel-syncs $RSENT_MASTER 1
EOF
	fi
	redis-server "$d/sentinel.conf" --sentinel </dev/null >&2 9>&- ||
		die "the sentinel on port $port failed to start (see $d/sentinel.log)"
	wait_answers "Sentinel $s" "$port" "$d/sentinel.log"
}

# snode_info N FIELD: a field of data node N's INFO replication.
snode_info() {
	snode_cli "$1" info replication | tr -d '\r' | sed -n "s/^$2:\(.*\)/\1/p"
}

# sentinel_fields S COMMAND...: a sentinel's reply as "field value" lines (a flat map, or for
# a list of maps one line per field, each map starting with its "name").
sentinel_fields() {
	local s=$1
	shift
	sentinel_cli "$s" "$@" | tr -d '\r' | awk 'NR % 2 { k = $0; next } { print k, $0 }'
}

# The master's host:port as sentinel $1 tells it.
sentinel_master_addr() {
	local reply
	reply=$(sentinel_cli "$1" sentinel get-master-addr-by-name "$RSENT_MASTER" | tr -d '\r') || return 1
	[[ $(wc -l <<<"$reply") -eq 2 ]] || return 1
	echo "$(head -n1 <<<"$reply"):$(tail -n1 <<<"$reply")"
}

# The master as the sentinels tell it: the address a majority of them give.
sentinels_master() {
	local s
	for s in "${RSENT_SENTINELS[@]}"; do
		sentinel_master_addr "$s" || true
	done | sort | uniq -c | awk -v q="$RSENT_QUORUM" '$1 >= q { print $2; exit }' | grep .
}

# True when both data nodes answer, one is the master and the other its replica in sync, and
# every sentinel names that master, sees it up, knows the two other sentinels and sees the
# replica up with its link to the master up.
rsentinel_ok() {
	local n s m="" r="" fields
	for n in "${RSENT_NODES[@]}"; do
		case $(snode_info "$n" role) in
		master) m=$n ;;
		slave) r=$n ;;
		*) return 1 ;;
		esac
	done
	[[ -n $m && -n $r ]] || return 1
	[[ $(snode_info "$r" master_port) == "$(snode_port "$m")" && $(snode_info "$r" master_link_status) == up &&
		$(snode_info "$r" master_sync_in_progress) == 0 ]] || return 1
	for s in "${RSENT_SENTINELS[@]}"; do
		[[ $(sentinel_master_addr "$s") == "$HOST:$(snode_port "$m")" ]] || return 1
		fields=$(sentinel_fields "$s" sentinel master "$RSENT_MASTER") || return 1
		grep -qx 'flags master' <<<"$fields" && grep -qx 'num-other-sentinels 2' <<<"$fields" || return 1
		sentinel_fields "$s" sentinel replicas "$RSENT_MASTER" |
			awk -v want="$HOST:$(snode_port "$r")" '$1 == "name" { cur = $2 } cur == want && $0 == "flags slave" { f = 1 }
				cur == want && $0 == "master-link-status ok" { l = 1 } END { exit !(f && l) }' || return 1
	done
}

wait_rsentinel_ok() {
	local start=$SECONDS
	until rsentinel_ok; do
		if ((SECONDS - start >= TIMEOUT)); then
			redis_sentinel_status >&2 || true
			die "the Redis Sentinel deployment is not whole within ${TIMEOUT}s"
		fi
		sleep 0.2
	done
}

redis_sentinel_up() {
	local n s m up=0 data total=$((${#RSENT_NODES[@]} + ${#RSENT_SENTINELS[@]}))
	ensure_redis_bins
	for n in "${RSENT_NODES[@]}"; do snode_answers "$n" && up=$((up + 1)); done
	for s in "${RSENT_SENTINELS[@]}"; do sentinel_answers "$s" && up=$((up + 1)); done
	if ((up == total)) && rsentinel_ok; then
		log "redis-sentinel: already up (sentinels $(redis_sentinel_addrs), master $(sentinels_master))"
		return 0
	fi
	if ((up > 0)) && rsent_data_dir >/dev/null; then
		log "redis-sentinel: $up of $total processes answer; starting the others"
		for s in "${RSENT_SENTINELS[@]}"; do
			sentinel_answers "$s" || spawn_sentinel "$s"
		done
		for n in "${RSENT_NODES[@]}"; do
			snode_answers "$n" && continue
			m=$(sentinels_master) || die "the sentinels name no master: run redis-sentinel-down, then redis-sentinel-up"
			[[ $m != "$HOST:$(snode_port "$n")" ]] || die "Redis node $n is down and still the master for the sentinels: wait for the failover, or run redis-sentinel-down, then redis-sentinel-up"
			spawn_snode "$n" "$m"
		done
		wait_rsentinel_ok
		log "redis-sentinel: ready, master $(sentinels_master)"
		return 0
	fi
	for n in "${RSENT_NODES[@]}"; do
		port_open "$(snode_port "$n")" && die "port $(snode_port "$n") is taken by something that is not the Redis Sentinel test deployment"
	done
	for s in "${RSENT_SENTINELS[@]}"; do
		port_open "$(sentinel_port "$s")" && die "port $(sentinel_port "$s") is taken by something that is not the Redis Sentinel test deployment"
	done
	remove_rsentinel_data
	mkdir -p "$RSENT_STATE"
	data=$(mktemp -d "$RSENT_STATE/run.XXXXXX")
	echo "$data" >"$RSENT_DATA_REC"
	spawn_snode 0
	spawn_snode 1 "$HOST:$(snode_port 0)"
	for s in "${RSENT_SENTINELS[@]}"; do
		spawn_sentinel "$s"
	done
	log "redis-sentinel: 2 Redis nodes and 3 sentinels started (run dir $data), waiting until they know each other ..."
	wait_rsentinel_ok
	log "redis-sentinel: ready: master $HOST:$(snode_port 0), replica $HOST:$(snode_port 1), sentinels $(redis_sentinel_addrs) (master name $RSENT_MASTER, quorum $RSENT_QUORUM, down after ${RSENT_DOWN_AFTER} ms)"
}

remove_rsentinel_data() {
	local d
	if [[ -f $RSENT_DATA_REC ]]; then
		d=$(<"$RSENT_DATA_REC")
		# Only ever delete a dir this script made.
		if [[ $d == */redis-sentinel/run.* && -d $d ]]; then
			rm -rf "$d"
			log "redis-sentinel: removed run dir $d"
		fi
		rm -f "$RSENT_DATA_REC"
	fi
}

redis_sentinel_down() {
	local n s pid pids=()
	for s in "${RSENT_SENTINELS[@]}"; do # first, so that they start no failover
		if pid=$(sentinel_pid "$s"); then
			kill -KILL "$pid" 2>/dev/null || true
			pids+=("$pid")
		elif sentinel_answers "$s"; then
			log "redis-sentinel: WARNING: something answers on $HOST:$(sentinel_port "$s") but was not started by this script; left alone"
		fi
	done
	for n in "${RSENT_NODES[@]}"; do
		if pid=$(snode_pid "$n"); then
			kill -KILL "$pid" 2>/dev/null || true
			pids+=("$pid")
		elif snode_answers "$n"; then
			log "redis-sentinel: WARNING: something answers on $HOST:$(snode_port "$n") but was not started by this script; left alone"
		fi
	done
	for pid in "${pids[@]}"; do # killed all at once, then waited for: each takes a while to go
		wait_exit "$pid" 10 || die "could not stop pid $pid of the Redis Sentinel deployment"
	done
	remove_rsentinel_data
	log "redis-sentinel: stopped"
}

kill_sentinel_redis() {
	local n=$1 pid
	pid=$(snode_pid "$n") || die "Redis node $n of the Sentinel deployment is not running"
	kill -KILL "$pid"
	wait_exit "$pid" 10 || die "Redis node $n (pid $pid) survived SIGKILL"
	log "redis-sentinel: killed node $n (pid $pid, port $(snode_port "$n"))"
}

# Start node $1 again as the replica of the master the sentinels name; refused while that is
# still node $1 itself: without persistence it would come back an empty master, and its
# replica would copy the empty data.
start_sentinel_redis() {
	local n=$1 m
	snode_answers "$n" && { log "redis-sentinel: node $n already answers"; return 0; }
	rsent_data_dir >/dev/null || die "no Sentinel deployment run dir: run redis-sentinel-up"
	m=$(sentinels_master) || die "the sentinels name no master (a majority of them must agree)"
	[[ $m != "$HOST:$(snode_port "$n")" ]] ||
		die "Redis node $n was the master and the sentinels have not promoted its replica yet: starting it now would serve the data empty; wait for the failover"
	spawn_snode "$n" "$m"
	log "redis-sentinel: node $n started again as the replica of $m, waiting until it is in sync ..."
	wait_rsentinel_ok
	log "redis-sentinel: node $n in sync"
}

redis_sentinel_status() {
	local n s rc=0 port role fields
	for n in "${RSENT_NODES[@]}"; do
		port=$(snode_port "$n")
		if ! snode_answers "$n"; then
			echo "redis node $n: down $HOST:$port"
			rc=3
			continue
		fi
		role=$(snode_info "$n" role)
		if [[ $role == master ]]; then
			echo "redis node $n: up   $HOST:$port master, $(snode_info "$n" connected_slaves) replica(s) connected"
		else
			echo "redis node $n: up   $HOST:$port replica of $(snode_info "$n" master_port), link $(snode_info "$n" master_link_status)"
		fi
	done
	for s in "${RSENT_SENTINELS[@]}"; do
		port=$(sentinel_port "$s")
		if ! sentinel_answers "$s"; then
			echo "sentinel $s:   down $HOST:$port"
			rc=3
			continue
		fi
		fields=$(sentinel_fields "$s" sentinel master "$RSENT_MASTER")
		echo "sentinel $s:   up   $HOST:$port master $(sentinel_master_addr "$s") ($(awk '$1 == "flags" { print $2 }' <<<"$fields")), $(awk '$1 == "num-other-sentinels" { print $2 }' <<<"$fields") other sentinels"
	done
	if rsentinel_ok; then
		echo "redis sentinel: ok (master name $RSENT_MASTER)"
	else
		echo "redis sentinel: not whole"
		rc=3
	fi
	return $rc
}
