#!/usr/bin/env bash
# make readme-check: runs every shell block of README.md that calls curl,
# in order and in one shell (later blocks use the variables earlier ones
# set, as a reader pasting them would), against a `make run` of its own.
# Every curl fails on an HTTP error (--fail-with-body): a 404 or a 500
# fails the check, naming the README line. The services take free ports
# (a `make run` may hold the defaults; scripts/lib/ports.sh), and the
# README's localhost:8000-8003 and 127.0.0.1:8100 are rewritten to them.
# Everything it writes (the log, the blocks, curl's cookie jars: TMPDIR)
# goes to one temp folder, removed on exit with the make run it started,
# and so does bin/kchat, which make run builds, unless it was there before.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ports.sh
readme=${README:-README.md} # another file: to check this script on a broken one

work=$(mktemp -d)
pid=
built=
[ -e bin/kchat ] || built=bin/kchat
stop() {
	if [ -n "$pid" ]; then
		kill -TERM -- -"$pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL -- -"$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
	if [ -n "$built" ]; then
		rm -f "$built"
		rmdir bin 2>/dev/null || true
	fi
}
trap stop EXIT

untracked_before=$(git ls-files --others --exclude-standard)

# The blocks: fenced bash/sh/shell blocks that contain curl, each headed by
# its README line number.
awk '
	!inside && /^```(bash|sh|shell)[ \t]*$/ { inside = 1; start = NR + 1; body = ""; next }
	inside && /^```[ \t]*$/ {
		inside = 0
		if (body ~ /(^|[^[:alnum:]_-])curl /) printf "\n__readme_line %d\n%s", start, body
		next
	}
	inside { body = body $0 "\n" }
' "$readme" >"$work/blocks"
if ! grep -q '^__readme_line' "$work/blocks"; then
	echo "readme-check: README.md has no shell block with curl: the extraction is broken" >&2
	exit 1
fi

go build -o /dev/null ./cmd/kchat # warm the build so the readiness clock starts after it
kchat_free_ports
admin=127.0.0.1:$(free_port)
export KCHAT_ADMIN_ADDR=$admin
declare -A port=(
	[8000]=$KCHAT_TEST_PRODUCER [8001]=$KCHAT_TEST_CONSUMER
	[8002]=$KCHAT_TEST_GATEWAY [8003]=$KCHAT_TEST_ANSWERER [8100]=$admin
)

# Each address the blocks name must be one of make run's.
if bad=$(grep -oE '(localhost|127\.0\.0\.1):[0-9]+' "$work/blocks" | grep -vE ':(8000|8001|8002|8003|8100)$'); then
	echo "readme-check: README blocks name addresses make run does not serve: $(sort -u <<<"$bad" | tr '\n' ' ')" >&2
	exit 1
fi
sed -E \
	-e "s/(localhost|127\.0\.0\.1):8000\b/${port[8000]}/g" -e "s/(localhost|127\.0\.0\.1):8001\b/${port[8001]}/g" \
	-e "s/(localhost|127\.0\.0\.1):8002\b/${port[8002]}/g" -e "s/(localhost|127\.0\.0\.1):8003\b/${port[8003]}/g" \
	-e "s/(localhost|127\.0\.0\.1):8100\b/${port[8100]}/g" \
	"$work/blocks" >"$work/blocks.rewritten"

# The requests the blocks make: every curl outside comments.
expected=$(grep -v '^__readme_line' "$work/blocks" | sed -E -e 's/^[[:space:]]*#.*$//' -e 's/[[:space:]]#[[:space:]].*$//' | grep -oE '(^|[^[:alnum:]_-])curl ' | wc -l)

{
	cat <<'EOF'
set -euo pipefail
__line=?
curl() {
	printf 'README.md:%s: curl %s\n' "$__line" "$*" >>"$__calls"
	command curl --fail-with-body --show-error --max-time 60 "$@" || {
		local rc=$?
		echo "readme-check: README.md line $__line: curl failed (exit $rc; 22 is an HTTP error status)" >&2
		return "$rc"
	}
}
EOF
	# __readme_line N: the lines after it are README.md's from line N. Each
	# command (not each continuation line) first says where it is.
	awk '/^__readme_line / { n = $2 - 1; cont = 0; next } { n++; if (!cont) print "__line=" n; print; cont = ($0 ~ /\\$/) }' "$work/blocks.rewritten"
} >"$work/blocks.sh"

setsid make run >"$work/run.log" 2>&1 &
pid=$!
start=$SECONDS
for addr in "${port[8000]}" "${port[8001]}" "${port[8002]}" "${port[8003]}"; do
	until curl -fsS "http://$addr/readyz" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS - start > 90)); then
			echo "readme-check: make run is not ready on $addr" >&2
			cat "$work/run.log" >&2
			exit 1
		fi
		sleep 0.2
	done
done
echo "readme-check: make run ready in $((SECONDS - start)) s; running README.md's curl blocks"

: >"$work/calls"
if ! (cd "$work" && TMPDIR=$work __calls=$work/calls bash "$work/blocks.sh" >"$work/out" 2>&1); then
	cat "$work/calls" "$work/out" >&2
	echo "readme-check: FAILED; make run's log:" >&2
	tail -n 50 "$work/run.log" >&2
	exit 1
fi
made=$(wc -l <"$work/calls")
if [ "$made" -ne "$expected" ]; then
	cat "$work/out" >&2
	echo "readme-check: the blocks hold $expected curl commands but $made ran" >&2
	exit 1
fi
cut -c1-160 "$work/calls"
if [ "$(git ls-files --others --exclude-standard)" != "$untracked_before" ]; then
	echo "readme-check: new untracked files in the tree:" >&2
	diff <(echo "$untracked_before") <(git ls-files --others --exclude-standard) >&2 || true
	[ -z "${CI:-}" ] || exit 1
fi
echo "readme-check: $made requests from README.md, every one answered 2xx"
