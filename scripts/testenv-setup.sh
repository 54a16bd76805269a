#!/usr/bin/env bash
# testenv-setup.sh prepares a machine to run certcache's tests against real
# servers: it makes sure a Docker engine answers, then builds the test images
# that internal/integration/testenv starts with testcontainers-go.
#
# Nothing is pulled from an image registry. The base image is a Debian
# bookworm tree made with debootstrap (or, with BASE_IMAGE set, any image you
# already have, e.g. BASE_IMAGE=debian:bookworm-slim on a laptop), and each
# service image in internal/integration/testenv/images/NAME/ is built from its Dockerfile
# with `docker build --network host`, after an optional prebuild.sh there has
# put binaries (built with `go install`) into the build context.
#
# On a machine with a running Docker engine (a laptop, most CI) it only
# builds the images. On a bare Debian machine, as root, it installs docker.io
# and debootstrap and starts dockerd without bridge or iptables, as a sandbox
# with loopback-only networking needs; the tests then use host networking.
#
# Re-running is cheap: an image whose inputs did not change is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
images_dir=$root/internal/integration/testenv/images
state=${CERTCACHE_TESTENV_STATE:-$root/.cache/testenv}
mkdir -p "$state"

log() { printf 'testenv: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

docker_ok() { docker info >/dev/null 2>&1; }

apt_install() {
	local missing=()
	for pkg in "$@"; do
		dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return
	log "installing ${missing[*]}"
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_dockerd() {
	command -v dockerd >/dev/null 2>&1 || apt_install docker.io
	log "starting dockerd (host networking only: no bridge, no iptables)"
	local driver=overlay2
	# overlay2 needs a file system that supports it under /var/lib/docker.
	if ! grep -qw overlay /proc/filesystems && ! as_root modprobe overlay 2>/dev/null; then
		driver=vfs
	fi
	as_root bash -c "setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
		--storage-driver=$driver >'$state/dockerd.log' 2>&1 </dev/null &"
	for _ in $(seq 1 60); do
		docker_ok && return
		sleep 1
	done
	log "dockerd did not start; its log:"
	tail -n 30 "$state/dockerd.log" >&2
	exit 1
}

ensure_docker() {
	if ! command -v docker >/dev/null 2>&1; then
		apt_install docker.io
	fi
	docker_ok || start_dockerd
	docker_ok || { log "cannot reach a Docker engine"; exit 1; }
}

# hash_inputs prints a digest of the recipe of an image: the files of its
# directory that git tracks (Dockerfile, prebuild.sh, configs), not the
# binaries a prebuild.sh puts beside them, which that recipe pins. An image
# labelled with the same digest is current: neither prebuild.sh nor the
# build runs again.
hash_inputs() {
	if [ -n "$(git -C "$1" ls-files . 2>/dev/null)" ]; then
		(cd "$1" && git ls-files -z . | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
	else
		(cd "$1" && find . -type f ! -name '*.version' -print0 | LC_ALL=C sort -z |
			xargs -0 sha256sum) | sha256sum | cut -c1-16
	fi
}

image_label() { # image_label IMAGE: the certcache.inputs label, or nothing
	docker image inspect -f '{{ index .Config.Labels "certcache.inputs" }}' "$1" 2>/dev/null || true
}

build_base() {
	local image=certcache-test/base:bookworm
	if [ -n "${BASE_IMAGE:-}" ]; then
		log "base image: $BASE_IMAGE (from BASE_IMAGE)"
		docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || docker pull "$BASE_IMAGE"
		docker tag "$BASE_IMAGE" "$image"
		return
	fi
	if docker image inspect "$image" >/dev/null 2>&1; then
		return
	fi
	command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
	local mirror
	mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 | sed -E 's/^(URIs:|deb) +//; s/ +$//' || true)
	mirror=${mirror:-http://deb.debian.org/debian}
	log "building $image with debootstrap from $mirror"
	local dir
	dir=$(mktemp -d "$state/rootfs.XXXXXX")
	as_root debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$state/debootstrap.log" 2>&1 || {
		tail -n 30 "$state/debootstrap.log" >&2
		exit 1
	}
	# Point apt inside the image at the same mirror, and keep images small.
	echo "deb $mirror bookworm main" | as_root tee "$dir/etc/apt/sources.list" >/dev/null
	as_root rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
	as_root tar -C "$dir" -c . | docker import - "$image" >/dev/null
	as_root rm -rf "$dir"
}

build_image() { # build_image NAME
	local name=$1 dir=$images_dir/$1
	local image=certcache-test/$name:latest
	local inputs
	inputs=$(hash_inputs "$dir")
	if [ "$(image_label "$image")" = "$inputs" ]; then
		log "$image is up to date"
		return
	fi
	if [ -x "$dir/prebuild.sh" ]; then
		"$dir/prebuild.sh"
	fi
	log "building $image"
	docker build --network host -q --label "certcache.inputs=$inputs" -t "$image" "$dir" >/dev/null
}

main() {
	ensure_docker
	build_base
	local names=("$@")
	if [ ${#names[@]} -eq 0 ]; then
		for d in "$images_dir"/*/; do
			[ -f "$d/Dockerfile" ] && names+=("$(basename "$d")")
		done
	fi
	for name in "${names[@]}"; do
		build_image "$name"
	done
	log "ready: ${names[*]}"
}

main "$@"
