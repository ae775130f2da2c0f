#!/usr/bin/env bash
# Creates .venv at the repository root and installs everything the project needs:
# the package with its pinned dependencies, and the embedded models.
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet -e '.[dev]'
.venv/bin/python -m monitor.asr.model_setup
