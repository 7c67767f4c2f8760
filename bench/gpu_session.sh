#!/usr/bin/env bash
# The one-shot GPU session (device tool): CUDA-only tests and bench part 3.
# Needs the wheels the device image lacks in .whl/ (bitsandbytes, pydantic-settings, …).
set -o pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . -e plugins/forge_torch -e plugins/forge_pissa 2>&1 | grep -vi warn | tail -3
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout 150 python3 -m pytest tests/plugins/forge_torch tests/plugins/forge_pissa -m cuda -q -rA -p no:cacheprovider 2>&1 | tee "$OUT/cuda_tests.log" | tail -15
timeout 330 python3 bench/bench_gpu.py --steps 6 --batch 2 2>&1 | grep -v Warning | tee "$OUT/bench_gpu.log"
