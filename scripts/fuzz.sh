#!/usr/bin/env bash
# API fuzzing: schemathesis (from PyPI) against the producer's and the
# consumer's OpenAPI documents, served by the all-in-one binary with its
# embedded broker. The check is the one kchat promises: no input, however
# malformed, gets a 5xx. Bounded: a fixed number of examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${KCHAT_FUZZ_VENV:-$HOME/.cache/kchat-fuzz/venv}
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
EXAMPLES=${KCHAT_FUZZ_EXAMPLES:-40}
PRODUCER=127.0.0.1:18000
CONSUMER=127.0.0.1:18001

if [[ ! -x $VENV/bin/schemathesis ]] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

bin=$(mktemp -d)/kchat
go build -o "$bin" ./cmd/kchat
log=$(mktemp)
# The admin listener on a free port: its default may be taken by a `make run`.
KCHAT_PRODUCER_ADDR=$PRODUCER KCHAT_CONSUMER_ADDR=$CONSUMER KCHAT_ADMIN_ADDR=127.0.0.1:0 KCHAT_LOG_LEVEL=warn "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	if curl -fsS "http://$PRODUCER/readyz" >/dev/null 2>&1 && curl -fsS "http://$CONSUMER/readyz" >/dev/null 2>&1; then
		break
	fi
	sleep 0.2
done

status=0
for addr in $PRODUCER $CONSUMER; do
	echo "== schemathesis against http://$addr/openapi.yaml ($EXAMPLES examples per operation)"
	"$VENV/bin/schemathesis" run "http://$addr/openapi.yaml" \
		--checks not_a_server_error --max-examples "$EXAMPLES" --no-color || status=1
done
if grep -q '"level":"ERROR"' "$log"; then
	echo "kchat logged errors during fuzzing:" >&2
	grep '"level":"ERROR"' "$log" | head -20 >&2
	status=1
fi
exit $status
