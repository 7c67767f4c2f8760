"""Stage 2: a short instruction stage on RAFT examples made from the same corpus.

Units are mined from a deterministic sample of the training files with the
installed language plugins (the same parsers as ``forge mine``); forge_raft
makes grounded questions with quoted answers from them. Held-out files are mined
and synthesised on their own, so none of their code appears in a training
example, not even as a distractor. One step in four is a pretraining batch, so
the model keeps completing code while it learns the chat format.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forge_core.contracts import CodeUnit, Example, SynthesizeRequest
from forge_core.mining import ParseCache, assign_unit_ids, mine_file
from forge_core.plugins import PluginRegistry
from forge_core.walk import SourceFile
from forge_tinycoder.corpus import Corpus, CorpusFile
from forge_tinycoder.data import sample_batch
from forge_tinycoder.loop import Batch, StageConfig, autocast_dtype, run_stage
from forge_tinycoder.presets import Preset
from forge_tinycoder.pretrain import causal_loss

#: The ``synth`` settings of tinycoder's RAFT data: short documents, so examples fit 1024.
RAFT_SETTINGS: dict[str, Any] = {"distractors": 2, "max_document_chars": 600}
#: Every this many steps, one pretraining batch instead of an instruction batch.
PRETRAIN_EVERY = 4
#: Held-out RAFT examples scored at each evaluation during training.
EVAL_EXAMPLES = 32


def mine_units(files: Sequence[CorpusFile], registry: PluginRegistry) -> list[CodeUnit]:
    """Whole code units of ``files``, parsed by the installed language plugins."""
    callers = {lang: registry.caller("parse", lang) for lang in {f.language for f in files}}
    cache = ParseCache(None)
    units: list[CodeUnit] = []
    for corpus_file in files:
        source = SourceFile(
            str(corpus_file.path), corpus_file.id, corpus_file.language, corpus_file.size
        )
        outcome = mine_file(source, callers[corpus_file.language], corpus_file.language, cache)
        units.extend(outcome.units)
    return assign_unit_ids(units)


def choose_files(corpus: Corpus, heldout: bool, per_language: int, seed: int) -> list[CorpusFile]:
    """A deterministic sample of the training (or held-out) files of each language."""
    chosen = []
    for language in corpus.languages:
        files = corpus.select(language, heldout)
        random.Random(f"{seed}-{language}-{heldout}").shuffle(files)
        chosen.extend(files[:per_language])
    return chosen


def raft_examples(
    corpus: Corpus, heldout: bool, per_language: int, seed: int, registry: PluginRegistry
) -> list[Example]:
    """RAFT examples made (by the ``raft`` synthesizer) from training or held-out files only."""
    units = mine_units(choose_files(corpus, heldout, per_language, seed), registry)
    request = SynthesizeRequest(units=units, settings=RAFT_SETTINGS, seed=seed)
    result = registry.call("synthesize", "raft", request)
    examples = result.examples if hasattr(result, "examples") else result["examples"]
    return [Example.model_validate(e) for e in examples]


def heldout_raft_examples(
    corpus: Corpus, preset: Preset, seed: int, registry: PluginRegistry
) -> list[Example]:
    """The held-out RAFT examples (the same for training-time checks and for evaluation)."""
    per_language = max(10, preset.raft_files_per_language // 10)
    return raft_examples(corpus, True, per_language, seed, registry)


def write_examples(examples: Sequence[Example], target: Path) -> Path:
    """Write examples as JSONL (the chat-messages shape)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(example.model_dump_json() + "\n")
    temporary.replace(target)
    return target


def read_examples(path: Path) -> list[Example]:
    """Examples from a JSONL file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Example.model_validate(json.loads(line)) for line in lines if line.strip()]


def tokenize_examples(tokenizer: Any, examples: Sequence[Example], max_len: int) -> list[Any]:
    """Token ids with answer-only labels (forge_torch's tokenisation); too long ones dropped."""
    from forge_torch.data import tokenize_conversation

    tokenized = []
    for example in examples:
        messages = [m.model_dump() for m in example.messages]
        item = tokenize_conversation(tokenizer, messages)
        if len(item) <= max_len:
            tokenized.append(item)
    return tokenized


def answer_loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy on answer tokens of packed rows; plain LM loss on pretraining rows."""
    if "windows" in batch:
        return causal_loss(model, batch)
    # forge_torch's collate leaves the mask empty when no row holds two examples.
    mask = batch["attention_mask"]
    logits = model(
        input_ids=batch["input_ids"],
        position_ids=batch["position_ids"],
        attention_mask=None if mask.numel() == 0 else mask,
        use_cache=False,
    ).logits
    targets = batch["labels"][:, 1:]
    loss = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100
    )
    return loss, int((targets != -100).sum())


def instruct(
    model: torch.nn.Module,
    tokenizer: Any,
    preset: Preset,
    train_examples: Sequence[Example],
    heldout_examples: Sequence[Example],
    streams: dict[str, np.ndarray],
    folder: Path,
    device: torch.device,
    budget_seconds: float,
    max_steps: int | None,
    seed: int,
) -> dict[str, Any]:
    """Fine-tune ``model`` on the RAFT examples (all weights) for the budget."""
    from forge_torch.data import collate, epoch_rows

    capacity = preset.context_length
    train = tokenize_examples(tokenizer, train_examples, capacity)
    valid = tokenize_examples(tokenizer, heldout_examples[:EVAL_EXAMPLES], capacity)
    if not train:
        raise RuntimeError("no RAFT example fits the context; check the corpus and forge_raft")
    rows_per_batch = max(1, preset.batch_rows * preset.seq_len // capacity)
    mask_dtype = autocast_dtype(device) or torch.float32
    pad = tokenizer.pad_token_id
    epochs: dict[int, list[list[int]]] = {}

    def rows_of(epoch: int) -> list[list[int]]:
        """The packed rows of one epoch, computed once (packing is quadratic)."""
        if epoch not in epochs:
            epochs[epoch] = epoch_rows(train, capacity, True, seed, epoch)
        return epochs[epoch]

    def rows_for(step: int) -> list[list[int]]:
        first = step * rows_per_batch
        per_epoch = len(rows_of(0))
        chosen = []
        for index in range(first, first + rows_per_batch):
            epoch, offset = divmod(index, per_epoch)
            chosen.append(rows_of(epoch)[offset])
        return chosen

    def next_batch(step: int, progress: float) -> Batch:
        if step % PRETRAIN_EVERY == PRETRAIN_EVERY - 1:
            width = preset.seq_len + 1
            return {"windows": sample_batch(streams, preset.batch_rows, width, seed + 1, step)}
        batch = collate(train, rows_for(step), pad, mask_dtype)
        return {
            "input_ids": batch.input_ids,
            "labels": batch.labels,
            "position_ids": batch.position_ids,
            "attention_mask": batch.attention_mask,
        }

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        if not valid:
            return {}
        total, count = 0.0, 0
        for start in range(0, len(valid), 4):
            rows = [[i] for i in range(start, min(start + 4, len(valid)))]
            batch = collate(valid, rows, pad, mask_dtype).to(device)
            tensors = {
                "input_ids": batch.input_ids,
                "labels": batch.labels,
                "position_ids": batch.position_ids,
                "attention_mask": batch.attention_mask,
            }
            loss, tokens = answer_loss(model, tensors)
            total += float(loss) * tokens
            count += tokens
        return {"valid_answer_loss": total / max(count, 1)}

    config = StageConfig(
        name="instruct",
        peak_lr=preset.learning_rate / 3,
        budget_seconds=budget_seconds,
        max_steps=max_steps,
        warmup_share=0.05,
        eval_every_seconds=max(30.0, budget_seconds / 4),
        checkpoint_every_seconds=max(60.0, min(300.0, budget_seconds / 4)),
    )
    summary = run_stage(model, config, folder, device, next_batch, answer_loss, evaluate)
    summary["train_examples"] = len(train)
    return summary
