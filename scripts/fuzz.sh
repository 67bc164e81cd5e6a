#!/usr/bin/env bash
# API fuzzing: schemathesis (from PyPI) against the OpenAPI documents of the
# producer, the consumer and the gateway, served by the all-in-one binary
# with its embedded broker, on free ports (a `make run` may hold the
# defaults). The check is the one kchat promises: no input, however
# malformed, gets a 5xx. Bounded: a fixed number of examples per operation.
# schemathesis keeps its cache in the directory it runs in: a temporary one,
# never the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ports.sh

VENV=${KCHAT_FUZZ_VENV:-$HOME/.cache/kchat-fuzz/venv}
SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
EXAMPLES=${KCHAT_FUZZ_EXAMPLES:-40}

if [[ ! -x $VENV/bin/schemathesis ]] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
bin=$work/kchat
go build -o "$bin" ./cmd/kchat
log=$work/kchat.log
kchat_free_ports
KCHAT_LOG_LEVEL=warn KCHAT_LOG_FORMAT=json "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do
	if curl -fsS "http://$KCHAT_TEST_PRODUCER/readyz" >/dev/null 2>&1 && curl -fsS "http://$KCHAT_TEST_CONSUMER/readyz" >/dev/null 2>&1 &&
		curl -fsS "http://$KCHAT_TEST_GATEWAY/readyz" >/dev/null 2>&1; then
		break
	fi
	sleep 0.2
done

status=0
for addr in "$KCHAT_TEST_PRODUCER" "$KCHAT_TEST_CONSUMER" "$KCHAT_TEST_GATEWAY"; do
	echo "== schemathesis against http://$addr/openapi.yaml ($EXAMPLES examples per operation)"
	(cd "$work" && "$VENV/bin/schemathesis" run "http://$addr/openapi.yaml" \
		--checks not_a_server_error --max-examples "$EXAMPLES" --no-color) || status=1
done
if grep -q '"level":"ERROR"' "$log"; then
	echo "kchat logged errors during fuzzing:" >&2
	grep '"level":"ERROR"' "$log" | head -20 >&2
	status=1
fi
exit $status
