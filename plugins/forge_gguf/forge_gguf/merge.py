"""Merge a LoRA adapter into its original base at full precision, save a plain HF model.

The base is loaded unquantised in float32 on the CPU, whatever it was trained
in (QLoRA trains on a 4-bit base, but the adapter Forge saves is a plain LoRA
for the original weights), so ``W + s·B·A`` is computed without rounding. The
merged model is saved as safetensors with the adapter's tokenizer files, which
carry the chat template training used.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

#: Files that make a tokenizer (transformers writes a subset of these).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def tokenizer_source(base_model: str, adapter_dir: str | None) -> str:
    """Where the tokenizer comes from: the adapter folder when it has one, else the base."""
    if adapter_dir and all((Path(adapter_dir) / f).is_file() for f in TOKENIZER_FILES):
        return adapter_dir
    return base_model


def merge_adapter(base_model: str, adapter_dir: str | None, output_dir: Path) -> Path:
    """Load the base in fp32, merge the adapter (if any), save model + tokenizer to ``output_dir``.

    The folder is written as ``<output_dir>.partial`` and renamed when complete.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    partial = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        logger.info("merging %s into %s", adapter_dir, base_model)
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source(base_model, adapter_dir))
    tokenizer.save_pretrained(partial)
    shutil.rmtree(output_dir, ignore_errors=True)
    partial.rename(output_dir)
    return output_dir
