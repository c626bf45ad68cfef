#!/usr/bin/env bash
# Build a real Ollama (the seed's own provider) for the test suite, from the Go module proxy, and print the
# path of its binary (the only line on stdout). Installs to $SIZEUP_CACHE/ollama-VERSION/{bin,lib/ollama}:
# the layout `ollama serve` searches for its CPU backends (bin/../lib/ollama). Idempotent: a complete
# install of this version is kept, so a second clone on the same machine takes a second.
#
# Why not `go install github.com/ollama/ollama@v0.17.4`: the proxy's module zip drops every vendor/ folder,
# and Ollama keeps llama.cpp's single-header third-party libraries there (nlohmann/json, miniaudio, stb):
# the cgo build fails with "nlohmann/json_fwd.hpp: No such file or directory". The llama-cpp-python sdist
# on PyPI carries the same headers (vendor/llama.cpp/vendor/), so: copy the module, add them, build.
#
# That binary alone runs models on a generic, non-SIMD ggml backend (~6x slower decode). The one optimised
# CPU variant /proc/cpuinfo calls for is built with cmake beside it (icelake for AVX-512 with VBMI and
# VNNI, skylakex for plain AVX-512, haswell for AVX2): never the AMX variant, which dies with SIGILL on VMs
# that advertise AMX but forbid it. See ../shared/notes/ollama-real.md for the timings behind this.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache_dir.sh
VERSION=0.17.4
LLAMA_CPP_VERSION=0.3.36  # any recent sdist: the headers are stable single-file libraries
DEST=${OLLAMA_DIR:-$SIZEUP_CACHE/ollama-$VERSION}
STAMP="$DEST/.complete"

say() { echo "install_ollama: $*" >&2; }

cpu_variant() {
    local flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    has() { for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
    if [ "$(uname -m)" != x86_64 ]; then echo ""
    elif has avx512f avx512bw avx512vl avx512dq avx512vbmi avx512_vnni avx2 fma f16c bmi2; then echo icelake
    elif has avx512f avx512bw avx512vl avx512dq avx2 fma f16c bmi2; then echo skylakex
    elif has avx2 fma f16c bmi2; then echo haswell
    elif has avx; then echo sandybridge
    else echo ""; fi
}

if [ -f "$STAMP" ] && [ -x "$DEST/bin/ollama" ]; then
    say "$DEST/bin/ollama is Ollama $VERSION already ($(cat "$STAMP"))"
    echo "$DEST/bin/ollama"
    exit 0
fi
for tool in go cmake c++; do
    command -v "$tool" >/dev/null 2>&1 || { say "$tool is needed to build Ollama"; exit 1; }
done

started=$SECONDS
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say "fetching github.com/ollama/ollama@v$VERSION from the Go module proxy"
SRC=$(go mod download -json "github.com/ollama/ollama@v$VERSION" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
cp -R "$SRC/." "$WORK/src"
chmod -R u+w "$WORK/src"

SDIST="$SIZEUP_CACHE/src/llama_cpp_python-$LLAMA_CPP_VERSION.tar.gz"  # scripts/setup.sh keeps it there
if [ ! -s "$SDIST" ]; then
    say "downloading the llama-cpp-python $LLAMA_CPP_VERSION sdist (for llama.cpp's vendored headers)"
    mkdir -p "$(dirname "$SDIST")"
    # pip, as scripts/setup.sh does: it honours the index, proxy and certificates pip is configured with.
    PIP_PY=$([ -x "${VENV:-.venv}/bin/python" ] && echo "${VENV:-.venv}/bin/python" || echo python3)
    "$PIP_PY" -m pip download -q --no-deps --no-binary :all: -d "$(dirname "$SDIST")" \
        "llama-cpp-python==$LLAMA_CPP_VERSION" >&2
fi
tar -xzf "$SDIST" -C "$WORK" --wildcards '*/vendor/llama.cpp/vendor/*'
mkdir -p "$WORK/src/llama/llama.cpp/vendor"
cp -R "$WORK"/llama_cpp_python-*/vendor/llama.cpp/vendor/. "$WORK/src/llama/llama.cpp/vendor/"

say "go build (cgo compiles llama.cpp: several minutes on 2 cores; Go's build cache makes a rebuild quick)"
(cd "$WORK/src" && go build -buildvcs=false -trimpath \
    -ldflags "-X github.com/ollama/ollama/version.Version=$VERSION" -o "$WORK/ollama" .)

PARTIAL="$DEST.partial.$$"
rm -rf "$PARTIAL"
mkdir -p "$PARTIAL/bin" "$PARTIAL/lib/ollama"
mv "$WORK/ollama" "$PARTIAL/bin/ollama"

variant=$(cpu_variant)
if [ -n "$variant" ]; then
    say "cmake: the ggml-cpu-$variant backend (the one this CPU calls for)"
    (cd "$WORK/src" && cmake -B build -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 &&
        cmake --build build -j"$(nproc)" --target "ggml-cpu-$variant" >>"$WORK/cmake.log" 2>&1) ||
        { tail -n 20 "$WORK/cmake.log" >&2; rm -rf "$PARTIAL"; exit 1; }
    cp -P "$WORK"/src/build/lib/ollama/*.so* "$PARTIAL/lib/ollama/"
else
    say "no optimised CPU variant for this CPU: Ollama will use its generic backend (slow)"
fi
echo "cpu=${variant:-generic} built in $((SECONDS - started)) s" >"$PARTIAL/.complete"
rm -rf "$DEST"
mv "$PARTIAL" "$DEST"  # complete or absent, never half-built
say "built Ollama $VERSION in $((SECONDS - started)) s: $DEST/bin/ollama (cpu backend: ${variant:-generic})"
echo "$DEST/bin/ollama"
