"""The whole main job on a three-language fixture repository, ending in a real chat.

mine → synth → validate → train (the default base model, tinycoder) → eval → export Q8_0
→ llama.cpp deploy → the official `openai` client gets a chat completion from the served
model, and the run's export fidelity gate passed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_core.config import ForgeSettings
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_core.runs import STAGES

for module in (
    "forge_raft",
    "forge_torch",
    "forge_gguf",
    "forge_llamacpp",
    "forge_tinycoder",
    "openai",
):
    pytest.importorskip(module)


@pytest.mark.slow
def test_repository_to_chat(sample_repo: Path, tmp_path: Path) -> None:
    import openai

    from forge_llamacpp.server import stop_server

    settings = ForgeSettings.model_validate(
        {
            "runs_dir": str(tmp_path / "runs"),
            "train": {
                "method": "lora",
                "max_steps": 8,
                "batch_size": 4,
                "learning_rate": 1e-3,
            },
            "eval": {"max_samples": 6, "max_new_tokens": 16, "gate": {"enabled": False}},
            "export": {"quantizations": ["Q8_0"]},
            "deploy": {"target": "llamacpp", "port": 18765},
        }
    )
    forge = Forge(settings, tmp_path / "run", registry=PluginRegistry())
    try:
        outcomes = forge.run_all(sample_repo)
        assert [(o.stage, o.status) for o in outcomes] == [(s, "ran") for s in STAGES], outcomes
        exported = json.loads((forge.run.path / "export" / "result.json").read_text())
        (artifact,) = exported["artifacts"]
        assert artifact["quantization"] == "Q8_0" and artifact["passed"] is True
        assert artifact["fidelity"]["top1_agreement_near_ties"] >= 0.98
        deployment = forge.deployment()
        client = openai.OpenAI(base_url=deployment.endpoint, api_key="unused")
        reply = client.chat.completions.create(
            model=deployment.model_name,
            messages=[{"role": "user", "content": "What does apply_discount do?"}],
            max_tokens=8,
        )
        assert reply.choices[0].message.content is not None
        assert reply.choices[0].finish_reason in {"stop", "length"}
    finally:
        stop_server(forge.run.path / "deploy")
