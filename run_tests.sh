#!/usr/bin/env bash
# The test command: bootstrap the environment (see scripts/bootstrap.sh), then pytest.
# Extra arguments go to pytest, e.g. ./run_tests.sh -m "not slow" -x
set -euo pipefail
cd "$(dirname "$0")"
. scripts/bootstrap.sh
if [ -z "${KGCL_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  :  # real-data tiers skip (with the reason) unless KGCL_DATA_DIR is set; .ci/run sets it
fi
exec python -m pytest "$@"
