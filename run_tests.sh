#!/usr/bin/env bash
# The test command: bootstrap the environment (see scripts/bootstrap.sh), then pytest.
#   ./run_tests.sh [pytest args]     the full suite (what CI runs via .ci/run), e.g. ./run_tests.sh -x
#   ./run_tests.sh --fast [args]     the fast tier: tests/unit -m "not slow" (no real data, network,
#                                    browser or Ray; a few CPU minutes, see docs/testing.md)
#   ./run_tests.sh --latest [args]   the same in .venv-latest with freshly resolved (unlocked)
#                                    dependencies: catches upstream breakage before the lock moves
# --latest and --fast combine (in either order).
set -euo pipefail
cd "$(dirname "$0")"
fast=0
while [ $# -gt 0 ]; do
  case "$1" in
    --latest) shift; export KGCL_UNLOCKED=1 KGCL_VENV="${KGCL_VENV:-.venv-latest}" ;;
    --fast) shift; fast=1 ;;
    *) break ;;
  esac
done
. scripts/bootstrap.sh
if [ "$fast" = 1 ]; then
  exec python -m pytest tests/unit -m "not slow" "$@"
fi
exec python -m pytest "$@"
