#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned dependencies into it.
# Usage: scripts/setup_venv.sh [requirements file]   (default: requirements.txt)
# Idempotent and quick when nothing changed: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements="${1:-requirements.txt}"
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
if [[ ! -x .venv/bin/python ]]; then
    "$python_bin" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet -r "$requirements"
