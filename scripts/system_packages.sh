#!/usr/bin/env bash
# Install Debian packages that are missing (`scripts/system_packages.sh bubblewrap time`), where this machine
# allows it: as root with apt-get. Otherwise say in one line what is missing and how to get it, and exit 0:
# the caller goes on without them (a run falls back to the process sandbox and says so; a test that needs
# one skips, or fails under its SIZEUP_REQUIRE_* variable).
set -euo pipefail
missing=()
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system_packages: installing ${missing[*]} from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    apt-get install -y -qq "${missing[@]}" >&2 ||
        echo "system_packages: could not install ${missing[*]} (apt-get failed; see above)" >&2
    exit 0
fi
echo "system_packages: missing ${missing[*]}; install them as root (sudo apt-get install ${missing[*]})" >&2
