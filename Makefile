# make test is the README's test command. On a fresh machine it brings up
# what the tests need (a Docker daemon, locally built server images) and runs
# every test with the race detector; CERTCACHE_TEST_REQUIRE=1 turns a missing
# server into a failure instead of a skip. scripts/gotest.sh ends a failed
# run with a summary of what failed, after the servers' logs.
GO ?= go
export CERTCACHE_TEST_REQUIRE ?= 1

FUZZTIME ?= 15s

.PHONY: test testenv check unit bench bench-micro bench-restart fuzz soak

test: testenv check
	GO=$(GO) bash scripts/gotest.sh -race -count=1 -timeout 60m ./...
	cd caddy && GO=$(GO) bash ../scripts/gotest.sh -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# fuzz runs each fuzz target for a bounded time. Inputs that found new
# coverage are kept in the Go build cache; the interesting ones are committed
# under internal/reliability/testdata/fuzz and replayed by every go test.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzOpenURL$$' -fuzztime $(FUZZTIME) ./internal/reliability
	$(GO) test -run '^$$' -fuzz '^FuzzKeys$$' -fuzztime $(FUZZTIME) ./internal/reliability

# soak runs the e2e soak (TestFleetSoak: five nodes renewing 60-second
# certificates while Redis and PostgreSQL are paused at random) for
# SOAKTIME; make test runs it for its default of three minutes.
SOAKTIME ?= 12m
soak: testenv
	CERTCACHE_SOAK=$(SOAKTIME) $(GO) test -race -count=1 -run '^TestFleetSoak$$' -timeout 60m -v ./e2e

# testenv installs and starts Docker if needed and builds the test images.
testenv:
	bash scripts/testenv-setup.sh

check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags benchreport ./internal/benchreport
	cd caddy && $(GO) vet ./...

# The Caddy module is a nested Go module (caddy/, its own go.mod) so that
# Caddy's requirements stay out of the root module's; ./... does not reach
# it, so test and check name it.

# unit runs what needs no Docker (mem://, file://, parsers).
unit:
	CERTCACHE_TEST_REQUIRE=0 $(GO) test -race -count=1 ./...
	cd caddy && CERTCACHE_TEST_REQUIRE=0 $(GO) test -race -count=1 ./...

# bench measures every backend beside its raw SDK/driver call on the same
# test servers and writes bench-results/bench.{md,csv,svg} (see
# BENCHMARKS.md).
# BENCHARGS passes flags to the report, e.g. BENCHARGS='-backends s3,postgres'.
BENCHARGS ?=
bench: testenv
	$(GO) test -tags benchreport -run '^TestBenchReport$$' -count=1 -v -timeout 30m ./internal/benchreport -args -out bench-results $(BENCHARGS)

# bench-restart measures a restarted node's preload on Redis and PostgreSQL,
# on loopback and behind 10 ms of latency (BENCHMARKS.md#restart). About
# five minutes; make test does not run it.
bench-restart: testenv
	$(GO) test -run '^$$' -bench '^BenchmarkRestart$$' -benchtime 1x -count=1 -timeout 30m -v ./internal/reliability

# bench-micro runs the packages' own Go benchmarks.
bench-micro: testenv
	$(GO) test -run '^$$' -bench . -benchmem ./...
