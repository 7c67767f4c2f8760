"""GGUF export: how long each step takes per model size, and llama.cpp vs transformers speed.

For a few model sizes (random Llama-shaped models with tinycoder's tokenizer, and
tinycoder itself when its plugin is installed) it builds a base and a random LoRA
adapter, then prints:

  merge and convert (HF → F16 GGUF) seconds;
  per quantisation: quantise seconds, file size, top-1 agreement and mean KL of the
  fidelity check;
  greedy generation tokens/s of llama.cpp (each quantisation) and of transformers
  (fp32 merged model) on the same chat prompt, the same number of new tokens, the
  same thread count, and how many of the greedy tokens agree with transformers'.

The models are random except tinycoder: a random network is full of near-ties
between its top tokens, so its quantised top-1 agreement is low (and Q8_0 may
show pass=False); tinycoder, a trained model, shows what real models do.

Run: python bench/export.py [--sizes tiny small medium tinycoder] [--new-tokens 64]
     [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from forge_gguf.convert import convert
from forge_gguf.fidelity import FidelityChecker
from forge_gguf.merge import merge_adapter
from forge_gguf.quantize import quantize
from forge_gguf.runtime import LlamaCppModel

#: name → (hidden, layers, heads, kv heads, feed-forward)
SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "tiny": (64, 2, 4, 2, 128),
    "small": (256, 4, 8, 4, 768),
    "medium": (512, 8, 8, 4, 1536),
    "large": (1024, 12, 16, 4, 2816),
}
QUANTIZATIONS = ("F16", "Q8_0", "Q4_K_M")
PROMPT = [
    {"role": "system", "content": "Answer from the documents."},
    {"role": "user", "content": "def add(a, b):\n    return a + b\n\nWhat does add return?"},
]


def tokenizer_dir(scratch: Path) -> Path:
    """tinycoder's tokenizer folder, or a small byte-level BPE trained here."""
    try:
        from forge_tinycoder.plugin import MODEL_DIR

        if (Path(MODEL_DIR) / "tokenizer.json").is_file():
            return Path(MODEL_DIR)
    except ImportError:
        pass
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = scratch / "tokenizer"
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [Path(torch.__file__).parent.joinpath(n).read_text() for n in ("functional.py",)]
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    fast.save_pretrained(folder)
    return folder


def build_base(size: str, folder: Path, tokenizer_from: Path) -> Path:
    """A random Llama-shaped model of one of :data:`SIZES` with the given tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    hidden, layers, heads, kv_heads, ffn = SIZES[size]
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        initializer_range=0.05,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_adapter(base: Path, folder: Path, relative_delta: float = 0.05) -> Path:
    """A random rank-8 LoRA on every projection whose delta is 5% of each weight's norm.

    That is the size of a real fine-tune's change; a LoRA at PEFT's random scale
    would swamp the base and make even a trained model behave like a random one.
    """
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for module in peft_model.modules():
            if isinstance(module, LoraLayer):
                delta = module.get_delta_weight("default")
                ratio = delta.norm() / module.get_base_layer().weight.norm()
                module.lora_B["default"].weight.mul_(relative_delta / ratio)
    peft_model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


def transformers_generation(
    model_dir: Path, ids: list[int], new_tokens: int
) -> tuple[float, list[int]]:
    """Greedy tokens/s of the fp32 merged model and the tokens it generated."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    inputs = torch.tensor([ids])
    with torch.no_grad():
        model.generate(inputs, max_new_tokens=2, do_sample=False)  # warm-up
        started = time.perf_counter()
        out = model.generate(
            inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
        seconds = time.perf_counter() - started
    return new_tokens / seconds, out[0, len(ids) :].tolist()


def llama_cpp_generation(
    path: Path, ids: list[int], new_tokens: int, threads: int
) -> tuple[float, list[int]]:
    """Greedy tokens/s of llama.cpp on a GGUF and the tokens it generated.

    Through :class:`forge_gguf.runtime.LlamaCppModel` (reference CPU kernels): the
    high-level ``Llama`` repacks quantised weights for AMX, which dies with SIGILL
    on VMs that report AMX without running it.
    """
    with LlamaCppModel(path, n_ctx=len(ids) + new_tokens + 8, threads=threads) as model:
        model.greedy(ids, 2)  # warm-up
        started = time.perf_counter()
        tokens = model.greedy(ids, new_tokens)
        seconds = time.perf_counter() - started
    return new_tokens / seconds, tokens


def parameter_count(model_dir: Path) -> int:
    """Number of weights in a safetensors model folder."""
    from safetensors import safe_open

    total = 0
    for file in model_dir.glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (not a dict)
                shape = handle.get_slice(name).get_shape()
                total += int(torch.tensor(shape).prod()) if shape else 1
    return total


def agreement(a: list[int], b: list[int]) -> int:
    """How many leading tokens two greedy generations share."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def bench_size(
    size: str, scratch: Path, tokenizer_from: Path, new_tokens: int
) -> list[dict[str, Any]]:
    """Every figure for one model size."""
    from transformers import AutoTokenizer

    folder = scratch / size
    if size == "tinycoder":
        base = tokenizer_from
    else:
        base = build_base(size, folder / "base", tokenizer_from)
    adapter = build_adapter(base, folder / "adapter")
    started = time.perf_counter()
    merged = merge_adapter(str(base), str(adapter), folder / "merged")
    merge_s = time.perf_counter() - started
    started = time.perf_counter()
    f16 = convert(merged, folder / "model-F16.gguf").path
    convert_s = time.perf_counter() - started
    params = parameter_count(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    prompt = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    hf_tps, hf_tokens = transformers_generation(merged, list(prompt_ids), new_tokens)
    checker = FidelityChecker(merged, threads=torch.get_num_threads())
    rows = []
    for quant in QUANTIZATIONS:
        target = folder / f"model-{quant}.gguf"
        report = quantize(f16, target, quant, threads=torch.get_num_threads())
        fidelity, passed = checker.check(target, quant)
        tps, tokens = llama_cpp_generation(
            target, list(prompt_ids), new_tokens, torch.get_num_threads()
        )
        rows.append(
            {
                "size": size,
                "params_m": params / 1e6,
                "merge_s": merge_s,
                "convert_s": convert_s,
                "quant": quant,
                "quant_s": report.seconds,
                "mb": target.stat().st_size / 1e6,
                "top1": fidelity["top1_agreement"],
                "kl": fidelity["mean_kl"],
                "passed": passed,
                "cpp_tps": tps,
                "hf_tps": hf_tps,
                "same": agreement(tokens, hf_tokens),
            }
        )
    return rows


def main() -> None:
    """Parse arguments, run every size, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small", "medium", "tinycoder"])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for both llama.cpp and torch (on a busy 2-core VM, 2 OpenMP threads "
        "spin on each other: llama.cpp drops from thousands to a few tokens/s)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    header = (
        f"{'size':<10}{'params M':>9}{'merge s':>8}{'conv s':>8}  "
        f"{'quant':<7}{'quant s':>8}{'MB':>8}"
        f"{'top1':>7}{'KL':>9}  {'pass':<5}{'cpp tok/s':>10}{'hf tok/s':>9}{'same':>6}"
    )
    print(f"threads={torch.get_num_threads()} new_tokens={args.new_tokens}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        source = tokenizer_dir(scratch)
        for size in args.sizes:
            if size == "tinycoder" and not (source / "model.safetensors").is_file():
                print("tinycoder: skipped (forge-tinycoder with its model is not installed)")
                continue
            for r in bench_size(size, scratch, source, args.new_tokens):
                print(
                    f"{r['size']:<10}{r['params_m']:>9.2f}{r['merge_s']:>8.2f}"
                    f"{r['convert_s']:>8.2f}  {r['quant']:<7}"
                    f"{r['quant_s']:>8.2f}{r['mb']:>8.1f}{r['top1']:>7.3f}{r['kl']:>9.5f}  "
                    f"{r['passed']!s:<5}{r['cpp_tps']:>10.1f}{r['hf_tps']:>9.1f}"
                    f"{r['same']:>4}/{args.new_tokens}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
