#!/usr/bin/env bash
# README command 1: install everything, run the whole pipeline on the embedded default
# (tinycoder fine-tuned on this repository's own code), then ask the served model a
# question about Forge.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "$(dirname "${BASH_SOURCE[0]}")/../requirements/run.txt"
cd "$ROOT"
started=$(date +%s)
# Sized for a 2-core CPU machine (set-up and run within 15 minutes): a short fine-tune,
# its validation loss on 64 examples, and a sampled evaluation whose answers are cut at
# 96 tokens (the eval stage warns that longer reference answers cannot count as exact
# matches then).
# Drop or change these to train longer (they are plain --set overrides).
set +e
forge run "$ROOT" \
    --set train.max_steps=60 --set train.batch_size=4 --set train.valid_max_examples=64 \
    --set eval.max_samples=30 --set eval.max_new_tokens=96 \
    "$@"
set -e
latest=$(ls -d "$ROOT"/runs/*/ | sort | tail -1)
if [ ! -f "$latest/deploy/deployment.json" ] && [ -f "$latest/export/manifest.json" ]; then
    echo
    echo "The quality gate refused this fine-tuned model (reasons above), so it was not deployed."
    echo "For this demonstration only, deploying it anyway (deploy.force=true):"
    forge deploy --run-dir "$latest" --set deploy.force=true
fi
echo
echo "Q: What does Forge.run_all do?"
# `forge ask` puts the code the question names in context, as in training.
forge ask --run-dir "$latest" "What does Forge.run_all do?" --max-tokens 120
echo
echo "Done in $(( $(date +%s) - started ))s. The model is still being served:"
echo "  forge ask \"QUESTION\"       # ask more, with the code in context"
echo "  forge chat                 # chat without it"
echo "  forge llamacpp stop        # stop the server"
