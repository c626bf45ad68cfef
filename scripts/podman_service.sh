#!/usr/bin/env bash
# A Docker-API engine for the docker sandbox backend on a machine without Docker: podman's API service.
#
#   scripts/podman_service.sh [start]   install podman if missing, start the service, build/import the image,
#                                       then print `export DOCKER_HOST=unix://... SIZEUP_DOCKER_IMAGE=...` (the only line on stdout)
#   scripts/podman_service.sh stop      remove sizeup's containers and stop the service this script started
#   scripts/podman_service.sh status    say whether the service answers
#
# Idempotent: a running service and an imported image are reused. No registry is needed: the image
# (sizeup-python:3.11) is a Debian bookworm minbase rootfs with python3 (3.11), made by debootstrap from the
# mirror apt uses here and cached as a tarball in $SIZEUP_CACHE (outside the clone; scripts/cache_dir.sh).
#
# Podman runs in a private mount namespace with /sys/fs/cgroup/unified unmounted: on these VMs (a cgroup v1
# hybrid) podman fails with that cgroup2 mount present, and unmounting it on the host would disturb others.
# Settings: SIZEUP_PODMAN_DIR (socket, pid, log; default /run/sizeup-podman), SIZEUP_DOCKER_IMAGE.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
. "$REPO/scripts/cache_dir.sh"
STATE="${SIZEUP_PODMAN_DIR:-/run/sizeup-podman}"
SOCKET="$STATE/podman.sock"
PIDFILE="$STATE/podman.pid"
LOG="$STATE/service.log"
IMAGE="${SIZEUP_DOCKER_IMAGE:-sizeup-python:3.11}"
TOOLS="$SIZEUP_CACHE/podman"
ROOTFS_TAR="$TOOLS/bookworm-python3-rootfs.tar.gz"

say() { echo "podman_service: $*" >&2; }
api() { curl -sS --max-time 600 --unix-socket "$SOCKET" "$@"; }
answers() { [ -S "$SOCKET" ] && [ "$(curl -s --max-time 3 --unix-socket "$SOCKET" http://d/_ping 2>/dev/null)" = OK ]; }

need_root() {
    if [ "$(id -u)" != 0 ]; then say "needs root (apt-get, unshare -m)"; exit 1; fi
}

install_podman() {
    if command -v podman >/dev/null && command -v debootstrap >/dev/null && command -v curl >/dev/null; then
        return
    fi
    say "installing podman and debootstrap from Debian"
    local started=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # podman pulls in conmon, crun, catatonit (the containers' init), netavark, slirp4netns, uidmap; the
    # others are named so that a minimal system gets them too.
    apt-get install -y -qq podman crun catatonit fuse-overlayfs slirp4netns uidmap debootstrap curl >&2
    say "installed in $((SECONDS - started)) s"
}

# Two settings for the service:
# - podman asks crun for its own default ulimits (nofile, nproc), which fail where this VM lowered the hard
#   limits and we may not raise them: default to the limits we have (the sandbox sets its own anyway);
# - every exec through the API leaves two conmon processes waiting 5 minutes before they clean the session up
#   (podman #13222, #15377; Docker's exec reaper timing): thousands of them in a benchmark. 5 s is plenty
#   for the client to read the exit code.
write_conf() {
    local nofile nproc
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] && nofile=1048576
    [ "$nproc" = unlimited ] && nproc=4194304
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n\n[engine]\nexit_command_delay = 5\n' \
        "$nofile" "$nofile" "$nproc" "$nproc" >"$STATE/containers.conf"
}

start_service() {
    if answers; then say "service already answers at $SOCKET"; return; fi
    mkdir -p "$STATE"
    rm -f "$SOCKET"
    write_conf
    say "starting podman system service at $SOCKET"
    local started=$SECONDS
    # setsid: its own session, so the caller's Ctrl-C or end does not take the service with it.
    # cd "$2": conmon drops an `oom` marker file into its working directory when a container is OOM-killed.
    CONTAINERS_CONF="$STATE/containers.conf" setsid unshare -m sh -c \
        'if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
         cd "$2" && exec podman system service --time=0 "unix://$1"' sh "$SOCKET" "$STATE" </dev/null >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 300); do
        if answers; then say "service up in $((SECONDS - started)) s (pid $(cat "$PIDFILE"))"; return; fi
        if [ ! -e "/proc/$(cat "$PIDFILE")" ]; then break; fi  # the service died
        sleep 0.1
    done
    say "service did not answer; its log:"; cat "$LOG" >&2; exit 1
}

debian_mirror() {
    # The first deb.debian.org-style URI apt uses here (deb822 sources, then the one-line format).
    local uri
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' |
              grep -v security | head -n1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

build_rootfs() {
    if [ -s "$ROOTFS_TAR" ]; then return; fi
    mkdir -p "$TOOLS"
    local dir="$TOOLS/rootfs.build" mirror started=$SECONDS
    mirror=$(debian_mirror)
    say "debootstrap bookworm (minbase + python3) from $mirror"
    rm -rf "$dir"
    debootstrap --variant=minbase --include=python3 bookworm "$dir" "$mirror" >"$TOOLS/debootstrap.log" 2>&1 ||
        { say "debootstrap failed; see $TOOLS/debootstrap.log"; exit 1; }
    # What a container never needs: package caches, docs, man pages, translations.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc \
        "$dir"/usr/share/man "$dir"/usr/share/locale "$dir"/usr/share/info
    tar --numeric-owner -C "$dir" -c . | gzip -1 >"$ROOTFS_TAR.part"
    mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    rm -rf "$dir"
    say "rootfs built in $((SECONDS - started)) s: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
}

import_image() {
    local name="${IMAGE%%:*}" tag="${IMAGE##*:}"
    [ "$tag" = "$IMAGE" ] && tag=latest
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCKET" "http://d/images/$IMAGE/json")" = 200 ]; then
        say "image $IMAGE present"; return
    fi
    build_rootfs
    local started=$SECONDS reply id
    say "importing $ROOTFS_TAR as $IMAGE"
    # PATH and CMD as a python image has them. podman's compat import ignores repo/tag: tag it by id after.
    reply=$(api -X POST -H 'Content-Type: application/x-tar' --data-binary @"$ROOTFS_TAR" \
        "http://d/images/create?fromSrc=-&changes=ENV%20PATH%3D%2Fusr%2Flocal%2Fbin%3A%2Fusr%2Fbin%3A%2Fbin&changes=CMD%20%5B%22python3%22%5D")
    id=$(grep -o 'sha256:[0-9a-f]\{64\}' <<<"$reply" | sed -n 1p)  # sed reads all: no SIGPIPE under pipefail
    if [ -z "$id" ]; then say "import failed: $reply"; exit 1; fi
    api -X POST "http://d/images/$id/tag?repo=$name&tag=$tag" >/dev/null
    say "image $IMAGE ($id) imported in $((SECONDS - started)) s"
}

stop_service() {
    if answers; then
        # Containers outlive the service (conmon holds them): remove sizeup's first.
        local ids
        ids=$(api 'http://d/containers/json?all=true&filters=%7B%22label%22%3A%5B%22sizeup.sandbox%22%5D%7D' |
              grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4 || true)
        for id in $ids; do api -X DELETE "http://d/containers/$id?force=true" >/dev/null || true; done
    fi
    if [ -s "$PIDFILE" ]; then
        local pid
        pid=$(cat "$PIDFILE")
        # Only the service this script started: its pid, and only if it still is podman's service.
        local cmdline
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        if [[ $cmdline == *"podman system service"* ]]; then
            kill "$pid"
            for _ in $(seq 1 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
            say "stopped the service (pid $pid)"
        fi
        rm -f "$PIDFILE"
    fi
    rm -f "$SOCKET"
}

case "${1:-start}" in
    start)
        need_root
        install_podman
        start_service
        import_image
        echo "export DOCKER_HOST=unix://$SOCKET SIZEUP_DOCKER_IMAGE=$IMAGE"
        ;;
    stop) stop_service ;;
    status) if answers; then say "answers at $SOCKET"; else say "not running"; exit 1; fi ;;
    *) say "usage: $0 [start|stop|status]"; exit 2 ;;
esac
