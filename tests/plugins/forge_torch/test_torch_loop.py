"""The loop's contracts: compiled adapters save cleanly, resume only on the same
run, epochs see each example exactly once, checkpointing decided by memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forge_core.contracts import TrainRequest
from forge_torch import trainer


def request(model: Path, train_file: Path, out: Path, **settings: object) -> TrainRequest:
    base = {
        "method": "lora",
        "rank": 4,
        "alpha": 8,
        "learning_rate": 3e-2,
        "batch_size": 2,
        "max_seq_len": 256,
        "device": "cpu",
        "eval_every": 100,
    }
    return TrainRequest(
        base_model=str(model),
        train_file=str(train_file),
        output_dir=str(out),
        settings={**base, **settings},
    )


@pytest.mark.parametrize("method", ["lora", "pissa"])
def test_compiled_model_keeps_its_adapter_keys_and_saves_a_loadable_adapter(
    tiny_llama: Path, splits: tuple[Path, Path], tmp_path: Path, method: str
) -> None:
    from peft import PeftModel, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    run = trainer.setup(request(tiny_llama, splits[0], tmp_path / "run", method=method))
    eager_keys = list(get_peft_model_state_dict(run.model))
    compiled = trainer.setup(
        request(tiny_llama, splits[0], tmp_path / "compiled", method=method, compile=True)
    )
    assert list(get_peft_model_state_dict(compiled.model)) == eager_keys
    assert not any("_orig_mod" in name for name, _ in compiled.model.named_parameters())
    with torch.no_grad():  # stand in for training (no compiled forward: slow on CPU)
        for name, parameter in compiled.model.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.5)
    adapter = trainer.save_adapter(compiled, tmp_path / "adapter")
    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    loaded = PeftModel.from_pretrained(base, str(adapter))
    saved_b = [p for n, p in loaded.named_parameters() if "lora_B" in n]
    assert len(saved_b) == len([k for k in eager_keys if "lora_B" in k])
    assert all(float(p.abs().max()) > 0.1 for p in saved_b)


class Killed(Exception):
    """Stands in for a SIGKILL between two steps."""


def kill_at_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = trainer.Loop.step

    def step_or_die(self: trainer.Loop) -> dict[str, object]:
        if self.state.step == step:
            raise Killed
        return original(self)

    monkeypatch.setattr(trainer.Loop, "step", step_or_die)


def test_resume_needs_the_same_data_and_base(
    tiny_llama: Path, splits: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import json

    data = splits[0]
    settings = {"max_steps": 8, "save_every": 3}
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_at_step(patch, 4)
        with pytest.raises(Killed):
            trainer.train(request(tiny_llama, data, out, **settings))
    assert (out / "checkpoints" / "step-000003").is_dir()
    # The same count of examples, different answers (data re-synthesised after the kill).
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    for row in rows:
        row["messages"][-1]["content"] = "<ANSWER>: a totally different answer"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = trainer.train(request(tiny_llama, data, out, **settings))
    assert "resumed_from_step" not in result.metrics
    assert result.metrics["steps"] == 8

    with monkeypatch.context() as patch:  # unchanged data and base: resumes
        kill_at_step(patch, 4)
        with pytest.raises(Killed):
            trainer.train(request(tiny_llama, data, out, **settings))
    assert (
        trainer.train(request(tiny_llama, data, out, **settings)).metrics["resumed_from_step"] == 3
    )

    run = trainer.setup(request(tiny_llama, data, tmp_path / "other", **settings))
    same = trainer.Loop(run, tmp_path / "other")._config_hash()
    other_base = dataclasses.replace(run, base_model="another/model")
    assert trainer.Loop(other_base, tmp_path / "other")._config_hash() != same


def test_each_epoch_trains_every_example_once_with_accumulation(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    data = tmp_path / "train.jsonl"
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"What does add number {i} do?"},
                    {"role": "assistant", "content": f"<ANSWER>: sum {i}"},
                ]
            }
        )
        for i in range(10)
    ]
    data.write_text("\n".join(lines) + "\n")
    settings = {"batch_size": 1, "gradient_accumulation": 4, "packing": False, "epochs": 2}
    seen: list[tuple[int, int]] = []
    original = trainer.Loop.rows_at

    def spy(self: trainer.Loop, position: int) -> list[list[int]]:
        rows = original(self, position)
        seen.extend((position // self.micro_per_epoch, index) for row in rows for index in row)
        return rows

    monkeypatch.setattr(trainer.Loop, "rows_at", spy)
    reference = trainer.train(request(tiny_llama, data, tmp_path / "reference", **settings))
    # 10 micro-batches an epoch in steps of 4 + 4 + 2: 3 steps, 20 micro-batches in all.
    assert reference.metrics["steps"] == 6
    assert len(seen) == 20
    for epoch in (0, 1):
        assert sorted(index for e, index in seen if e == epoch) == list(range(10))
    log = [json.loads(x) for x in Path(reference.log_file or "").read_text().splitlines()]
    assert [e["epoch"] for e in log if "loss" in e] == [0.4, 0.8, 1.0, 1.4, 1.8, 2.0]

    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:  # killed after step 2's checkpoint, mid-epoch
        kill_at_step(patch, 3)
        with pytest.raises(Killed):
            trainer.train(request(tiny_llama, data, out, save_every=2, **settings))
    seen.clear()
    resumed = trainer.train(request(tiny_llama, data, out, save_every=2, **settings))
    assert resumed.metrics["resumed_from_step"] == 2
    assert len(seen) == 20 - 8
    assert abs(resumed.metrics["final_loss"] - reference.metrics["final_loss"]) <= 1e-5
    resumed_log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in resumed_log if "loss" in e] == pytest.approx(
        [e["loss"] for e in log if "loss" in e], abs=1e-5
    )


def checkpointing_on(run: trainer.Setup) -> bool:
    base = run.model.get_base_model()
    return any(getattr(module, "gradient_checkpointing", False) for module in base.modules())


@pytest.mark.parametrize(
    ("setting", "memory", "expected"),
    [
        (None, 2**40, False),  # fits easily: full speed
        (None, 2**20, True),  # does not fit without checkpointing
        (True, 2**40, True),  # an explicit setting wins
        (False, 2**20, False),
    ],
)
def test_unset_gradient_checkpointing_is_decided_by_memory(
    tiny_llama: Path,
    splits: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    setting: bool | None,
    memory: int,
    expected: bool,
) -> None:
    asked: list[str] = []

    def device_memory(kind: str) -> float:
        asked.append(kind)
        return float(memory)

    monkeypatch.setattr(trainer, "device_memory_bytes", device_memory)
    caplog.set_level("INFO", logger="forge_torch.trainer")
    run = trainer.setup(request(tiny_llama, splits[0], tmp_path, gradient_checkpointing=setting))
    assert run.gradient_checkpointing is expected
    assert checkpointing_on(run) is expected
    if setting is None:
        assert asked == ["cpu"]
        assert f"gradient checkpointing {'on' if expected else 'off'}" in caplog.text
    else:
        assert asked == []
