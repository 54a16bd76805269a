#!/usr/bin/env bash
# gotest.sh runs go test with the given arguments, keeps the whole output in
# a log file, and, when go test fails, ends with a summary of the failures.
#
# Failing end-to-end tests print pages of server logs (Pebble, dockerd,
# testcontainers) before the one line that says what went wrong; a CI view
# that keeps only the head and tail of the output loses that line. The
# summary repeats it last: every "--- FAIL" line, every message a test file
# reported (file_test.go:N:), panics and race reports.
#
# Usage: scripts/gotest.sh [go test flags and packages]
# GOTEST_LOG names the log file (default: a new file under ${TMPDIR:-/tmp}).
set -uo pipefail

GO=${GO:-go}
log=${GOTEST_LOG:-$(mktemp "${TMPDIR:-/tmp}/certcache-gotest.XXXXXX.log")}

"$GO" test "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
	echo
	echo "=== go test failed (exit $rc) in $(pwd); whole output: $log"
	echo "=== failures, and what the tests reported:"
	# Tests report as "    file.go:123: text", from test files and from
	# the helpers they call (testenv's Pause, say); helpers that forward
	# server logs report from log.go and are left out.
	grep -E -- '^\s*--- FAIL|^\s+[A-Za-z0-9_]+\.go:[0-9]+: |^FAIL\s|^panic:|WARNING: DATA RACE|race detected during execution|test timed out' "$log" |
		grep -Ev -- '^\s+log\.go:[0-9]+: ' |
		cut -c1-600 | tail -n 200
fi
exit "$rc"
