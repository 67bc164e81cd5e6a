#!/usr/bin/env bash
# The newcomer's path, as the README tells it: `make run`, then ask kchat a
# question about itself over WebSocket (cmd/ask) and over POST /chat; both
# must answer with a citation within 60 s of the build finishing. Then
# Ctrl-C, as a terminal sends it (SIGINT to make's whole process group): kchat
# must shut down cleanly and make report no error.
# Every service on a free port (a `make run` may hold the defaults); the
# gateway's address reaches cmd/ask through KCHAT_GATEWAY_WS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ports.sh

go build -o /dev/null ./cmd/kchat # warm the build so the clock below starts after it
work=$(mktemp -d)
ask=$work/ask
go build -o "$ask" ./cmd/ask
log=$work/run.log
kchat_free_ports
gateway=$KCHAT_TEST_GATEWAY
export KCHAT_GATEWAY_WS="ws://$gateway/ws"
setsid make run >"$log" 2>&1 &
pid=$!
trap 'kill -- -"$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
start=$SECONDS
until curl -fsS "http://$gateway/readyz" >/dev/null 2>&1; do
	((SECONDS - start < 60)) || { echo "make run: not ready within 60 s" >&2; cat "$log" >&2; exit 1; }
	sleep 0.2
done
answer=$(timeout $((60 - (SECONDS - start))) "$ask" "How do I start kchat?")
echo "$answer"
grep -q '\[1\]' <<<"$answer" || { echo "the WebSocket answer has no citation" >&2; exit 1; }
chat=$(curl -fsS -XPOST "$gateway/chat" -H 'content-type: application/json' -d '{"message":"What does ack=manual do?"}')
echo "$chat"
grep -q '"citations":\[{' <<<"$chat" || { echo "POST /chat answered without a citation" >&2; exit 1; }
echo "make run: answered over WebSocket and POST /chat within $((SECONDS - start)) s"
# The banner follows a readiness round of every service: it may come just after the gateway's.
for _ in $(seq 50); do grep -q 'kchat is running:' "$log" && break; sleep 0.2; done
grep -q 'kchat is running:' "$log" || { echo "make run printed no banner" >&2; cat "$log" >&2; exit 1; }
kill -INT -- -"$pid"
status=0
timeout 30 tail --pid="$pid" -f /dev/null || { echo "make run did not stop within 30 s of Ctrl-C" >&2; exit 1; }
wait "$pid" || status=$?
trap - EXIT
# make re-raises the SIGINT it got itself once its child is done (status
# 130); what must not appear is its complaint about the child.
if grep -E '^make: \*\*\*' "$log" >&2 || ((status != 0 && status != 130)); then
	echo "Ctrl-C did not end make run cleanly (status $status):" >&2; tail -20 "$log" >&2; exit 1
fi
echo "make run: Ctrl-C ended it cleanly (status $status)"
