"""Evaluation throughput (questions/s) for each model backend, on the same questions.

Mines, synthesizes and validates tests/fixtures/sample_repo, exports the default base
model (tinycoder) to GGUF Q8_0, then answers and scores the same test questions with the
`torch` backend (transformers) and the `llamacpp` backend (the GGUF users deploy).

Run: python bench/evaluation.py [--questions 24] [--max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from forge_core.config import EvalSettings, ForgeSettings
from forge_core.contracts import Example, ExportRequest
from forge_core.evaluation import run_model
from forge_core.files import read_jsonl
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    registry = PluginRegistry()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        settings = ForgeSettings.model_validate(
            {"runs_dir": str(work / "runs"), "validation": {"test_fraction": 0.3}}
        )
        forge = Forge(settings, work / "run", registry=registry)
        forge.mine(ROOT / "tests" / "fixtures" / "sample_repo")
        forge.synth()
        forge.validate()
        examples = read_jsonl(forge.run.path / "validate" / "test.jsonl", Example)
        examples = (examples * 4)[: args.questions]
        base = forge.resolve_base_model()
        exported = registry.call(
            "export",
            "gguf",
            ExportRequest(
                base_model=base,
                output_dir=str(work / "export"),
                settings={"quantizations": ["Q8_0"]},
            ),
        )
        gguf = exported.artifacts[0].path
        rows = []
        for backend, model in (("torch", base), ("llamacpp", gguf)):
            section = EvalSettings(backend=backend, max_new_tokens=args.max_new_tokens)
            started = time.perf_counter()
            samples = run_model(registry, section, model, None, examples)
            seconds = time.perf_counter() - started
            assert len(samples) == len(examples)
            rows.append((backend, seconds))
    print(
        f"{len(examples)} questions: answer ({args.max_new_tokens} tokens max), score the reference"
    )
    print(f"{'backend':<12}{'seconds':>10}{'questions/s':>14}")
    for backend, seconds in rows:
        print(f"{backend:<12}{seconds:>10.1f}{len(examples) / seconds:>14.2f}")
    print(f"llamacpp vs torch: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
