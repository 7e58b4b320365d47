#!/usr/bin/env bash
# Quick start, part 1: set up .venv and run the whole workflow (entry point `main`) on the
# embedded store sqlite:///mlflow.db in this directory. Extra arguments go to `mlflow run`,
# e.g. scripts/run_workflow.sh -P data_source=sklearn:digits
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh requirements.txt
export PATH="$PWD/.venv/bin:$PATH"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}"
mlflow run . -e main --env-manager local "$@"
