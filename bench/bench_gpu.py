"""Part 3 of bench/training.py: GPU tokens/s and peak memory, forge_torch vs HF + PEFT.

A Qwen2.5-1.5B-shaped model with random weights, sequence 2048, LoRA r16 on
every linear layer, bf16, AdamW. The HF + PEFT baseline computes the loss the
usual way (`model(input_ids, labels=…)`: full-vocabulary fp32 logits); forge_torch
uses its own step (output head in checkpointed chunks, plain causal SDPA).
Both run in eager mode (no torch.compile) on identical random batches.

Run on a CUDA machine: python bench/bench_gpu.py [--steps 8] [--batch 2] [--tiny]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

QWEN_1_5B = {
    "vocab_size": 151_936,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
    "rope_theta": 1_000_000.0,
}
TINY = {
    **QWEN_1_5B,
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def build(
    shape: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    quantized_from: Path | None = None,
) -> Any:
    """The random Qwen2 model with a LoRA r16 adapter on every linear layer."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Qwen2Config, Qwen2ForCausalLM

    if quantized_from is not None:
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            quantized_from, quantization_config=config, dtype=torch.bfloat16, device_map={"": 0}
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(Qwen2Config(**shape, attn_implementation="sdpa")).to(
            device=device, dtype=dtype
        )
    lora = LoraConfig(r=16, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def hf_step(model: Any, ids: torch.Tensor) -> None:
    """The usual HF way: the model computes the loss on full logits."""
    model(input_ids=ids, labels=ids).loss.backward()


def forge_step(model: Any, ids: torch.Tensor) -> None:
    """forge_torch's loss: decoder states, head on label tokens in checkpointed chunks."""
    from forge_torch.data import Batch
    from forge_torch.trainer import batch_loss_sum

    batch = Batch(
        ids,
        ids,
        torch.arange(ids.shape[1], device=ids.device).expand_as(ids),
        torch.empty(0, device=ids.device),
        int(ids.numel()),
        int(ids.numel()),
    )
    (batch_loss_sum(model, batch) / ids.numel()).backward()


def measure(
    name: str,
    model: Any,
    step: Callable[[Any, torch.Tensor], None],
    batch: int,
    seq: int,
    steps: int,
    checkpointing: bool,
    compiled: bool = False,
) -> tuple[str, float, float]:
    """Tokens/s over ``steps`` optimizer steps (after 2 warm-up steps) and the peak memory."""
    device = next(model.parameters()).device
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    if compiled:
        from forge_torch.trainer import compile_decoder

        compile_decoder(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator(device="cpu").manual_seed(1)
    vocab = model.get_base_model().config.vocab_size
    data = [
        torch.randint(0, vocab, (batch, seq), generator=generator).to(device)
        for _ in range(steps + 2)
    ]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = 0.0
    for index, ids in enumerate(data):
        if index == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        step(model, ids)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return name, steps * batch * seq / seconds, peak


def run_gpu_benchmark(workdir: Path, steps: int, batch: int = 2, tiny: bool = False) -> None:
    """Print the side-by-side table (on CUDA; ``tiny`` checks the code path on CPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    shape = TINY if tiny else QWEN_1_5B
    seq = 128 if tiny else 2048
    rows = []
    for label, step, checkpointing, compiled in (
        ("HF + PEFT (eager, sdpa), bf16 LoRA r16", hf_step, False, False),
        ("forge_torch, bf16 LoRA r16", forge_step, False, False),
        ("forge_torch + torch.compile", forge_step, False, True),
        ("HF + PEFT + gradient checkpointing", hf_step, True, False),
        ("forge_torch + gradient checkpointing", forge_step, True, False),
    ):
        try:
            model = build(shape, device, dtype)
            rows.append(measure(label, model, step, batch, seq, steps, checkpointing, compiled))
            print(f"{rows[-1][0]}: {rows[-1][1]:.0f} tokens/s, {rows[-1][2]:.1f} GiB", flush=True)
        except Exception as exc:  # one failing configuration must not hide the others
            print(f"{label}: failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            model = None
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if device.type == "cuda":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        folder = workdir / "qwen-1.5b-random"
        torch.manual_seed(0)
        Qwen2ForCausalLM(Qwen2Config(**shape)).to(torch.bfloat16).save_pretrained(folder)
        for label, step in (
            ("HF + PEFT NF4 QLoRA + checkpointing", hf_step),
            ("forge_torch NF4 QLoRA + checkpointing", forge_step),
        ):
            try:
                model = build(shape, device, dtype, quantized_from=folder)
                rows.append(measure(label, model, step, batch, seq, steps, True))
            except Exception as exc:
                print(f"{label}: failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                model = None
            del model
            gc.collect()
            torch.cuda.empty_cache()
    name = "Qwen2.5-1.5B-shaped" if not tiny else "tiny"
    print(
        f"\n3. GPU ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}): {name}, "
        f"sequence {seq}, batch {batch}, {steps} steps after warm-up"
    )
    print(f"{'configuration':<44}{'tokens/s':>10}{'peak GiB':>10}")
    for label, rate, peak in rows:
        print(f"{label:<44}{rate:>10.0f}{peak:>10.1f}")
    base = rows[0][1]
    for label, rate, peak in rows[1:]:
        ratio = rate / base
        print(f"  {label}: {ratio:.2f}x HF eager tokens/s, {peak:.1f} GiB vs {rows[0][2]:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny shape, to check the code on CPU"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run_gpu_benchmark(Path(scratch), args.steps, args.batch, args.tiny)


if __name__ == "__main__":
    main()
