# Chronik: build, test and benchmark.
#
#   make run     run a single node on ./data (Kafka on :9092, metrics on :8080)
#   make test    everything CI runs: format, vet, unit tests (race detector on the
#                concurrent packages), fuzz smoke runs, and the end-to-end tests
#                with real clients against the real binary
#   make deps    install what the tests need: the Debian packages (kcat,
#                python3-kafka, python3-confluent-kafka, prometheus, dnsmasq)
#                when missing, a Python venv with current PyPI clients
#                (test/clients/.venv) and the Kafka jars from Maven Central
#                (test/clients/java/target)
#   make bench   storage benchmarks (figures, not pass/fail)
#   make figures failover times of a 3-node cluster over 10 runs (figures)
#   make chaos   the chaos scenarios and a 2-minute nemesis (docs/fault-tolerance.md)
#   make nemesis a long randomized fault run with the history checker
#                (NEMESIS_DURATION, default 30m; NEMESIS_SEED to replay a run)
#   make benchmarks  Chronik standalone and a 3-node cluster against Apache
#                Kafka 4.1 (one and three nodes, its defaults and a flush per
#                batch) and kfake, one system at a time; writes
#                docs/BENCHMARKS.md and docs/benchmarks.png (about 22 minutes;
#                BENCH_FLAGS="--warmup 1s --duration 2s --latency-duration 2s --smoke"
#                for a quick smoke run)
#   make sustained   acks=all at 100K msg/s for 10 minutes against a fresh
#                standalone node, then verifies zero loss and reports RSS growth
#                (SUSTAINED_DURATION, SUSTAINED_RATE, SUSTAINED_SIZE, SUSTAINED_ARGS)

GO        ?= go
PKGS      := ./...
# Packages with concurrency run under the race detector.
RACE_PKGS := ./internal/storage/... ./internal/raftnode/... ./internal/replica/... \
             ./internal/wire/... ./internal/broker/... ./internal/group/... ./internal/meta/... ./internal/server/... \
             ./internal/transport/...
DEB_PKGS  := kcat python3-kafka python3-confluent-kafka prometheus e2fsprogs dnsmasq-base
# Fuzz budgets are execution counts (about 10 s each here), not durations:
# Go 1.26's fuzzing coordinator can fail a run with a spurious "context
# deadline exceeded" when a duration ends while a worker is mid-execution
# (go.dev/issue/75804, fixed in Go 1.27). Durations still work for longer
# runs. The log recovery fuzzer opens a store per input, hence its count.
FUZZTIME         ?= 100000x
STORAGE_FUZZTIME ?= 800x
# The handler fuzzer first replays its seeds (one request of every API
# against a running node) before it mutates: it needs longer. Minimizing
# each new interesting input (60 s by default) would take all its time.
HANDLER_FUZZTIME ?= 5000x

PYTHON   ?= python3
VENV     := test/clients/.venv
MVN      ?= mvn
JAVA_DIR := test/clients/java

NEMESIS_DURATION ?= 30m
NEMESIS_SEED     ?=

.PHONY: all build run test deps deps-debian deps-python deps-java fmt vet unit race fuzz e2e bench figures clean chaos nemesis benchmarks sustained

all: build

build:
	$(GO) build -o bin/chronik-server ./cmd/chronik-server

run:
	$(GO) run ./cmd/chronik-server standalone

deps: deps-debian deps-python deps-java

deps-debian:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Current releases of the Python clients from PyPI, beside Debian's old ones.
$(VENV)/.installed: test/clients/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r test/clients/requirements.txt
	touch $@

deps-python: $(VENV)/.installed

# The Java client, Kafka's tools, Streams, Connect and the Kafka broker, from
# Maven Central: compiled scenarios in target/classes, every jar in target/lib.
$(JAVA_DIR)/target/.built: $(JAVA_DIR)/pom.xml $(shell find $(JAVA_DIR)/src -name '*.java' 2>/dev/null)
	cd $(JAVA_DIR) && $(MVN) -q -B package -DskipTests
	touch $@

deps-java: $(JAVA_DIR)/target/.built

fmt:
	@out="$$(gofmt -l cmd internal test)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test)

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

# FuzzHandleRequest runs a node in each fuzzing worker process: one worker.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzValidate -fuzztime $(FUZZTIME) ./internal/recordbatch
	$(GO) test -run '^$$' -fuzz FuzzRecoverTail -fuzztime $(STORAGE_FUZZTIME) ./internal/storage
	$(GO) test -run '^$$' -fuzz FuzzDecodeRequest -fuzztime $(FUZZTIME) ./internal/wire
	$(GO) test -run '^$$' -fuzz FuzzHandleRequest -fuzztime $(HANDLER_FUZZTIME) -fuzzminimizetime 1s -parallel 1 ./internal/server

e2e: deps
	$(GO) test -count=1 -timeout 25m ./test/...

test: deps fmt vet unit race fuzz e2e

chaos:
	$(GO) test -count=1 -timeout 20m -v -run 'TestChaos|TestCheckHistory|TestClusterRejectsWritesWithoutQuorum' ./test/

nemesis:
	CHRONIK_NEMESIS_DURATION=$(NEMESIS_DURATION) CHRONIK_NEMESIS_SEED=$(NEMESIS_SEED) \
		$(GO) test -count=1 -timeout 0 -v -run 'TestChaosNemesis$$' ./test/

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/storage

BENCH_FLAGS ?=

benchmarks: deps-java
	$(GO) run ./cmd/chronik-benchreport $(BENCH_FLAGS)

sustained:
	GO=$(GO) ./scripts/sustained.sh

figures:
	CHRONIK_FIGURES=1 $(GO) test -count=1 -run TestFailoverFigures -v ./test/

clean:
	rm -rf bin data $(VENV) $(JAVA_DIR)/target
