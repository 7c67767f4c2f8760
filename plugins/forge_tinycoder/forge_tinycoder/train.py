"""Train tinycoder from scratch: ``python -m forge_tinycoder.train --out DIR``.

The steps, in order: build the corpus (fetching the pinned sources once) →
train the tokenizer → tokenise the corpus → pretrain → make RAFT examples →
instruction stage → save the model folder. Every step leaves its files in
``DIR`` and is skipped when they are already there, and both training stages
checkpoint, so running the same command again continues a stopped run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_tinycoder.presets import PRESETS, Preset

if TYPE_CHECKING:
    import numpy as np

    from forge_core.contracts import Example

#: What training.json keeps of each stage's summary (older records lack ``autocast``).
STAGE_RECORD = ("steps", "tokens", "seconds", "final", "autocast")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m forge_tinycoder.train", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument(
        "--minutes", type=float, default=60.0, help="both stages: CPU time on cpu, wall on cuda"
    )
    parser.add_argument("--size", choices=sorted(PRESETS), default="small")
    parser.add_argument("--pretrain-steps", type=int, default=None, help="steps instead of time")
    parser.add_argument("--instruct-steps", type=int, default=None, help="steps instead of time")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--cache", type=Path, default=None, help="download cache folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--from-model",
        type=Path,
        default=None,
        help="continue from this saved tinycoder (its weights and tokenizer): skip "
        "pretraining and spend all of --minutes on the instruction stage",
    )
    return parser.parse_args(argv)


def build_tokenizer(corpus: Any, preset: Preset, folder: Path, seed: int) -> Any:
    """Train the tokenizer on a sample of the training files (or load the one trained)."""
    from forge_tinycoder.tokenizer import (
        sample_texts,
        save_tokenizer,
        train_tokenizer,
        wrap_tokenizer,
    )

    if (folder / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder))

    def texts() -> Any:
        for language in corpus.languages:
            files = corpus.select(language, heldout=False)
            random.Random(f"tokenizer-{seed}-{language}").shuffle(files)
            paths = [f.path for f in files]
            yield from sample_texts(paths, preset.tokenizer_chars_per_language)

    wrapped = wrap_tokenizer(train_tokenizer(texts(), preset.vocab))
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_tokenizer(wrapped, partial, preset.context_length)
    partial.rename(folder)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def build_streams(
    corpus: Any, tokenizer: Any, preset: Preset, folder: Path, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Token streams of the training and held-out files of each language."""
    from forge_tinycoder.data import cached_stream

    fast, separator = tokenizer.backend_tokenizer, tokenizer.pad_token_id
    train, heldout = {}, {}
    for language in corpus.languages:
        files = corpus.select(language, heldout=False)
        train[language] = cached_stream(
            folder,
            f"{language}-train",
            fast,
            files,
            preset.max_tokens_per_language,
            separator,
            seed,
        )
        held = corpus.select(language, heldout=True)
        heldout[language] = cached_stream(
            folder, f"{language}-heldout", fast, held, 200_000, separator, seed
        )
        print(f"[data] {language}: {len(train[language]):,} training tokens", flush=True)
    return train, heldout


def build_raft(
    corpus: Any, preset: Preset, folder: Path, seed: int
) -> tuple[list[Example], list[Example]]:
    """RAFT examples from training files and, apart, from held-out files (cached as JSONL)."""
    from forge_core.plugins import PluginRegistry
    from forge_tinycoder.instruct import (
        heldout_raft_examples,
        raft_examples,
        read_examples,
        write_examples,
    )

    train_path, heldout_path = folder / "train.jsonl", folder / "heldout.jsonl"
    if train_path.is_file() and heldout_path.is_file():
        return read_examples(train_path), read_examples(heldout_path)
    registry = PluginRegistry()
    train = raft_examples(corpus, False, preset.raft_files_per_language, seed, registry)
    heldout = heldout_raft_examples(corpus, preset, seed, registry)
    write_examples(heldout, heldout_path)
    write_examples(train, train_path)
    print(f"[raft] {len(train)} training and {len(heldout)} held-out examples", flush=True)
    return train, heldout


def save_model(model: Any, tokenizer: Any, folder: Path, info: dict[str, Any]) -> Path:
    """Save the final model (bf16 safetensors), its tokenizer and how it was made."""
    import torch

    from forge_tinycoder.tokenizer import save_tokenizer

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model = model.to("cpu", dtype=torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(partial))
    # transformers 5 writes `rope_parameters` only; converters and 4.x read `rope_theta`.
    config_path = partial / "config.json"
    config = json.loads(config_path.read_text("utf-8"))
    config["rope_theta"] = model.config.rope_parameters["rope_theta"]
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_tokenizer(tokenizer, partial, info["preset"]["context_length"])
    (partial / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    for path in partial.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; the folder is shipped in the package
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def load_saved(folder: Path, preset: Preset) -> tuple[Any, Any, dict[str, Any]]:
    """Tokenizer, fp32 model and ``training.json`` of a saved tinycoder folder.

    The model's shape must be the preset's: the rest of the recipe (context, batch,
    learning rate) is the preset's, so another shape would be a different recipe.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    record = folder / "training.json"
    if not record.is_file():
        raise SystemExit(f"--from-model {folder}: no training.json there (not a tinycoder folder)")
    info = json.loads(record.read_text("utf-8"))
    saved = info.get("preset", {})
    shape = ("hidden", "layers", "heads", "intermediate", "vocab")
    mismatched = [k for k in shape if saved.get(k) != getattr(preset, k)]
    if mismatched:
        raise SystemExit(
            f"--from-model {folder}: its {', '.join(mismatched)} differ from --size's preset; "
            "pass the --size it was trained with"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = LlamaForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return tokenizer, model, info


def hardware_name(device: Any) -> str:
    """The GPU's name, or the CPU's model name."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    """Run every step; resumes what an earlier run of the same command left."""
    args = parse_args(argv)
    if args.threads:
        os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    import torch

    from forge_tinycoder.corpus import build_corpus, write_manifest
    from forge_tinycoder.instruct import instruct
    from forge_tinycoder.plot import plot_training
    from forge_tinycoder.presets import build_model
    from forge_tinycoder.pretrain import pretrain

    started = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    preset = PRESETS[args.size]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    corpus = build_corpus(args.cache)
    write_manifest(corpus, out / "corpus_manifest.json")
    print(f"[corpus] {json.dumps(corpus.manifest['languages'])}", flush=True)
    source_info: dict[str, Any] | None = None
    if args.from_model is not None:
        tokenizer, model, source_info = load_saved(args.from_model, preset)
    else:
        tokenizer = build_tokenizer(corpus, preset, out / "tokenizer", args.seed)
    streams, heldout = build_streams(corpus, tokenizer, preset, out / "data", args.seed)

    torch.manual_seed(args.seed)
    if source_info is None:
        special = {"eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id}
        model = build_model(preset, special)
    params = sum(p.numel() for p in model.parameters())
    print(f"[model] {args.size}: {params:,} parameters on {device}", flush=True)
    budget = args.minutes * 60
    if source_info is None:
        pretrained = pretrain(
            model,
            preset,
            streams,
            heldout,
            out / "pretrain",
            device,
            budget * (1 - preset.instruct_share),
            args.pretrain_steps,
            args.seed,
        )
        instruct_budget = budget * preset.instruct_share
    else:
        pretrained = source_info["pretrain"]
        instruct_budget = budget
        print(f"[pretrain] skipped: continuing from {args.from_model}", flush=True)
    train_examples, heldout_examples = build_raft(corpus, preset, out / "raft", args.seed)
    instructed = instruct(
        model,
        tokenizer,
        preset,
        train_examples,
        heldout_examples,
        streams,
        out / "instruct",
        device,
        instruct_budget,
        args.instruct_steps,
        args.seed,
    )
    plot_training(out, out / "loss_curve.png")
    info = {
        "size": args.size,
        "preset": preset.as_json(),
        "parameters": params,
        "device": str(device),
        "hardware": hardware_name(device),
        "threads": torch.get_num_threads(),
        "seed": args.seed,
        "pretrain": {k: pretrained[k] for k in STAGE_RECORD if k in pretrained},
        "instruct": {k: instructed[k] for k in STAGE_RECORD if k in instructed},
        "raft_examples": {"train": len(train_examples), "heldout": len(heldout_examples)},
        "corpus": corpus.manifest,
        "command_seconds": time.time() - started,
    }
    if source_info is not None:
        # What the starting model was: its own record, kept whole.
        info["continued_from"] = {k: v for k, v in source_info.items() if k != "corpus"}
    folder = save_model(model, tokenizer, out / "model", info)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"[done] {folder} ({size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
