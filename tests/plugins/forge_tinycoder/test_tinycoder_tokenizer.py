"""The shipped tokenizer: byte-level, exact round trips, no unknown tokens."""

from __future__ import annotations

import json
import random

import pytest

from forge_tinycoder.corpus import locate
from forge_tinycoder.plugin import MODEL_DIR

transformers = pytest.importorskip("transformers")

ODD_TEXTS = [
    "",
    "\x00\x01\x02\x7f\x1b[31mred\x1b[0m",
    "é漢字🙂 naïve café — “quotes” ‘single’ …",
    "👩‍👩‍👧‍👦 family ZWJ, e\u0301 combining, \ufeffBOM, \u200bzero-width",
    "\r\n\r\n\t\t  \t\n" + " " * 300 + "\n",
    "def f(x):\n\treturn x  # tab\n",
    "   leading spaces and trailing   ",
    "\u0000\uffff\U0010ffff",
    "<|end|> <|user|> special tokens written out in code",
    "".join(chr(c) for c in range(0x20, 0x250)),
]


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(MODEL_DIR))


def heldout_sample(language: str, count: int = 5) -> list[str]:
    """A few held-out files of ``language`` (from the corpus recorded beside the model)."""
    info = json.loads((MODEL_DIR / "training.json").read_text())
    ids = [i for i in info["corpus"]["heldout"] if _language_of(i, info) == language]
    random.Random(0).shuffle(ids)
    paths = [p for p in (locate(i) for i in ids) if p is not None][:count]
    if not paths:
        pytest.skip(f"no held-out {language} file is in the corpus cache on this machine")
    return [p.read_text(encoding="utf-8") for p in paths]


def _language_of(file_id: str, info: dict) -> str:
    source = file_id.split("/", 1)[0]
    return next(s["language"] for s in info["corpus"]["sources"] if s["name"] == source)


def test_pretokenizer_is_gpt2_byte_level() -> None:
    spec = json.loads((MODEL_DIR / "tokenizer.json").read_text())
    pre = spec["pre_tokenizer"]
    assert pre["type"] == "ByteLevel"
    assert pre["add_prefix_space"] is False
    assert pre["use_regex"] is True
    assert spec["decoder"]["type"] == "ByteLevel"
    assert spec["model"]["type"] == "BPE"
    assert spec["model"].get("unk_token") is None
    assert spec["normalizer"] is None


def test_byte_alphabet_is_in_the_vocabulary(tokenizer) -> None:
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = tokenizer.get_vocab()
    assert all(symbol in vocab for symbol in ByteLevel.alphabet())


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_odd_text_round_trips(tokenizer, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids


@pytest.mark.parametrize("language", ["python", "go", "javascript"])
def test_heldout_files_round_trip(tokenizer, language: str) -> None:
    vocab_size = json.loads((MODEL_DIR / "config.json").read_text())["vocab_size"]
    for text in heldout_sample(language):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert max(ids) < vocab_size
        assert tokenizer.decode(ids) == text
