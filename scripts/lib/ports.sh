# free_port prints a TCP port on 127.0.0.1 that nothing listens on now, so
# the test targets (fuzz, smoke, e2e) run beside a `make run` or anything
# else that holds kchat's default ports. The kernel picks it; the tiny
# window until the service binds it is the only race.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
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
