#!/usr/bin/env bash
# The main job: bootstrap the environment, then execute the notebook collection headlessly.
#   ./run_all.sh [--profile default|smoke|paper] [--only 03,04] [--force]
# See docs/notebooks.md. Executed notebooks and results go to runs/<profile>/ (git-ignored; override with
# KGCL_RUNS_DIR), tables and figures to figures/<profile>/.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/bootstrap.sh
# Notebooks run with their own working directory: pass data/cache locations as absolute paths.
if [ -n "${KGCL_DATA_DIR:-}" ]; then KGCL_DATA_DIR="$(cd "$KGCL_DATA_DIR" && pwd)"; export KGCL_DATA_DIR; fi
exec python -m kgcl_lib.runner "$@"
