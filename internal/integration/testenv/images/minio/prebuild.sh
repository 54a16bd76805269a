#!/usr/bin/env bash
# prebuild.sh puts static minio and mc binaries into this directory, the
# build context of the Dockerfile beside it. MinIO publishes no semver
# releases as Go modules, so both are pinned to pseudo-versions the module
# proxy serves. A binary already built at the pinned version is kept, so
# re-running testenv setup is cheap.
set -euo pipefail
cd "$(dirname "$0")"

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # minio master, 2026-02-12
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9    # mc master, 2025-03-13

build() { # build NAME MODULE VERSION
	local name=$1 module=$2 version=$3
	if [ -x "$name" ] && [ "$(cat "$name.version" 2>/dev/null)" = "$version" ]; then
		echo "$name $version already built"
		return
	fi
	rm -f "$name" "$name.version"
	echo "building $name $version (takes a few minutes)"
	CGO_ENABLED=0 GOBIN="$PWD" GOFLAGS=-buildvcs=false go install -trimpath "$module@$version"
	echo "$version" >"$name.version"
}

build minio github.com/minio/minio "$MINIO_VERSION"
build mc github.com/minio/mc "$MC_VERSION"
