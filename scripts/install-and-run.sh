#!/usr/bin/env bash
# README command 1: install everything, then run the whole pipeline on the embedded
# default (this repository's own code as the training repository).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "$(dirname "${BASH_SOURCE[0]}")/../requirements/run.txt"
cd "$ROOT"
forge run "$ROOT" "$@"
