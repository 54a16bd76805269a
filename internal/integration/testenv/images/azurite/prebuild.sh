#!/usr/bin/env bash
# prebuild.sh installs a pinned Azurite from the npm registry into app/ here,
# the build context of the Dockerfile beside it, with the machine's npm. The
# image runs it on Debian bookworm's Node.js 18: Azurite 3.35.0 is the newest
# release whose package.json accepts Node 18 (3.36 wants 21, 3.37 wants 22).
# Azurite is plain JavaScript, so what npm installs here runs in the image.
# An install already at the pinned version is kept, so re-running testenv
# setup is cheap.
set -euo pipefail
cd "$(dirname "$0")"

AZURITE_VERSION=3.35.0

if [ -f app/node_modules/azurite/package.json ] && [ "$(cat azurite.version 2>/dev/null)" = "$AZURITE_VERSION" ]; then
	echo "azurite $AZURITE_VERSION already installed"
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "prebuild: npm is needed to install azurite" >&2; exit 1; }
rm -rf app azurite.version
mkdir app
echo "installing azurite $AZURITE_VERSION with npm"
npm install --prefix "$PWD/app" --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error \
	--save-exact "azurite@$AZURITE_VERSION"
echo "$AZURITE_VERSION" >azurite.version
