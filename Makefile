# kchat — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
GO ?= go
GOLANGCI_LINT := $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
SERVICES := $(CURDIR)/scripts/services.sh
BIN := $(CURDIR)/bin
# Extra `go test` flags, e.g. GOTESTFLAGS=-v (CI uses it to count tests).
GOTESTFLAGS ?=

export KCHAT_TEST_SERVICES_SCRIPT ?= $(SERVICES)

.PHONY: help run build test test-integration chaos bench fuzz client-check smoke readme-check e2e lint openapi openapi-check services-up services-down services-status cluster-up cluster-down cluster-status redis-cluster-up redis-cluster-down redis-cluster-status redis-sentinel-up redis-sentinel-down redis-sentinel-status scale-up scale-down scale-status scale-check compose-env eval clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# run builds first, listing each package as it compiles (a first build, with
# empty caches, takes minutes: README, "Two commands"), then execs the binary:
# Ctrl-C stops kchat itself (not `go run`, which exited 1 on it), whose clean
# shutdown exits 0, so make reports no error.
run: ## Run every service in one process (embedded Kafka unless KCHAT_KAFKA_BROKERS is set)
	@echo "building bin/kchat (go build -v: each package is listed as it compiles; nothing is listed when the build cache has them)" >&2
	$(GO) build -v -o $(BIN)/kchat ./cmd/kchat
	@exec $(BIN)/kchat

build: ## Build every binary into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

test: ## Hermetic tests: only Go needed (memory adapters, kfake)
	$(GO) test -race -count=1 $(GOTESTFLAGS) -skip '^TestIntegration' ./...

eval: ## Answer quality per question set: recall@3 and answer-cites-right-file (docs/quality.md; KCHAT_EVAL_MISSES=1 lists the misses)
	$(GO) test -count=1 -v -run '^TestQuality$$' ./adapters/rag/

test-integration: ## Tests against the real Kafka, Redis and Jaeger of `make services-up` (its exported KCHAT_TEST_* variables)
	@if [ -z "$$KCHAT_TEST_KAFKA_BROKERS" ] || [ -z "$$KCHAT_TEST_REDIS_URL" ]; then \
		echo "KCHAT_TEST_KAFKA_BROKERS and KCHAT_TEST_REDIS_URL must be set: run 'make services-up' and export what it prints" >&2; \
		if [ -n "$$CI" ]; then echo "CI is set: missing services are a failure, not a skip" >&2; exit 1; fi; \
	fi
	$(GO) test -race -count=1 $(GOTESTFLAGS) -run 'Integration' -skip 'IntegrationOutage|IntegrationCluster|IntegrationChaos' ./...
	@# Outage tests stop and restart the shared broker: one package at a time, after the rest.
	$(GO) test -race -count=1 $(GOTESTFLAGS) -p 1 -run 'IntegrationOutage' ./...

# The packages that hold cluster or chaos tests: with ./..., go test would
# link and start every package's test binary, one at a time, for nothing
# (about a minute on two cores).
CHAOS_PKGS = $(shell grep -rlE --include='*_test.go' --exclude-dir=node_modules 'func Test[A-Za-z0-9_]*Integration(Cluster|Chaos)' . | xargs -r -n1 dirname | sort -u)

chaos: ## Fault scenarios on the 3-broker cluster of `make cluster-up` and Redis, one package at a time (about 8 min on 2 cores; KCHAT_CHAOS_SHORT=1: CI's short run)
	@if [ -z "$$KCHAT_TEST_CLUSTER_BROKERS" ] || [ -z "$$KCHAT_TEST_REDIS_URL" ]; then \
		echo "KCHAT_TEST_CLUSTER_BROKERS and KCHAT_TEST_REDIS_URL must be set: run 'make cluster-up' and 'make services-up' and export what they print" >&2; \
		if [ -n "$$CI" ]; then echo "CI is set: missing services are a failure, not a skip" >&2; exit 1; fi; \
	fi
	$(GO) test -race -count=1 -p 1 -timeout 30m $(GOTESTFLAGS) -run 'IntegrationCluster|IntegrationChaos' $(CHAOS_PKGS)

bench: ## Benchmarks against same-run baselines on the Kafka and Redis of `make services-up`; writes docs/benchmarks.{md,json} (KCHAT_BENCH_SHORT=1: brief run into bin/bench/; KCHAT_BENCH_RUNS=3: three full runs into bin/bench/runs/, then the report of their medians)
	@if [ -z "$$KCHAT_TEST_KAFKA_BROKERS" ] || [ -z "$$KCHAT_TEST_REDIS_URL" ]; then \
		echo "KCHAT_TEST_KAFKA_BROKERS and KCHAT_TEST_REDIS_URL must be set: run 'make services-up' and export what it prints" >&2; exit 1; \
	fi
	$(GO) run ./cmd/kbench

fuzz: ## schemathesis (PyPI) against both OpenAPI documents: no input gets a 5xx (needs Python 3)
	bash scripts/fuzz.sh

client-check: ## Generate a Python client from openapi.yaml (openapi-python-client, PyPI) and call POST /messages and GET /messages with it
	bash scripts/client.sh

smoke: ## make run, then a question over WebSocket (cmd/ask) and POST /chat, answered with citations within 60 s
	bash scripts/smoke.sh

readme-check: ## Every README shell block with curl, run against its own make run (free ports): any 4xx/5xx fails
	bash scripts/readme.sh

e2e: ## Browser test of the web chat page (Debian's chromium + npm's playwright-core; installs them if missing)
	bash scripts/e2e.sh

lint: ## golangci-lint (pinned), including the layer rules (depguard)
	$(GOLANGCI_LINT) run ./...

openapi: ## Regenerate openapi.yaml (producer and consumer) and openapi-gateway.yaml from the code
	$(GO) run ./cmd/openapi > openapi.yaml
	$(GO) run ./cmd/openapi gateway > openapi-gateway.yaml
	$(GO) generate ./adapters/restclient/

openapi-check: ## Fail if openapi.yaml or openapi-gateway.yaml differs from what the code generates
	@$(GO) run ./cmd/openapi | diff -u openapi.yaml - \
		|| { echo "openapi.yaml is stale: run 'make openapi' and commit it" >&2; exit 1; }
	@$(GO) run ./cmd/openapi gateway | diff -u openapi-gateway.yaml - \
		|| { echo "openapi-gateway.yaml is stale: run 'make openapi' and commit it" >&2; exit 1; }
	@$(GO) generate ./adapters/restclient/ && git diff --exit-code -- adapters/restclient/ \
		|| { echo "adapters/restclient is stale: run 'make openapi' and commit it" >&2; exit 1; }

services-up: ## Start real Kafka (KRaft, 127.0.0.1:9092), Redis (127.0.0.1:6379) and Jaeger v2 (UI 127.0.0.1:16686, OTLP :4317/:4318; built with Go the first time, about 5 min); prints the env to export
	@bash $(SERVICES) up

services-down: ## Stop the three and delete Kafka's data
	@bash $(SERVICES) down

services-status: ## Tell whether Kafka, Redis and Jaeger answer
	@bash $(SERVICES) status

cluster-up: ## Start the 3-broker test cluster (KRaft, 127.0.0.1:19092,19094,19096; RF 3, min ISR 2) unless it runs; prints the env to export
	@bash $(SERVICES) cluster-up

cluster-down: ## Stop the test cluster and delete its data
	@bash $(SERVICES) cluster-down

cluster-status: ## Tell whether each node of the test cluster is up, paused or down
	@bash $(SERVICES) cluster-status

redis-cluster-up: ## Start the Redis test cluster (6 redis-server in cluster mode, 127.0.0.1:7000-7005; 3 masters, 1 replica each) unless it runs; prints the env to export
	@bash $(SERVICES) redis-cluster-up

redis-cluster-down: ## Stop the Redis test cluster and delete its data
	@bash $(SERVICES) redis-cluster-down

redis-cluster-status: ## Tell each Redis test cluster node's role (master of which slots, replica of which node) or that it is down
	@bash $(SERVICES) redis-cluster-status

redis-sentinel-up: ## Start the Redis Sentinel test deployment (master and replica on 127.0.0.1:7100-7101, 3 sentinels on :7110-7112, master name kchat) unless it runs; prints the env to export
	@bash $(SERVICES) redis-sentinel-up

redis-sentinel-down: ## Stop the Redis Sentinel test deployment and delete its data
	@bash $(SERVICES) redis-sentinel-down

redis-sentinel-status: ## Tell each node's role and each sentinel's view of the Redis Sentinel test deployment
	@bash $(SERVICES) redis-sentinel-status

scale-up: ## docker-compose.scale.yml without Docker: the 3-broker cluster, Redis, 2 producers, 2 consumers, 2 answerers, 3 gateways and HAProxy (127.0.0.1:32080); prints the env to export
	@bash scripts/scale.sh up

scale-down: ## Stop HAProxy and every replica of scale-up (the cluster and Redis keep running)
	@bash scripts/scale.sh down

scale-status: ## Tell whether each process of scale-up is up and ready, and HAProxy's view of the gateways
	@bash scripts/scale.sh status

scale-check: ## scale-up, then a question through HAProxy and to each gateway (answered with citations), a message through each producer taken through the consumers; then scale-down
	@bash scripts/scale.sh check

# The secrets docker-compose.yml reads (docs/security.md, "make compose-env").
COMPOSE_KEYS := KCHAT_COOKIE_KEY KCHAT_ANSWER_KEY KCHAT_RECEIPT_KEY
ENV_FILE ?= $(CURDIR)/.env

compose-env: ## Write random KCHAT_*_KEY secrets to .env (git-ignored) for docker compose; keys already there are kept
	@umask 077; touch "$(ENV_FILE)"; \
	if [ -s "$(ENV_FILE)" ] && [ -n "$$(tail -c1 "$(ENV_FILE)")" ]; then echo >>"$(ENV_FILE)"; fi; \
	for k in $(COMPOSE_KEYS); do \
		if grep -q "^$$k=." "$(ENV_FILE)"; then echo "$$k: kept"; continue; fi; \
		echo "$$k=$$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >>"$(ENV_FILE)"; echo "$$k: new random key"; \
	done; echo "wrote $(ENV_FILE)"

clean: ## Remove built binaries
	rm -rf $(BIN)
