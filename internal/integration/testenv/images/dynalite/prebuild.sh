#!/usr/bin/env bash
# prebuild.sh installs a pinned dynalite, a DynamoDB emulator, from the npm
# registry into app/ here, the build context of the Dockerfile beside it, with
# the machine's npm. The image runs it on Debian bookworm's Node.js 18.
#
# dynalite 3.2.2 is the newest release that runs on Node 18 (4.0.0 wants 20)
# and its in-memory store (memdown) is plain JavaScript. Its only native
# module, leveldown, is an optional dependency for an on-disk store, whose
# install script would download prebuilt binaries or node headers; the tests
# keep their tables in memory, so --omit=optional leaves it out and
# --ignore-scripts runs no install script: the install needs nothing but the
# npm registry. An install already at the pinned version is kept, so
# re-running testenv setup is cheap.
set -euo pipefail
cd "$(dirname "$0")"

DYNALITE_VERSION=3.2.2

if [ -f app/node_modules/dynalite/package.json ] && [ "$(cat dynalite.version 2>/dev/null)" = "$DYNALITE_VERSION" ]; then
	echo "dynalite $DYNALITE_VERSION already installed"
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "prebuild: npm is needed to install dynalite" >&2; exit 1; }
rm -rf app dynalite.version
mkdir app
echo "installing dynalite $DYNALITE_VERSION with npm"
npm install --prefix "$PWD/app" --omit=dev --omit=optional --no-audit --no-fund --ignore-scripts --loglevel=error \
	--save-exact "dynalite@$DYNALITE_VERSION"
echo "$DYNALITE_VERSION" >dynalite.version
