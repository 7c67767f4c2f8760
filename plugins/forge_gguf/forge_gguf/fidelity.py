"""Does the GGUF behave like the merged Hugging Face model? Tokens first, then logits.

* **Tokenisation**: llama.cpp (``Llama(vocab_only=True).tokenize(..., special=True)``)
  must give exactly the transformers ids on every sample text: code in three
  languages, unicode, whitespace runs, and conversations rendered with the chat
  template (its special tokens included). BOS/EOS insertion is checked too.
* **Logits**: on a few hundred positions of held-out code, llama.cpp's next-token
  distribution is compared with the fp32 merged model's: top-1 agreement and the
  mean KL divergence ``KL(HF ‖ GGUF)``. The reference logits are computed once
  and reused for every quantisation. The gate reads the top-1 agreement *outside
  near-ties*: where the reference itself puts two tokens within ``NEAR_TIE_NATS``
  of each other, either one is a faithful top-1 (llama.cpp's thread count alone
  reorders float sums enough to flip such positions).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from forge_llamacpp.logs import captured_llama_cpp_log

logger = logging.getLogger(__name__)

#: Default top-1 gates per quantisation; quantisations not listed are reported only.
DEFAULT_MIN_TOP1 = {"F16": 0.99, "Q8_0": 0.98}
#: A candidate's top-1 within this many nats of the reference's best is a near-tie, not a miss.
NEAR_TIE_NATS = 0.1


def builtin_samples() -> dict[str, list[str]]:
    """The packaged tokenisation texts and held-out code."""
    text = resources.files("forge_gguf").joinpath("data/fidelity_samples.json").read_text("utf-8")
    data = json.loads(text)
    return {"tokenization": data["tokenization"], "held_out_code": data["held_out_code"]}


def chat_samples(tokenizer: Any) -> list[str]:
    """Conversations rendered by the chat template, and its special tokens in odd places."""
    texts: list[str] = []
    specials = [t.content for t in tokenizer.added_tokens_decoder.values()]
    if specials:
        texts.append("".join(specials))
        texts.append("word" + " ".join(specials) + "tail\n")
    if not getattr(tokenizer, "chat_template", None):
        return texts
    conversations = [
        [
            {"role": "system", "content": "Answer from the documents."},
            {"role": "user", "content": "def add(a, b):\n    return a + b\n\nWhat does add do?"},
            {"role": "assistant", "content": "It returns `a + b`.\n\n<ANSWER>: the sum"},
        ],
        [{"role": "user", "content": "Écris une fonction — 中文 ok? 🙂"}],
    ]
    for conversation in conversations:
        for prompt in (False, True):
            try:
                texts.append(
                    tokenizer.apply_chat_template(
                        conversation, tokenize=False, add_generation_prompt=prompt
                    )
                )
            except Exception as exc:  # a template may not accept a system turn
                logger.info("chat template rejected a sample conversation: %s", exc)
    return texts


def tokenization_texts(tokenizer: Any, extra: list[str] | None = None) -> list[str]:
    """Every text the tokenisation check runs on (samples, held-out code, chat, ``extra``)."""
    samples = builtin_samples()
    return [
        *samples["tokenization"],
        *samples["held_out_code"],
        *chat_samples(tokenizer),
        *(extra or []),
    ]


@dataclass
class TokenizationReport:
    """How llama.cpp's tokenisation compares with transformers'."""

    texts: int
    mismatches: list[str]
    special_insertion_ok: bool

    @property
    def identical(self) -> bool:
        """Every text tokenised alike, and BOS/EOS are inserted alike."""
        return not self.mismatches and self.special_insertion_ok


def check_tokenization(gguf_path: Path, tokenizer: Any, texts: list[str]) -> TokenizationReport:
    """Tokenise ``texts`` with llama.cpp (vocab only) and with transformers; list differences."""
    from llama_cpp import Llama

    # A vocabulary-only load warns of a "training context overflow" (it reads no
    # hyperparameters, so n_ctx_train is 0): nothing to show a user here.
    with captured_llama_cpp_log():
        llm = Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        mismatches = []
        for text in texts:
            expected = tokenizer(text, add_special_tokens=False)["input_ids"]
            got = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if list(got) != list(expected):
                mismatches.append(text)
                logger.warning(
                    "tokenisation differs on %r: transformers %s, llama.cpp %s",
                    text[:60],
                    expected[:20],
                    list(got)[:20],
                )
        probe = "def f(x):\n    return x"
        with_specials = tokenizer(probe, add_special_tokens=True)["input_ids"]
        insertion_ok = list(llm.tokenize(probe.encode(), add_bos=True, special=True)) == list(
            with_specials
        )
    finally:
        llm.close()
    return TokenizationReport(len(texts), mismatches, insertion_ok)


def held_out_ids(tokenizer: Any, texts: list[str], positions: int) -> list[int]:
    """``positions`` token ids of held-out code (texts joined by blank lines, repeated if short)."""
    ids: list[int] = []
    joined = "\n\n".join(texts)
    # verbose=False: longer than the model's context on purpose, no warning wanted.
    chunk = tokenizer(joined, add_special_tokens=False, verbose=False)["input_ids"]
    if not chunk:
        raise ValueError("the held-out texts for the fidelity check are empty")
    while len(ids) < positions:
        ids.extend(chunk)
    return ids[:positions]


def reference_logits(model_dir: Path, ids: list[int]) -> np.ndarray:
    """The merged Hugging Face model's logits at every position, in fp32 on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()  # type: ignore[no-untyped-call]
    with torch.no_grad():
        logits: torch.Tensor = model(torch.tensor([ids])).logits[0]
    return logits.float().numpy()


def llama_cpp_logits(
    gguf_path: Path, ids: list[int], threads: int | None = None, extra_buffer_types: bool = False
) -> np.ndarray:
    """llama.cpp's logits at every position (one batched decode, all outputs kept)."""
    from forge_gguf.runtime import LlamaCppModel

    with LlamaCppModel(
        gguf_path, n_ctx=len(ids), threads=threads, extra_buffer_types=extra_buffer_types
    ) as model:
        return model.logits(ids)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    log_probs: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return log_probs


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Top-1 agreement (plain, and with near-ties forgiven) and KL(reference ‖ candidate).

    ``top1_agreement_near_ties``: the share of positions where the candidate's top-1
    token has a reference log-probability within :data:`NEAR_TIE_NATS` of the
    reference's top-1 (equal tokens always count).
    """
    if reference.shape != candidate.shape:
        raise ValueError(f"logit shapes differ: {reference.shape} vs {candidate.shape}")
    log_p, log_q = _log_softmax(reference), _log_softmax(candidate)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)
    chosen = candidate.argmax(-1)
    top1 = float((reference.argmax(-1) == chosen).mean())
    rows = np.arange(len(chosen))
    near = log_p.max(axis=-1) - log_p[rows, chosen] <= NEAR_TIE_NATS
    return {
        "top1_agreement": round(top1, 6),
        "top1_agreement_near_ties": round(float(near.mean()), 6),
        "mean_kl": float(kl.mean()),
        "max_kl": float(kl.max()),
        "positions": float(reference.shape[0]),
    }


class FidelityChecker:
    """Checks exported files against the merged model: shared texts and reference logits."""

    def __init__(
        self,
        model_dir: Path,
        *,
        positions: int = 256,
        held_out: list[str] | None = None,
        min_top1: dict[str, float] | None = None,
        threads: int | None = None,
        extra_buffer_types: bool = False,
    ) -> None:
        from transformers import AutoConfig, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        context = int(AutoConfig.from_pretrained(model_dir).max_position_embeddings)
        self.texts = tokenization_texts(self.tokenizer, held_out)
        self.ids = held_out_ids(
            self.tokenizer, held_out or builtin_samples()["held_out_code"], min(positions, context)
        )
        self.reference = reference_logits(model_dir, self.ids)
        self.min_top1 = DEFAULT_MIN_TOP1 if min_top1 is None else min_top1
        self.threads = threads
        self.extra_buffer_types = extra_buffer_types

    def check(self, gguf_path: Path, quantization: str) -> tuple[dict[str, float], bool]:
        """The fidelity figures of one file and whether it passes its gate."""
        tokens = check_tokenization(gguf_path, self.tokenizer, self.texts)
        logits = llama_cpp_logits(gguf_path, self.ids, self.threads, self.extra_buffer_types)
        figures = compare_logits(self.reference, logits)
        figures.update(
            {
                "tokenization_identical": float(tokens.identical),
                "tokenization_texts": float(tokens.texts),
                "tokenization_mismatches": float(len(tokens.mismatches)),
            }
        )
        gate = self.min_top1.get(quantization)
        passed = tokens.identical
        if gate is not None:
            figures["min_top1"] = gate
            passed = passed and figures["top1_agreement_near_ties"] >= gate
        logger.info("fidelity of %s: %s (passed=%s)", gguf_path.name, figures, passed)
        return figures, passed
