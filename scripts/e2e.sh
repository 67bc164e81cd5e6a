#!/usr/bin/env bash
# Browser end-to-end test of the web chat page: the all-in-one binary (its
# embedded broker, in-memory sessions) on loopback, Debian's chromium driven
# by npm's playwright-core (which downloads no browser of its own). Every
# service on a free port (a `make run` may hold the defaults), the same ports
# across the test's restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ports.sh

if [[ ! -x /usr/bin/chromium ]]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q chromium </dev/null >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium </dev/null >/dev/null; }
fi
(cd adapters/web/e2e && npm ci --silent --no-audit --no-fund)

work=$(mktemp -d)
bin=$work/kchat
go build -o "$bin" ./cmd/kchat
# The server runs from a script of its own, so that the browser test can restart
# it (KCHAT_E2E_RESTART): sessions are in memory, and a restart loses them. The
# cookie key is fixed, so the visitor keeps its identity across the restart.
# The extractive generator's clauses come KCHAT_EXTRACTIVE_PACE apart (80ms
# unless set), so that the browser sees a real answer grow (issue 17).
pace=${KCHAT_EXTRACTIVE_PACE:-80ms}
cookie_key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
kchat_free_ports
gateway=$KCHAT_TEST_GATEWAY
cat >"$work/start.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
if [[ -s "$work/pid" ]]; then
	kill "\$(cat "$work/pid")" 2>/dev/null || true
	# Until the old process has let go of its port.
	while curl -s -o /dev/null http://$gateway/healthz; do sleep 0.1; done
fi
KCHAT_GATEWAY_ADDR=$KCHAT_GATEWAY_ADDR KCHAT_PRODUCER_ADDR=$KCHAT_PRODUCER_ADDR KCHAT_CONSUMER_ADDR=$KCHAT_CONSUMER_ADDR \\
	KCHAT_ANSWERER_ADDR=$KCHAT_ANSWERER_ADDR KCHAT_ADMIN_ADDR=127.0.0.1:0 KCHAT_LOG_LEVEL=warn \\
	KCHAT_PRODUCER_URL=$KCHAT_PRODUCER_URL KCHAT_CONSUMER_URL=$KCHAT_CONSUMER_URL \\
	KCHAT_EXTRACTIVE_PACE=$pace KCHAT_COOKIE_KEY=$cookie_key nohup "$bin" >>"$work/kchat.log" 2>&1 </dev/null &
echo \$! >"$work/pid"
for _ in \$(seq 1 100); do
	curl -fsS http://$gateway/readyz >/dev/null 2>&1 && exit 0
	sleep 0.2
done
echo "kchat did not become ready; its log:" >&2
cat "$work/kchat.log" >&2
exit 1
EOF
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true' EXIT
bash "$work/start.sh"
KCHAT_GATEWAY_URL=http://$gateway KCHAT_E2E_RESTART="bash $work/start.sh" \
	KCHAT_SCREENSHOT=${KCHAT_SCREENSHOT:-$work/e2e-chat.png} \
	node adapters/web/e2e/chat.spec.mjs
