#!/usr/bin/env bash
# `make test`: install and start everything the suite needs, run it, stop what it started.
#   - bubblewrap (the isolated sandbox) and GNU time (the monitor's reference): Debian packages, as root;
#   - FerretDB (the store's MongoDB half) and Ollama (the seed's provider, a real server): built from the Go
#     module proxy once per machine into $SIZEUP_CACHE;
#   - podman's Docker-API service with an image from a local Debian rootfs (the docker sandbox backend).
# Whatever cannot be set up here is said in one line; its tests then skip, or fail where CI sets
# SIZEUP_REQUIRE_*. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache_dir.sh
PY=${VENV:-.venv}/bin/python

# chromium: the dashboard's tests drive it through Playwright, which cannot download a browser here.
scripts/system_packages.sh bubblewrap time chromium

if path=$(scripts/install_ferretdb.sh); then
    export FERRETDB_BIN="$path"
else
    echo "test: FerretDB could not be built; the MongoDB tests will not run" >&2
fi

if path=$(scripts/install_ollama.sh); then
    export SIZEUP_OLLAMA_BIN="$path"
else
    echo "test: Ollama could not be built; the real-Ollama tests will not run" >&2
fi

started_podman=""
if [ -z "${DOCKER_HOST:-}" ]; then
    scripts/podman_service.sh status 2>/dev/null || started_podman=yes
    if exports=$(scripts/podman_service.sh start); then
        eval "$exports"
    else
        echo "test: no Docker-API engine (podman's service did not start); the docker tests will not run" >&2
        started_podman=""
    fi
fi
stop_podman() { if [ -n "$started_podman" ]; then scripts/podman_service.sh stop >/dev/null 2>&1 || true; fi; }
trap stop_podman EXIT

"$PY" -m pytest -q "$@"
