"""The training loop: setup_model → prepare_data → run_steps → save_adapter.

A plain PyTorch loop (no ``transformers.Trainer``) so that packing, the
assistant-only token-mean loss and exact resume are all under our control:
the data order is a pure function of (seed, epoch), and a checkpoint holds the
adapter, optimizer, scheduler, every RNG and the data position.
"""

from __future__ import annotations

import json
import logging
import math
import random
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from transformers import get_cosine_schedule_with_warmup

from forge_core.config import TrainSettings
from forge_core.contracts import InitAdapterRequest, InitAdapterResult, TrainRequest, TrainResult
from forge_core.files import sha256_json, write_text_atomic
from forge_torch import checkpoints as ckpt
from forge_torch.data import (
    IGNORE_INDEX,
    Batch,
    TokenizedExample,
    collate,
    epoch_rows,
    examples_digest,
    row_capacity,
    tokenize_file,
)
from forge_torch.model import (
    Placement,
    load_base_model,
    load_tokenizer,
    pick_placement,
    save_pissa_as_lora,
)
from forge_torch.plan import (
    USABLE_FRACTION,
    device_memory_bytes,
    needs_checkpointing,
    shape_from_dict,
)
from forge_torch.plot import plot_losses

logger = logging.getLogger(__name__)


@dataclass
class Setup:
    """Everything the loop needs, built once."""

    base_model: str
    settings: TrainSettings
    placement: Placement
    tokenizer: Any
    model: Any
    adapter: InitAdapterResult
    train: list[TokenizedExample]
    valid: list[TokenizedExample]
    dropped_too_long: int
    gradient_checkpointing: bool = False


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def init_adapter(request: TrainRequest, settings: TrainSettings, model: Any) -> InitAdapterResult:
    """Make the trainable adapter through the plugin providing ``train.method``."""
    from forge_core.plugins import PluginRegistry

    registry = PluginRegistry(disabled=request.disabled_plugins)
    adapter_request = InitAdapterRequest(
        method=settings.method,
        base_model=request.base_model,
        settings=request.settings,
        output_dir=str(Path(request.output_dir) / "init"),
        model=None if settings.quantize_4bit else model,
    )
    return InitAdapterResult.model_validate(
        registry.call("init_adapter", settings.method, adapter_request)
    )


def setup(request: TrainRequest) -> Setup:
    """Load the tokenizer, the data, the base model and the adapter."""
    settings = TrainSettings.model_validate(request.settings)
    seed_everything(settings.seed)
    placement = pick_placement(settings.device)
    tokenizer = load_tokenizer(request.base_model)
    train, too_long = tokenize_file(tokenizer, Path(request.train_file), settings.max_seq_len)
    if not train:
        raise ValueError(
            f"no training example fits train.max_seq_len={settings.max_seq_len} tokens "
            f"({too_long} were longer); raise it or shorten synth.max_document_chars"
        )
    valid: list[TokenizedExample] = []
    if request.valid_file and Path(request.valid_file).is_file():
        valid, _ = tokenize_file(
            tokenizer,
            Path(request.valid_file),
            settings.max_seq_len,
            sample=settings.valid_max_examples,
            seed=settings.seed,
        )
    model = None
    if not settings.quantize_4bit:
        model = load_base_model(request.base_model, placement)
    seed_everything(settings.seed)
    adapter = init_adapter(request, settings, model)
    checkpointing = decide_checkpointing(settings, placement, adapter.model, train)
    if checkpointing:
        adapter.model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
        adapter.model.enable_input_require_grads()
    adapter.model.config.use_cache = False
    if settings.compile:
        compile_decoder(adapter.model)
    return Setup(
        request.base_model,
        settings,
        placement,
        tokenizer,
        adapter.model,
        adapter,
        train,
        valid,
        too_long,
        checkpointing,
    )


def decide_checkpointing(
    settings: TrainSettings, placement: Placement, model: Any, train: list[TokenizedExample]
) -> bool:
    """``train.gradient_checkpointing``, or when unset (None): on exactly when the plan's
    estimate without it does not fit the device's memory (``forge_torch.plan``)."""
    if settings.gradient_checkpointing is not None:
        return settings.gradient_checkpointing
    kind = placement.device.type
    try:
        shape = shape_from_dict(model.config.to_dict())
    except KeyError as missing:
        logger.info("gradient checkpointing off: no %s in the model config to plan with", missing)
        return False
    memory = device_memory_bytes(kind)
    needed = needs_checkpointing(
        shape,
        memory,
        seq_len=row_capacity(train, settings.max_seq_len),
        batch=settings.batch_size,
        rank=settings.rank,
        quantize_4bit=settings.quantize_4bit,
        weight_bytes=float(placement.dtype.itemsize),
        usable_fraction=USABLE_FRACTION.get(kind, 0.8),
    )
    logger.info(
        "gradient checkpointing %s: the estimate without it %s %.1f GiB of %s memory",
        "on" if needed else "off",
        "exceeds" if needed else "fits",
        memory / 2**30,
        kind,
    )
    return needed


def compile_decoder(model: Any) -> None:
    """Compile the decoder stack in place (the output head and loss stay eager).

    ``nn.Module.compile`` rather than ``torch.compile(module)``: the wrapper the
    latter returns would prefix every parameter name with ``_orig_mod.``, so the
    saved adapter's keys would no longer match the model (PEFT would load it
    with missing keys, and the PiSSA conversion would not find its adapter).
    """
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    causal_lm.model.compile(dynamic=True)


#: Label tokens per chunk of the output head: bounds the fp32 logits held at once.
LOSS_CHUNK_TOKENS = 1024


def _head_loss(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of one chunk (recomputed in backward, never stored)."""
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def batch_loss_sum(model: Any, batch: Batch) -> torch.Tensor:
    """Summed cross-entropy over the batch's label tokens (the answer tokens only).

    The output head runs only on positions that carry a label (RAFT answers are
    a small part of each example), in checkpointed chunks, so the full
    ``seq x vocab`` fp32 logits are never materialised.
    """
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = causal_lm.model
    head = causal_lm.get_output_embeddings()
    mask = None if batch.attention_mask.numel() == 0 else batch.attention_mask
    hidden: torch.Tensor = decoder(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        attention_mask=mask,
        use_cache=False,
    ).last_hidden_state
    targets = batch.labels[:, 1:]
    selected = targets != IGNORE_INDEX
    states = hidden[:, :-1][selected]
    wanted = targets[selected]
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, wanted.numel(), LOSS_CHUNK_TOKENS):
        chunk = slice(start, start + LOSS_CHUNK_TOKENS)
        if torch.is_grad_enabled():
            total = total + torch.utils.checkpoint.checkpoint(
                _head_loss, head, states[chunk], wanted[chunk], use_reentrant=False
            )
        else:
            total = total + _head_loss(head, states[chunk], wanted[chunk])
    return total


@torch.no_grad()
def validation_loss(run: Setup) -> float | None:
    """Token-mean loss on the validation split."""
    if not run.valid:
        return None
    run.model.eval()
    total, tokens = 0.0, 0
    capacity = row_capacity(run.valid, run.settings.max_seq_len)
    rows = epoch_rows(run.valid, capacity, run.settings.packing, 0, 0)
    for start in range(0, len(rows), run.settings.batch_size):
        batch = collate(
            run.valid,
            rows[start : start + run.settings.batch_size],
            run.tokenizer.pad_token_id,
            run.placement.dtype,
        ).to(run.placement.device)
        total += float(batch_loss_sum(run.model, batch))
        tokens += batch.label_tokens
    run.model.train()
    return total / max(tokens, 1)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA allocator peak, else the process's max RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Loop:
    """The optimisation loop over packed micro-batches, with checkpoints and logging."""

    def __init__(self, run: Setup, output_dir: Path) -> None:
        self.run = run
        self.settings = run.settings
        self.output_dir = output_dir
        self.checkpoint_dir = output_dir / "checkpoints"
        self.log_path = output_dir / "log.jsonl"
        self.plot_path = output_dir / "loss.png"
        self.capacity = row_capacity(run.train, self.settings.max_seq_len)
        first_rows = epoch_rows(
            run.train, self.capacity, self.settings.packing, self.settings.seed, 0
        )
        self.micro_per_epoch = math.ceil(len(first_rows) / self.settings.batch_size)
        # Steps stop at each epoch's end (see ``step``), so the last one may be short.
        steps_per_epoch = math.ceil(self.micro_per_epoch / self.settings.gradient_accumulation)
        self.total_steps = self.settings.max_steps or max(
            1, math.ceil(self.settings.epochs * steps_per_epoch)
        )
        params = [p for p in run.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=self.settings.learning_rate, weight_decay=self.settings.weight_decay
        )
        warmup = int(self.settings.warmup_ratio * self.total_steps)
        self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, warmup, self.total_steps)
        self.state = ckpt.TrainerState(config_hash=self._config_hash())
        self._rows_cache: dict[int, list[list[int]]] = {}

    def _config_hash(self) -> str:
        """What a checkpoint must match to be resumed: the base, the settings, the data.

        The data counts by content (its tokens and labels), not by size: data
        re-synthesised after a killed run must start afresh, not continue the
        old run's adapter and optimizer.
        """
        relevant = self.settings.model_dump(
            exclude={"save_every", "eval_every", "early_stopping_patience"}
        )
        return sha256_json(
            {
                "base_model": self.run.base_model,
                "settings": relevant,
                "train": examples_digest(self.run.train),
                "valid": examples_digest(self.run.valid),
            }
        )

    def rows_at(self, position: int) -> list[list[int]]:
        """The rows of the micro-batch at a global data position."""
        epoch, index = divmod(position, self.micro_per_epoch)
        if epoch not in self._rows_cache:
            self._rows_cache = {
                epoch: epoch_rows(
                    self.run.train,
                    self.capacity,
                    self.settings.packing,
                    self.settings.seed,
                    epoch,
                )
            }
        rows = self._rows_cache[epoch]
        size = self.settings.batch_size
        return rows[index * size : (index + 1) * size]

    def resume(self) -> bool:
        """Continue from the newest compatible checkpoint; drop incompatible ones."""
        latest = ckpt.latest_checkpoint(self.checkpoint_dir)
        if latest is None:
            return False
        if ckpt.read_state(latest).config_hash != self.state.config_hash:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            return False
        self.state = ckpt.load_checkpoint(latest, self.run.model, self.optimizer, self.scheduler)
        return True

    def write_log(self) -> None:
        """Rewrite log.jsonl from the history (also drops entries a resume will redo)."""
        text = "".join(json.dumps(entry) + "\n" for entry in self.state.history)
        write_text_atomic(self.log_path, text)

    def step(self) -> dict[str, Any]:
        """One optimizer step over ``gradient_accumulation`` micro-batches.

        A step never crosses an epoch boundary: an epoch's last step takes only
        the micro-batches left, so ``epochs=N`` trains each example exactly N
        times (the loss is normalised by the label tokens actually collected).
        """
        placement = self.run.placement
        batches = []
        for _ in range(self.settings.gradient_accumulation):
            rows = self.rows_at(self.state.position)
            self.state.position += 1
            if rows:
                batches.append(
                    collate(self.run.train, rows, self.run.tokenizer.pad_token_id, placement.dtype)
                )
            if self.state.position % self.micro_per_epoch == 0:
                break
        label_tokens = max(1, sum(b.label_tokens for b in batches))
        started = time.perf_counter()
        loss_sum = 0.0
        for batch in batches:
            loss = batch_loss_sum(self.run.model, batch.to(placement.device)) / label_tokens
            loss.backward()  # type: ignore[no-untyped-call]
            loss_sum += float(loss.detach())
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in self.run.model.parameters() if p.requires_grad], 1.0
        )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - started
        real = sum(b.real_tokens for b in batches)
        self.state.step += 1
        self.state.trained_tokens += real
        self.state.elapsed_seconds += seconds
        return {
            "step": self.state.step,
            "epoch": round(self.state.position / self.micro_per_epoch, 4),
            "loss": round(loss_sum, 6),
            "lr": self.scheduler.get_last_lr()[0],
            "grad_norm": round(float(grad_norm), 6),
            "real_tokens": real,
            "tokens_per_second": round(real / seconds, 1) if seconds > 0 else None,
            "memory_mb": round(peak_memory_mb(placement.device), 1),
        }

    def evaluate(self) -> bool:
        """Log the validation loss, refresh the plot; True when early stopping says stop."""
        valid = validation_loss(self.run)
        if valid is not None:
            self.state.history.append({"step": self.state.step, "valid_loss": round(valid, 6)})
            best = self.state.best_valid_loss
            if best is None or valid < best - 1e-6:
                self.state.best_valid_loss = valid
                self.state.evals_without_improvement = 0
            else:
                self.state.evals_without_improvement += 1
        plot_losses(
            self.state.history, self.plot_path, f"{self.settings.method} r{self.settings.rank}"
        )
        patience = self.settings.early_stopping_patience
        return patience is not None and self.state.evals_without_improvement >= patience

    def run_steps(self) -> None:
        """Train until ``total_steps`` (or early stopping), checkpointing as configured."""
        from tqdm.auto import tqdm

        self.run.model.train()
        self.write_log()
        bar = tqdm(
            total=self.total_steps,
            initial=self.state.step,
            desc="training",
            unit="step",
            dynamic_ncols=True,
        )
        try:
            while self.state.step < self.total_steps:
                entry = self.step()
                self.state.history.append(entry)
                with open(self.log_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry) + "\n")
                bar.update(1)
                bar.set_postfix(loss=f"{entry['loss']:.4f}", tok_s=entry["tokens_per_second"])
                stop = False
                if (
                    self.state.step % self.settings.eval_every == 0
                    or self.state.step == self.total_steps
                ):
                    stop = self.evaluate()
                    self.write_log()
                if (
                    self.state.step % self.settings.save_every == 0
                    and self.state.step < self.total_steps
                ):
                    ckpt.save_checkpoint(
                        self.checkpoint_dir,
                        self.run.model,
                        self.optimizer,
                        self.scheduler,
                        self.state,
                    )
                if stop:
                    break
        finally:
            bar.close()


def save_adapter(run: Setup, target: Path) -> Path:
    """Save the trained adapter (PiSSA converted to plain LoRA for the original base)."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if run.adapter.initial_adapter_dir:
        save_pissa_as_lora(run.model, partial, run.adapter.initial_adapter_dir)
    else:
        run.model.save_pretrained(partial)
    run.tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def train(request: TrainRequest) -> TrainResult:
    """The whole ``train`` hook: set up, resume if possible, run, save."""
    output_dir = Path(request.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run = setup(request)
    loop = Loop(run, output_dir)
    resumed_from = loop.state.step if loop.resume() else None
    loop.run_steps()
    adapter_dir = save_adapter(run, output_dir / "adapter")
    # Checkpoints only serve an interrupted run; a finished one starts afresh if re-run.
    shutil.rmtree(loop.checkpoint_dir, ignore_errors=True)
    losses = [h["loss"] for h in loop.state.history if "loss" in h]
    metrics: dict[str, float] = {
        "steps": float(loop.state.step),
        "final_loss": float(losses[-1]) if losses else math.nan,
        "real_tokens": float(loop.state.trained_tokens),
        "tokens_per_second": round(
            loop.state.trained_tokens / max(loop.state.elapsed_seconds, 1e-9), 1
        ),
        "train_examples": float(len(run.train)),
        "dropped_too_long": float(run.dropped_too_long),
        "peak_memory_mb": round(peak_memory_mb(run.placement.device), 1),
    }
    if loop.state.best_valid_loss is not None:
        metrics["best_valid_loss"] = round(loop.state.best_valid_loss, 6)
    if resumed_from is not None:
        metrics["resumed_from_step"] = float(resumed_from)
    (output_dir / "training.json").write_text(
        json.dumps(
            {
                "placement": run.placement.label,
                "method": run.settings.method,
                "gradient_checkpointing": run.gradient_checkpointing,
                "metrics": metrics,
            },
            indent=2,
        )
    )
    return TrainResult(
        adapter_dir=str(adapter_dir),
        base_model=request.base_model,
        metrics=metrics,
        log_file=str(loop.log_path),
        plot_file=str(loop.plot_path) if loop.plot_path.exists() else None,
    )
