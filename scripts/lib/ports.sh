# free_port prints a TCP port on 127.0.0.1 that nothing is bound to now, so
# the test targets (fuzz, smoke, e2e) run beside a `make run` or anything
# else that holds kchat's default ports. It is drawn from 20000–31999, below
# Linux's ephemeral range (32768–60999): a port from there can be taken by
# the source port of any outgoing connection (the e2e test's restart of
# kchat on the same ports failed so once in CI), one from below cannot.
free_port() {
	python3 -c '
import random, socket
for _ in range(200):
    port = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port in 20000-31999")
'
}

# kchat_free_ports exports every listen address of the all-in-one (and the
# gateway's URLs of the producer and the consumer) on free ports, and
# KCHAT_TEST_{PRODUCER,CONSUMER,GATEWAY,ANSWERER} with their host:port.
kchat_free_ports() {
	local name port
	for name in PRODUCER CONSUMER GATEWAY ANSWERER; do
		port=$(free_port)
		export "KCHAT_${name}_ADDR=127.0.0.1:$port" "KCHAT_TEST_${name}=127.0.0.1:$port"
	done
	export KCHAT_ADMIN_ADDR=127.0.0.1:0
	export KCHAT_PRODUCER_URL="http://$KCHAT_TEST_PRODUCER" KCHAT_CONSUMER_URL="http://$KCHAT_TEST_CONSUMER"
}
