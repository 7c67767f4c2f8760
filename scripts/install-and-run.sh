#!/usr/bin/env bash
# README command 1: install everything, run the whole pipeline on the embedded default
# (tinycoder fine-tuned on this repository's own code), then ask the served model a
# question about Forge.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "$(dirname "${BASH_SOURCE[0]}")/../requirements/run.txt"
cd "$ROOT"
started=$(date +%s)
forge run "$ROOT" "$@"
echo
echo "Q: What does Forge.run_all do?"
forge chat -m "What does Forge.run_all do?" --max-tokens 120
echo
echo "forge run took $(( $(date +%s) - started ))s. The model is still being served:"
echo "  forge chat                 # ask more"
echo "  forge llamacpp stop        # stop the server"
