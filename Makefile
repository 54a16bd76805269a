# make test is the README's test command. On a fresh machine it brings up
# what the tests need (a Docker daemon, locally built server images) and runs
# every test with the race detector; CERTCACHE_TEST_REQUIRE=1 turns a missing
# server into a failure instead of a skip. scripts/gotest.sh ends a failed
# run with a summary of what failed, after the servers' logs.
GO ?= go
export CERTCACHE_TEST_REQUIRE ?= 1

FUZZTIME ?= 15s

.PHONY: test testenv check unit bench bench-micro bench-restart fuzz soak demo

# The repository holds six Go modules. The root is the library; the nested
# ones keep heavy trees out of its users' go.sum: internal/integration (the
# Docker harness, Pebble, the backends' suites against real servers, e2e,
# reliability, benchmarks), certmagicstore (CertMagic), cmd/certcache (the
# CLI), examples and caddy (Caddy). ./... stops at a nested module, so test
# and check name each one.
MODULES := . certmagicstore cmd/certcache examples caddy internal/integration

test: testenv check
	@fail=; for m in $(MODULES); do \
		echo "=== go test in $$m"; \
		(cd $$m && GO=$(GO) bash $(CURDIR)/scripts/gotest.sh -race -count=1 -timeout 60m ./...) || fail="$$fail $$m"; \
	done; \
	if [ -n "$$fail" ]; then echo "=== go test failed in:$$fail"; exit 1; fi
	$(MAKE) fuzz

# fuzz runs each fuzz target for a bounded time. Inputs that found new
# coverage are kept in the Go build cache; the interesting ones are committed
# under internal/integration/reliability/testdata/fuzz and replayed by every go test.
fuzz:
	cd internal/integration && $(GO) test -run '^$$' -fuzz '^FuzzOpenURL$$' -fuzztime $(FUZZTIME) ./reliability
	cd internal/integration && $(GO) test -run '^$$' -fuzz '^FuzzKeys$$' -fuzztime $(FUZZTIME) ./reliability

# soak runs the e2e soak (TestFleetSoak: five nodes renewing 60-second
# certificates while Redis and PostgreSQL are paused at random) for
# SOAKTIME; make test runs it for its default of three minutes.
SOAKTIME ?= 12m
soak: testenv
	cd internal/integration && CERTCACHE_SOAK=$(SOAKTIME) $(GO) test -race -count=1 -run '^TestFleetSoak$$' -timeout 60m -v ./e2e

# testenv installs and starts Docker if needed and builds the test images.
testenv:
	bash scripts/testenv-setup.sh

check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	cd internal/integration && $(GO) vet -tags benchreport ./benchreport

# unit runs what needs no Docker (mem://, file://, parsers).
unit:
	set -e; for m in $(MODULES); do (cd $$m && CERTCACHE_TEST_REQUIRE=0 $(GO) test -race -count=1 ./...); done

# bench measures every backend beside its raw SDK/driver call on the same
# test servers and writes bench-results/bench.{md,csv,svg} (see
# BENCHMARKS.md).
# BENCHARGS passes flags to the report, e.g. BENCHARGS='-backends s3,postgres'.
BENCHARGS ?=
bench: testenv
	cd internal/integration && $(GO) test -tags benchreport -run '^TestBenchReport$$' -count=1 -v -timeout 30m ./benchreport -args -out bench-results $(BENCHARGS)

# bench-restart measures a restarted node's preload on Redis and PostgreSQL,
# on loopback and behind 10 ms of latency (BENCHMARKS.md#restart). About
# five minutes; make test does not run it.
bench-restart: testenv
	cd internal/integration && $(GO) test -run '^$$' -bench '^BenchmarkRestart$$' -benchtime 1x -count=1 -timeout 30m -v ./reliability

# bench-micro runs the packages' own Go benchmarks.
bench-micro: testenv
	set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...); done

# demo runs the README's demo: a real ACME issuance against Pebble in the
# process (cmd/certcache is a module of its own, so go run runs there).
DEMOARGS ?=
demo:
	cd cmd/certcache && $(GO) run . demo $(DEMOARGS)
