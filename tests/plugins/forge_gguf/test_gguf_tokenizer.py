"""transformers and llama.cpp tokenise alike: Llama/GPT-2 style, Qwen2 style, tinycoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
llama_cpp = pytest.importorskip("llama_cpp")

from gguf_helpers import QWEN2_PATTERN  # noqa: E402

from forge_gguf.convert import convert  # noqa: E402
from forge_gguf.fidelity import check_tokenization, tokenization_texts  # noqa: E402
from forge_gguf.vocab import (  # noqa: E402
    UnsupportedTokenizer,
    detect_pre_tokenizer,
    end_of_turn_token,
)

#: More texts than the packaged samples: edge cases of the pre-tokenizer regexes.
EXTRA_TEXTS = [
    "x\n\n\ny",
    "a \nb",
    " \n \n",
    "foo  bar   baz",
    "\t\tdef f():\n\t\t\tpass",
    "it's IT'S it'S you're we'd they'll",
    "123 4567 89012345",
    "a1b2c3 __init__ self.x_y",
    "😀😃😄😁 ok",
    "ß ẞ ǅ ﬁ",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>more<|endoftext|>",
    "<|im_start|",  # a prefix of a special token is plain text
    "  <|im_end|>  ",
    "\u00a0non-breaking\u2003em space",
    "mixed\r\n\r\nline endings\n",
]


def gguf_tokenizer_matches(model_dir: Path, out: Path) -> None:
    """Convert ``model_dir`` and assert llama.cpp tokenises every sample like transformers."""
    from transformers import AutoTokenizer

    path = convert(model_dir, out).path
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = tokenization_texts(tokenizer, EXTRA_TEXTS)
    assert len(texts) > 40
    report = check_tokenization(path, tokenizer, texts)
    assert report.mismatches == []
    assert report.special_insertion_ok
    assert report.identical


def test_gpt2_style_tokenizer_matches(tiny_llama: Path, tmp_path: Path) -> None:
    gguf_tokenizer_matches(tiny_llama, tmp_path / "llama.gguf")


def test_qwen2_style_tokenizer_matches(tiny_qwen2: Path, tmp_path: Path) -> None:
    gguf_tokenizer_matches(tiny_qwen2, tmp_path / "qwen2.gguf")


def test_tinycoder_tokenizer_matches(tmp_path: Path) -> None:
    tinycoder = pytest.importorskip("forge_tinycoder.plugin")
    model_dir = Path(tinycoder.MODEL_DIR)
    if not (model_dir / "model.safetensors").is_file():
        pytest.skip(f"tinycoder's model folder {model_dir} has no weights yet")
    gguf_tokenizer_matches(model_dir, tmp_path / "tinycoder.gguf")
    reader = gguf.GGUFReader(tmp_path / "tinycoder.gguf")
    field = reader.fields["tokenizer.ggml.pre"]
    assert bytes(field.parts[field.data[0]]).decode() == "gpt-2"
    eos = reader.fields["tokenizer.ggml.eos_token_id"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert int(eos.parts[eos.data[0]][0]) == tokenizer.convert_tokens_to_ids("<|end|>")


def test_gpt2_name_is_the_gpt2_regex_and_default_is_not(tiny_llama: Path, tmp_path: Path) -> None:
    """Why ``gpt-2`` and not ``default``: llama.cpp's default regex splits code differently."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    texts = tokenization_texts(tokenizer, EXTRA_TEXTS)
    path = convert(tiny_llama, tmp_path / "default.gguf", pre_tokenizer="default").path
    assert check_tokenization(path, tokenizer, texts).mismatches


def test_pre_tokenizer_detection() -> None:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    assert detect_pre_tokenizer(byte_level) == "gpt-2"
    qwen = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated"},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
        ],
    }
    assert detect_pre_tokenizer(qwen) == "qwen2"
    unknown = json.loads(json.dumps(qwen))
    unknown["pretokenizers"][0]["pattern"]["Regex"] = r"\w+"
    with pytest.raises(UnsupportedTokenizer, match=r"export\.pre_tokenizer"):
        detect_pre_tokenizer(unknown)
    with pytest.raises(UnsupportedTokenizer, match="add_prefix_space"):
        detect_pre_tokenizer({**byte_level, "add_prefix_space": True})
    with pytest.raises(UnsupportedTokenizer):
        detect_pre_tokenizer({"type": "Metaspace"})


def test_end_of_turn_comes_from_the_chat_template(tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    assert tokenizer.eos_token == "<|endoftext|>"
    assert end_of_turn_token(tokenizer) == "<|im_end|>"
