"""The validated splits load with `datasets` and TRL's SFTTrainer accepts them as they are."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from forge_core.config import ForgeSettings
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry

pytest.importorskip("forge_raft")
datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "forge_torch"))


def test_splits_load_in_datasets_and_train_in_trl(sample_repo: Path, tmp_path: Path) -> None:
    from conftest import build_model  # tests/plugins/forge_torch/conftest.py

    settings = ForgeSettings.model_validate({"runs_dir": str(tmp_path / "runs")})
    forge = Forge(settings, tmp_path / "run", registry=PluginRegistry())
    forge.mine(sample_repo)
    forge.synth()
    forge.validate()
    folder = forge.run.path / "validate"
    files = {name: str(folder / f"{name}.jsonl") for name in ("train", "valid", "test")}
    loaded = datasets.load_dataset("json", data_files=files)
    assert loaded["train"].num_rows > 10 and loaded["test"].num_rows > 0
    first = loaded["train"][0]["messages"]
    assert [m["role"] for m in first][-2:] == ["user", "assistant"]

    model = build_model(tmp_path / "tiny", "llama")
    config = trl.SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        max_length=512,
    )
    trainer = trl.SFTTrainer(model=str(model), args=config, train_dataset=loaded["train"])
    output = trainer.train()
    assert output.global_step == 2 and output.training_loss > 0
