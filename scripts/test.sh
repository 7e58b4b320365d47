#!/usr/bin/env bash
# Quick start, part 2: set up .venv with the test dependencies, install the system packages
# the integration tests need (PostgreSQL server binaries, Chromium) when missing, run pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k stats
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh requirements-dev.txt
scripts/install_system_deps.sh
export PATH="$PWD/.venv/bin:$PATH"
# Tests make their own temporary stores; never let them touch a user's server.
unset MLFLOW_TRACKING_URI MLFLOW_EXPERIMENT_ID MLFLOW_EXPERIMENT_NAME MLFLOW_RUN_ID
exec python -m pytest -q "$@"
