#!/usr/bin/env bash
# One-shot set-up of a project-local environment in .venv.
# Needs only Python >= 3.10 (and apt for the browser used by the browser tests).
# uv is used when it can be had (fast); STRATUM_USE_PIP=1 forces plain pip.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
EXTRAS="${STRATUM_EXTRAS:-studio,scale,train,dev}"

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python

install() {
    if [ "${STRATUM_USE_PIP:-0}" = "1" ]; then
        "$VPY" -m pip install --disable-pip-version-check -q "$@"
    else
        # --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set, every process (each
        # Jupyter kernel, each test subprocess) would otherwise recompile scipy, librosa, torch
        "$VPY" -m uv pip install --python "$VPY" -q --compile-bytecode "$@"
    fi
}

if [ "${STRATUM_USE_PIP:-0}" != "1" ]; then
    "$VPY" -m pip install --disable-pip-version-check -q uv || export STRATUM_USE_PIP=1
fi

# torch: prefer a local CPU wheel when the machine has one (avoids ~3 GB of CUDA
# libraries on CPU-only machines); otherwise the resolver takes PyPI's build.
if [[ ",$EXTRAS," == *",train,"* ]]; then
    local_torch=$(ls /opt/wheels/torch-*+cpu-cp"$("$VPY" -c 'import sys;print(f"{sys.version_info[0]}{sys.version_info[1]}")')"-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$local_torch" ] && ! "$VPY" -c "import torch" 2>/dev/null; then
        install "$local_torch"
    fi
fi

install -e ".[$EXTRAS]"

# Chromium for the browser tests (Debian's package; Playwright drives it).
if [[ ",$EXTRAS," == *",dev,"* ]] && ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" = "0" ] || SUDO="sudo"
        $SUDO apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
            || echo "warning: could not install chromium; browser tests will be skipped" >&2
    fi
fi

# A named Jupyter kernel, used by papermill (-k stratum) and nbval.
if "$VPY" -c "import ipykernel" 2>/dev/null; then
    "$VPY" -m ipykernel install --sys-prefix --name stratum --display-name "stratum" >/dev/null
fi

# Fill the numba cache inside the project so that later runs start fast.
"$VPY" -m stratum_kernel warmup

touch .venv/.stratum-setup
echo "stratum: environment ready in .venv"
