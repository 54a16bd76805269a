#!/usr/bin/env bash
# prebuild.sh puts a static fake-gcs-server binary into this directory, the
# build context of the Dockerfile beside it, built with `go install` at the
# pinned release. A binary already built at that version is kept, so
# re-running testenv setup is cheap.
set -euo pipefail
cd "$(dirname "$0")"

FAKE_GCS_VERSION=v1.56.1

if [ -x fake-gcs-server ] && [ "$(cat fake-gcs-server.version 2>/dev/null)" = "$FAKE_GCS_VERSION" ]; then
	echo "fake-gcs-server $FAKE_GCS_VERSION already built"
	exit 0
fi
rm -f fake-gcs-server fake-gcs-server.version
echo "building fake-gcs-server $FAKE_GCS_VERSION (takes a minute or two)"
CGO_ENABLED=0 GOBIN="$PWD" GOFLAGS=-buildvcs=false go install -trimpath "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
echo "$FAKE_GCS_VERSION" >fake-gcs-server.version
