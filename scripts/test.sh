#!/usr/bin/env bash
# README command 2: install the test dependencies and run every check and test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "$(dirname "${BASH_SOURCE[0]}")/../requirements/test.txt"
cd "$ROOT"
echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== pytest"; python -m pytest "$@"
