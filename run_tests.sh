#!/usr/bin/env bash
# The test command: bootstrap the environment (see scripts/bootstrap.sh), then pytest.
#   ./run_tests.sh [pytest args]     e.g. ./run_tests.sh -m "not slow" -x
#   ./run_tests.sh --latest [args]   the same in .venv-latest with freshly resolved (unlocked)
#                                    dependencies: catches upstream breakage before the lock moves
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--latest" ]; then
  shift
  export KGCL_UNLOCKED=1 KGCL_VENV="${KGCL_VENV:-.venv-latest}"
fi
. scripts/bootstrap.sh
exec python -m pytest "$@"
