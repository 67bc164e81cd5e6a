#!/usr/bin/env bash
# Browser end-to-end test of the web chat page: the all-in-one binary (its
# embedded broker, in-memory sessions) on loopback, Debian's chromium driven
# by npm's playwright-core (which downloads no browser of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/chromium ]]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q chromium </dev/null >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium </dev/null >/dev/null; }
fi
(cd adapters/web/e2e && npm ci --silent --no-audit --no-fund)

bin=$(mktemp -d)/kchat
go build -o "$bin" ./cmd/kchat
log=$(mktemp)
KCHAT_GATEWAY_ADDR=127.0.0.1:18102 KCHAT_PRODUCER_ADDR=127.0.0.1:18100 KCHAT_CONSUMER_ADDR=127.0.0.1:18101 \
	KCHAT_ANSWERER_ADDR=127.0.0.1:18103 KCHAT_ADMIN_ADDR=127.0.0.1:18104 KCHAT_LOG_LEVEL=warn "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	curl -fsS http://127.0.0.1:18102/readyz >/dev/null 2>&1 && break
	sleep 0.2
done
KCHAT_GATEWAY_URL=http://127.0.0.1:18102 KCHAT_SCREENSHOT=${KCHAT_SCREENSHOT:-$(mktemp -d)/e2e-chat.png} \
	node adapters/web/e2e/chat.spec.mjs
