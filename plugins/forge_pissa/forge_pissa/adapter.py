"""PiSSA and QPiSSA adapter initialisation through PEFT.

PiSSA (Meng et al. 2024, "PiSSA: Principal Singular Values and Singular Vectors
Adaptation of Large Language Models") starts a LoRA adapter on the principal part
of each adapted weight. With the SVD ``W = U S Vᵀ`` and LoRA scaling ``s``, PEFT
sets ``B = U_r √(S_r/s)`` and ``A = √(S_r/s) V_rᵀ`` and leaves the residual
``W_res = W − s·B·A`` in the frozen base: the model computes the same function at
step 0, and training moves the principal directions first. ``pissa`` runs a full
SVD; ``pissa_niter_N`` a randomized SVD with N subspace iterations (seconds on a
7B model; ``W_res + s·B·A = W`` holds exactly either way).

The steps, one function each, in the order :func:`init_pissa` runs them:

* :func:`apply_pissa`: seed torch, wrap a full-precision base with
  ``LoraConfig(init_lora_weights=method)``; the base's weights become ``W_res``.
* :func:`save_initial_adapter`: keep ``A₀, B₀``; with them
  :func:`convert_to_lora` turns the trained adapter into a plain LoRA for the
  original base.
* QPiSSA only (``train.quantize_4bit``), PEFT's recipe (PEFT refuses to decompose
  quantized weights): :func:`save_residual_base` writes ``W_res`` as a model
  directory, :func:`load_quantized_pissa` reloads it in 4-bit NF4 and puts the
  initial adapter on it, trainable. Quantizing ``W_res`` loses less than
  quantizing ``W``: the large principal components stay in full precision.
"""

from __future__ import annotations

import fnmatch
import gc
import json
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from peft.tuners.lora import LoraLayer

from forge_core.config import TrainSettings
from forge_core.contracts import InitAdapterRequest, InitAdapterResult
from forge_torch.model import (
    Placement,
    bitsandbytes_config,
    load_base_model,
    pick_placement,
    save_pissa_as_lora,
)

__all__ = [
    "INITIAL_ADAPTER_DIR",
    "RESIDUAL_BASE_DIR",
    "apply_pissa",
    "check_method",
    "convert_to_lora",
    "copy_tokenizer_files",
    "init_pissa",
    "load_quantized_pissa",
    "pissa_config",
    "save_initial_adapter",
    "save_residual_base",
]

#: Folder of ``InitAdapterRequest.output_dir`` that holds the adapter as initialised.
INITIAL_ADAPTER_DIR = "pissa_init"
#: Folder of ``InitAdapterRequest.output_dir`` that holds the QPiSSA residual base.
RESIDUAL_BASE_DIR = "residual_base"

_METHOD = re.compile(r"pissa(?:_niter_(?P<niter>\d+))?")

#: Tokenizer files a residual base takes from the original base directory.
TOKENIZER_FILES = (
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "chat_template.*",
    "*.tiktoken",
    "spiece.model",
)


# --------------------------------------------------------------------------- the hook


def init_pissa(request: InitAdapterRequest) -> InitAdapterResult:
    """The whole ``init_adapter`` hook: PiSSA on the full-precision base, or QPiSSA."""
    method = check_method(request.method)
    settings = TrainSettings.model_validate(request.settings)
    if settings.quantize_4bit:
        return init_qpissa(request, method, settings)
    model = request.model
    if model is None:
        model = load_base_model(request.base_model, pick_placement(settings.device))
    peft_model = apply_pissa(model, method, settings)
    initial = save_initial_adapter(peft_model, request.output_dir)
    return InitAdapterResult(
        method=method,
        model=peft_model,
        initial_adapter_dir=str(initial),
        notes=[_describe(peft_model, method, settings), _conversion_note(initial)],
    )


def init_qpissa(
    request: InitAdapterRequest, method: str, settings: TrainSettings
) -> InitAdapterResult:
    """QPiSSA: decompose at full precision, save ``W_res``, train it in 4-bit under the adapter."""
    placement = pick_placement(settings.device)
    # Fail before minutes of SVD where 4-bit cannot run (CPU, MPS, no bitsandbytes).
    bitsandbytes_config(placement)
    notes = []
    if request.model is not None:
        notes.append(
            "request.model was not used: QPiSSA decomposes the base at full precision, "
            "loaded from base_model; pass model=None to save the memory"
        )
    base = load_base_model(request.base_model, placement)
    peft_model = apply_pissa(base, method, settings)
    notes.append(_describe(peft_model, method, settings))
    initial = save_initial_adapter(peft_model, request.output_dir)
    residual = save_residual_base(peft_model, request.base_model, request.output_dir)
    del base, peft_model
    _release_memory()
    model = load_quantized_pissa(residual, initial, placement)
    notes.append(
        f"QPiSSA: the residual base W - s·B·A is in {residual} and trains in 4-bit NF4; "
        "a converted LoRA applies to the original base up to the 4-bit error of the residual"
    )
    notes.append(_conversion_note(initial))
    return InitAdapterResult(
        method=method,
        model=model,
        residual_base=str(residual),
        initial_adapter_dir=str(initial),
        notes=notes,
    )


# --------------------------------------------------------------------------- the steps


def check_method(method: str) -> str:
    """Return ``method`` when it is a PiSSA method, else raise ``ValueError`` naming those."""
    if _METHOD.fullmatch(method) is None:
        raise ValueError(
            f"unknown PiSSA method {method!r}: use 'pissa' (full SVD) or 'pissa_niter_N' "
            "(randomized SVD with N subspace iterations, e.g. 'pissa_niter_16')"
        )
    return method


def pissa_config(method: str, settings: TrainSettings) -> LoraConfig:
    """The PEFT ``LoraConfig`` of ``method`` with the ``train`` section's rank, alpha, dropout."""
    # PEFT types init_lora_weights as a Literal that spells "pissa_niter_[number of iters]".
    init_lora_weights: Any = method
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        init_lora_weights=init_lora_weights,
        task_type="CAUSAL_LM",
    )


def apply_pissa(model: Any, method: str, settings: TrainSettings) -> PeftModel:
    """Wrap a full-precision base with a PiSSA adapter; its adapted weights become ``W_res``.

    Torch is seeded with ``train.seed`` first: ``pissa_niter_N`` draws a random
    sketch, and the same seed must give the same adapter (a resumed run).
    """
    if getattr(model, "hf_quantizer", None) is not None or getattr(
        model, "is_loaded_in_4bit", False
    ):
        raise ValueError(
            "PiSSA decomposes full-precision weights and this base model is quantized: "
            "pass the unquantized base, or set train.quantize_4bit=true for QPiSSA "
            "(decompose at full precision, then quantize the residual)"
        )
    torch.manual_seed(settings.seed)
    return get_peft_model(model, pissa_config(method, settings))


def save_initial_adapter(peft_model: PeftModel, output_dir: str | Path) -> Path:
    """Save the adapter as initialised to ``<output_dir>/pissa_init`` and return that path.

    The saved config says ``init_lora_weights=True``, as PEFT requires: loading
    it must put ``A₀, B₀`` on the residual base as they are (not decompose the
    base again), and ``path_initial_model_for_weight_conversion`` refuses an
    initial adapter without it. The model's own config keeps the method.
    """
    config: Any = peft_model.peft_config[peft_model.active_adapter]  # a LoraConfig
    method = config.init_lora_weights
    target = Path(output_dir) / INITIAL_ADAPTER_DIR
    config.init_lora_weights = True
    try:
        _write_atomically(target, lambda path: peft_model.save_pretrained(str(path)))
    finally:
        config.init_lora_weights = method
    return target


def save_residual_base(peft_model: PeftModel, base_model: str, output_dir: str | Path) -> Path:
    """Write the residual base with the base's tokenizer to ``<output_dir>/residual_base``.

    Consumes ``peft_model``: PEFT's ``unload`` removes the adapter layers and
    leaves the base model holding ``W_res`` in every adapted layer, which is
    saved as safetensors in the base's dtype.
    """
    residual = peft_model.unload()
    target = Path(output_dir) / RESIDUAL_BASE_DIR

    def write(path: Path) -> None:
        residual.save_pretrained(str(path))
        copy_tokenizer_files(base_model, path)

    _write_atomically(target, write)
    return target


def copy_tokenizer_files(base_model: str, destination: Path) -> list[str]:
    """Copy the tokenizer files of a local base model into ``destination``; return their names.

    A base that is not a local directory (a hub id) has its tokenizer loaded and
    saved instead.
    """
    source = Path(base_model)
    if not source.is_dir():
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(base_model).save_pretrained(str(destination))
        return sorted(p.name for p in destination.iterdir() if _is_tokenizer_file(p.name))
    copied = []
    for path in sorted(source.iterdir()):
        if path.is_file() and _is_tokenizer_file(path.name):
            shutil.copy2(path, destination / path.name)
            copied.append(path.name)
    return copied


def load_quantized_pissa(
    residual_dir: str | Path, initial_adapter_dir: str | Path, placement: Placement
) -> PeftModel:
    """Load the residual base in 4-bit NF4 with the initial adapter on it, trainable (CUDA only).

    As PEFT's QPiSSA example does, the base goes through
    ``prepare_model_for_kbit_training`` (norms and embeddings upcast to fp32);
    gradient checkpointing is left to the trainer.
    """
    model = load_base_model(str(residual_dir), placement, quantize_4bit=True)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  # type: ignore[no-untyped-call]
    return PeftModel.from_pretrained(model, str(initial_adapter_dir), is_trainable=True)


def convert_to_lora(
    peft_model: PeftModel,
    output_dir: str | Path,
    initial_adapter_dir: str | Path,
    *,
    base_model: str | None = None,
) -> Path:
    """Save a trained PiSSA adapter as a plain LoRA for the ORIGINAL base; return its directory.

    With ``A₀, B₀`` the initial adapter (``initial_adapter_dir``, i.e.
    ``InitAdapterResult.initial_adapter_dir``) and ``A, B`` the trained one,
    training changed the model by ``ΔW = s·(B·A − B₀·A₀) = s·[B | −B₀]·[A ; A₀]``.
    PEFT's ``save_pretrained(path_initial_model_for_weight_conversion=...)``
    writes that rank-2r adapter (alpha doubled, so ``s`` is unchanged): it loads
    with ``PeftModel.from_pretrained`` on the unmodified base, merges and
    exports like any LoRA, and needs no SVD. For QPiSSA it applies to the
    full-precision original base and differs from the trained 4-bit model by
    the quantisation error of ``W_res`` (PEFT warns about this).

    ``base_model``, when given, is recorded as the adapter's
    ``base_model_name_or_path``. The directory is written beside its final
    name and renamed into place; an existing one is replaced.
    """
    initial = Path(initial_adapter_dir).resolve()
    if not (initial / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{initial} holds no adapter_config.json: pass the initial_adapter_dir that "
            "init_adapter returned (the PiSSA adapter saved before training)"
        )

    def write(path: Path) -> None:
        save_pissa_as_lora(peft_model, path, initial)
        if base_model is not None:
            config_file = path / "adapter_config.json"
            config = json.loads(config_file.read_text("utf-8"))
            config["base_model_name_or_path"] = base_model
            config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", "utf-8")

    target = Path(output_dir)
    _write_atomically(target, write)
    return target


# --------------------------------------------------------------------------- helpers


def _is_tokenizer_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in TOKENIZER_FILES)


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Write a directory beside ``target``, then rename it into place (never half-written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        write(partial)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _release_memory() -> None:
    """Free the full-precision copy before the 4-bit one is loaded."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _describe(peft_model: PeftModel, method: str, settings: TrainSettings) -> str:
    layers = sum(1 for module in peft_model.modules() if isinstance(module, LoraLayer))
    svd = "full SVD" if method == "pissa" else f"randomized SVD, {method.rsplit('_', 1)[-1]} iters"
    return (
        f"PiSSA ({svd}) on {layers} linear layers: rank {settings.rank}, alpha {settings.alpha}, "
        f"seed {settings.seed}"
    )


def _conversion_note(initial: Path) -> str:
    return (
        f"initial adapter in {initial}: save the trained adapter with "
        "path_initial_model_for_weight_conversion=<it> (forge_pissa.convert_to_lora) to get "
        "a plain LoRA for the original base"
    )
