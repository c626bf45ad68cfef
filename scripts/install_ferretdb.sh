#!/usr/bin/env bash
# Build FerretDB v1.24.2: the MongoDB-wire server the store tests run against, with its SQLite handler
# (no PostgreSQL, no service to install). Installs to $SIZEUP_CACHE/bin/ferretdb-VERSION (outside the clone,
# so every clone on the machine shares it), or to $FERRETDB_BIN, and prints its path (the only line on stdout).
# Idempotent: a binary of this version already there is kept.
#
# Why not `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: that binary panics with
# "Invalid build/version/version.txt", because FerretDB's own build generates that file first.
# So: fetch the module source, write version.txt, build it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache_dir.sh
VERSION=v1.24.2
DEST=${FERRETDB_BIN:-$SIZEUP_CACHE/bin/ferretdb-$VERSION}

# `--version` prints several lines: read them whole, never through `| head` or `grep -q`, which stop reading
# early; under pipefail the writer's SIGPIPE (exit 141) then failed this script (seen in a CI run).
installed_version() { "$DEST" --version 2>/dev/null | sed -n 's/^version: //p' || true; }

if [ -x "$DEST" ] && [ "$(installed_version)" = "$VERSION" ]; then
    echo "install_ferretdb: $DEST is FerretDB $VERSION already" >&2
    echo "$DEST"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "install_ferretdb: Go is needed to build FerretDB (https://go.dev/dl/)" >&2
    exit 1
fi

echo "install_ferretdb: building FerretDB $VERSION into $DEST" >&2
# The module cache is read-only; build from a writable copy.
SRC=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -R "$SRC/." "$WORK/src"
chmod -R u+w "$WORK/src"
echo "$VERSION" > "$WORK/src/build/version/version.txt"

mkdir -p "$(dirname "$DEST")"
PARTIAL="$DEST.partial.$$"  # beside DEST, so the rename below is atomic: never a half-written binary
# Pure Go (its SQLite is modernc.org/sqlite): no C compiler needed. No VCS stamp: the copy is no checkout.
(cd "$WORK/src" && CGO_ENABLED=0 go build -buildvcs=false -o "$PARTIAL" ./cmd/ferretdb) \
    || { rm -f "$PARTIAL"; exit 1; }
mv -f "$PARTIAL" "$DEST"
echo "install_ferretdb: built FerretDB $(installed_version)" >&2
echo "$DEST"
