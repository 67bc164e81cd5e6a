#!/usr/bin/env bash
# A generated client in another language, as the README shows it: Python,
# generated from the committed openapi.yaml by openapi-python-client (PyPI),
# calling POST /messages on the producer and GET /messages on the consumer
# of an all-in-one on free ports. Fails if the spec no longer generates a
# client, or the client cannot talk to the services.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ports.sh

VENV=${KCHAT_CLIENT_VENV:-$HOME/.cache/kchat-client/venv}
GENERATOR_VERSION=${OPENAPI_PYTHON_CLIENT_VERSION:-0.29.1}
if [[ ! -x $VENV/bin/openapi-python-client ]] || ! "$VENV/bin/openapi-python-client" --version | grep -q "$GENERATOR_VERSION"; then
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "openapi-python-client==$GENERATOR_VERSION"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/openapi-python-client" generate --path openapi.yaml --output-path "$work/client" >"$work/generate.log" 2>&1 ||
	{ cat "$work/generate.log" >&2; exit 1; }
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work/client"

go build -o "$work/kchat" ./cmd/kchat
kchat_free_ports
KCHAT_LOG_LEVEL=warn "$work/kchat" >"$work/kchat.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do
	curl -fsS "http://$KCHAT_TEST_PRODUCER/readyz" >/dev/null 2>&1 && curl -fsS "http://$KCHAT_TEST_CONSUMER/readyz" >/dev/null 2>&1 && break
	sleep 0.2
done
"$work/venv/bin/python" scripts/clients/python_check.py "http://$KCHAT_TEST_PRODUCER" "http://$KCHAT_TEST_CONSUMER" ||
	{ echo "kchat's log:" >&2; tail -20 "$work/kchat.log" >&2; exit 1; }
