"""The trainer: loss goes down, files are written, QLoRA refuses on CPU, exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from forge_core.contracts import TrainRequest
from forge_torch.model import QLoRAUnavailable
from forge_torch.trainer import train


def request(model: Path, splits: tuple[Path, Path], out: Path, **settings: object) -> TrainRequest:
    base = {
        "method": "lora",
        "rank": 4,
        "alpha": 8,
        "learning_rate": 3e-2,
        "batch_size": 2,
        "max_seq_len": 256,
        "save_every": 4,
        "eval_every": 4,
        "device": "cpu",
        "max_steps": 12,
    }
    return TrainRequest(
        base_model=str(model),
        train_file=str(splits[0]),
        valid_file=str(splits[1]),
        output_dir=str(out),
        settings={**base, **settings},
    )


def test_training_lowers_the_loss_and_writes_everything(
    tiny_llama: Path, splits: tuple[Path, Path], tmp_path: Path
) -> None:
    result = train(request(tiny_llama, splits, tmp_path / "train"))
    log = [json.loads(line) for line in Path(result.log_file or "").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 12 and losses[-1] < losses[0] * 0.8
    assert [e["step"] for e in log if "valid_loss" in e] == [4, 8, 12]
    first = log[0]
    assert first["real_tokens"] > 0 and first["tokens_per_second"] > 0 and first["lr"] > 0
    assert {"grad_norm", "memory_mb", "epoch"} <= set(first)
    adapter = Path(result.adapter_dir)
    assert (adapter / "adapter_model.safetensors").exists() and (
        adapter / "tokenizer_config.json"
    ).exists()
    assert Path(result.plot_file or "").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "train" / "checkpoints").exists()
    assert result.metrics["steps"] == 12 and result.metrics["best_valid_loss"] > 0


def test_qlora_refuses_on_cpu(tiny_llama: Path, splits: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(QLoRAUnavailable, match=r"needs an NVIDIA GPU.*train.quantize_4bit=false"):
        train(request(tiny_llama, splits, tmp_path / "q", quantize_4bit=True))


RESUME_SCRIPT = """
import sys
from pathlib import Path
from forge_core.contracts import TrainRequest
from forge_torch.trainer import train
request = TrainRequest.model_validate_json(Path(sys.argv[1]).read_text())
print(train(request).metrics["final_loss"])
"""


def test_sigkill_then_resume_continues_the_same_loss_curve(
    tiny_llama: Path, splits: tuple[Path, Path], tmp_path: Path
) -> None:
    settings = {"max_steps": 30, "save_every": 5, "eval_every": 100}
    reference = train(request(tiny_llama, splits, tmp_path / "reference", **settings))
    reference_log = [
        json.loads(x) for x in (tmp_path / "reference" / "log.jsonl").read_text().splitlines()
    ]

    out = tmp_path / "killed"
    spec = tmp_path / "request.json"
    spec.write_text(request(tiny_llama, splits, out, **settings).model_dump_json())
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(spec)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = (
            list((out / "checkpoints").glob("step-*/state.json"))
            if (out / "checkpoints").exists()
            else []
        )
        if done and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            break
        if process.poll() is not None:
            pytest.fail("training finished before it could be killed; make the test run longer")
        time.sleep(0.005)
    process.wait()
    killed_steps = [
        json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines() if "loss" in x
    ]
    assert 5 <= max(killed_steps) < 30
    resumed = subprocess.run(
        [sys.executable, str(script), str(spec)], capture_output=True, text=True, check=True
    )
    final = float(resumed.stdout.strip().splitlines()[-1])
    assert abs(final - reference.metrics["final_loss"]) <= 1e-4
    resumed_log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in resumed_log] == [e["step"] for e in reference_log]
    for mine, theirs in zip(resumed_log, reference_log, strict=True):
        for key in ("loss", "valid_loss"):
            assert abs(mine.get(key, 0.0) - theirs.get(key, 0.0)) <= 1e-4


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with bitsandbytes")
def test_qlora_trains_on_cuda(tiny_llama: Path, splits: tuple[Path, Path], tmp_path: Path) -> None:
    result = train(
        request(
            tiny_llama, splits, tmp_path / "qlora", quantize_4bit=True, device="cuda", max_steps=6
        )
    )
    assert result.metrics["steps"] == 6
    assert (Path(result.adapter_dir) / "adapter_model.safetensors").exists()


def test_validation_loss_uses_a_sample_of_the_valid_split(
    tiny_llama: Path, splits: tuple[Path, Path], tmp_path: Path
) -> None:
    from forge_torch.trainer import setup

    assert len(setup(request(tiny_llama, splits, tmp_path / "a")).valid) == 8  # all (≤ 256)
    sampled = setup(request(tiny_llama, splits, tmp_path / "b", valid_max_examples=3))
    assert len(sampled.valid) == 3
