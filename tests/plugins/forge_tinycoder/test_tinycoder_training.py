"""The training script's parts, on tiny inputs: corpus rules, tokenizer, schedule, resume, eval."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from forge_tinycoder.corpus import is_heldout, is_minified, load_sources
from forge_tinycoder.evaluate import cut_function, dedent, function_prompts, parses
from forge_tinycoder.tokenizer import SPECIAL_TOKENS, parse_chat

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

SOURCE = '''
class Box:
    def get(self, key, default=None):
        """Return the value for key, or default."""
        if key in self.items:
            return self.items[key]
        return default


def total(values):
    """Sum the values."""
    return sum(values)


def nodoc(x):
    return x
'''


def test_heldout_is_deterministic_and_about_three_percent() -> None:
    ids = [f"src/file_{i}.py" for i in range(20_000)]
    held = [i for i in ids if is_heldout(i, 0.03)]
    assert held == [i for i in ids if is_heldout(i, 0.03)]
    assert 0.025 < len(held) / len(ids) < 0.035


def test_sources_are_pinned_and_permissive() -> None:
    config = load_sources()
    for source in config["sources"]:
        assert source["kind"] in {"stdlib", "apt", "npm"}
        if source["kind"] == "npm":
            assert "@" in source["spec"]
        else:
            assert source["licence"] in config["allowed_licences"]


def test_minified_javascript_is_recognised() -> None:
    assert is_minified("var a=1;", "lodash.min.js")
    assert is_minified("x" * 2000, "bundle.js")
    assert not is_minified("function f() {\n  return 1;\n}\n", "index.js")


def test_trained_tokenizer_round_trips_and_saves_the_template(tmp_path: Path) -> None:
    from forge_tinycoder.tokenizer import save_tokenizer, train_tokenizer, wrap_tokenizer

    texts = [SOURCE, "package main\n\nfunc main() {\n\tprintln(1)\n}\n", "const f = () => 1;\n"]
    wrapped = wrap_tokenizer(train_tokenizer(texts * 20, vocab_size=400))
    save_tokenizer(wrapped, tmp_path, 1024)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert "chat_template" in config
    assert not (tmp_path / "chat_template.jinja").exists()
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert loaded.convert_tokens_to_ids(SPECIAL_TOKENS) == list(range(len(SPECIAL_TOKENS)))
    for text in [*texts, "ünïcödé 🙂 \x00"]:
        assert loaded.decode(loaded(text, add_special_tokens=False)["input_ids"]) == text
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert parse_chat(loaded.apply_chat_template(messages, tokenize=False)) == messages


def test_learning_rate_warms_up_then_decays() -> None:
    from forge_tinycoder.loop import StageConfig, learning_rate

    config = StageConfig(name="t", peak_lr=1.0, budget_seconds=1.0, warmup_share=0.1)
    values = [learning_rate(config, p / 100) for p in range(101)]
    assert values[0] < values[5] < values[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(values[10:]))
    assert values[-1] == pytest.approx(0.1)


def test_batches_are_reproducible_per_step() -> None:
    from forge_tinycoder.data import sample_batch

    streams = {"python": np.arange(5000, dtype=np.uint16), "go": np.arange(3000, dtype=np.uint16)}
    first = sample_batch(streams, 4, 65, seed=1, step=7)
    assert first.shape == (4, 65)
    assert torch.equal(first, sample_batch(streams, 4, 65, seed=1, step=7))
    assert not torch.equal(first, sample_batch(streams, 4, 65, seed=1, step=8))


def _tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config)


def test_stage_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    from forge_tinycoder.data import sample_batch
    from forge_tinycoder.loop import StageConfig, read_history, run_stage
    from forge_tinycoder.pretrain import causal_loss

    streams = {"python": np.random.default_rng(0).integers(0, 64, 4000).astype(np.uint16)}

    def batch(step: int, progress: float) -> dict:
        return {"windows": sample_batch(streams, 2, 17, seed=0, step=step)}

    def run(steps: int) -> dict:
        config = StageConfig(
            name="t", peak_lr=1e-2, budget_seconds=1e9, max_steps=steps, log_every_steps=1
        )
        return run_stage(
            _tiny_model(),
            config,
            tmp_path,
            torch.device("cpu"),
            batch,
            causal_loss,
            lambda model: {"valid_loss": 1.0},
        )

    first = run(3)
    assert first["steps"] == 3 and (tmp_path / "done.json").is_file()
    assert run(99)["steps"] == 3  # a finished stage is not run again
    (tmp_path / "done.json").unlink()
    assert run(5)["steps"] == 5  # an unfinished one continues from step 3
    steps = [h["step"] for h in read_history(tmp_path) if "loss" in h]
    assert steps == [1, 2, 3, 4, 5]


def test_function_prompts_stop_after_the_docstring() -> None:
    prompts = function_prompts([SOURCE], count=10, seed=0)
    assert {p["prompt"].splitlines()[0] for p in prompts} == {
        "    def get(self, key, default=None):",
        "def total(values):",
    }
    for item in prompts:
        assert item["prompt"].endswith('"""')
        assert item["reference"].startswith(item["prompt"])
        assert parses(dedent(item["reference"], item["indent"]))


def test_completion_is_cut_where_the_function_ends() -> None:
    body, ended = cut_function("\n    return 1\n\ndef other():\n    pass\n")
    assert (body, ended) == ("\n    return 1\n\n", True)
    body, ended = cut_function("\n        return 1\n    def other(self):\n", indent="    ")
    assert (body, ended) == ("\n        return 1\n", True)
    body, ended = cut_function("\n    x = 1\n    return (x +")
    assert (body, ended) == ("\n    x = 1\n", False)
    assert parses('def f():\n    """Doc."""\n' + "    return 1\n")
    assert not parses("def f(:\n")


def test_evaluation_measures_run_on_a_tiny_model() -> None:
    import argparse
    import math

    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from forge_core.contracts import ChatMessage, Example
    from forge_tinycoder.evaluate import answer_questions, complete_functions, perplexity
    from forge_tinycoder.plugin import MODEL_DIR

    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        figures = perplexity(model, tokenizer, [SOURCE, SOURCE * 5], max_tokens=10_000)
        assert figures["bytes"] == len(SOURCE) * 6
        assert math.isfinite(figures["perplexity"]) and figures["bits_per_byte"] > 0
        args = argparse.Namespace(seed=0, temperature=0.4, max_new_tokens=6)
        done = complete_functions(model, tokenizer, function_prompts([SOURCE], 2, 0), args)
        assert done["count"] == 2 and 0.0 <= done["parse_rate"] <= 1.0
        example = Example(
            id="e1",
            messages=[
                ChatMessage(role="user", content="What does total return?"),
                ChatMessage(role="assistant", content="It sums.\n<ANSWER>: the sum"),
            ],
            question_type="purpose",
            language="python",
            path="a.py",
            oracle_id="a.py::total",
            final_answer="the sum",
        )
        raft = answer_questions(model, tokenizer, [example], count=5, seed=0)
        assert raft["count"] == 1 and raft["exact_match"] in (0.0, 1.0)


def test_instruction_stage_trains_and_packs_each_epoch_once(tmp_path: Path, monkeypatch) -> None:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    import forge_torch.data as torch_data
    from forge_core.contracts import ChatMessage, Example
    from forge_tinycoder.instruct import instruct
    from forge_tinycoder.plugin import MODEL_DIR
    from forge_tinycoder.presets import PRESETS

    packed: list[int] = []
    original = torch_data.epoch_rows

    def counting(examples: list, capacity: int, packing: bool, seed: int, epoch: int) -> list:
        packed.append(epoch)
        return original(examples, capacity, packing, seed, epoch)

    monkeypatch.setattr(torch_data, "epoch_rows", counting)
    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    examples = [
        Example(
            id=f"e{i}",
            messages=[
                ChatMessage(role="user", content=f"What does f{i} return? " * 20),
                ChatMessage(role="assistant", content=f"It returns {i}.\n<ANSWER>: `{i}`"),
            ],
            question_type="purpose",
            language="python",
            path="a.py",
            oracle_id=f"a.py::f{i}",
            final_answer=f"`{i}`",
        )
        for i in range(12)
    ]
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    )
    streams = {"python": np.random.default_rng(0).integers(0, 200, 5000).astype(np.uint16)}
    summary = instruct(
        LlamaForCausalLM(config),
        tokenizer,
        PRESETS["tiny"],
        examples,
        examples[:2],
        streams,
        tmp_path,
        torch.device("cpu"),
        budget_seconds=1e9,
        max_steps=8,
        seed=0,
    )
    assert summary["steps"] == 8 and summary["train_examples"] == 12
    assert "valid_answer_loss" in summary["final"]
    assert len(packed) == len(set(packed))  # each epoch is packed once


def test_from_model_loads_a_saved_tinycoder_and_refuses_another_shape(tmp_path: Path) -> None:
    from dataclasses import replace

    from transformers import AutoTokenizer

    from forge_tinycoder.plugin import MODEL_DIR
    from forge_tinycoder.presets import PRESETS, build_model
    from forge_tinycoder.train import load_saved, save_model

    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    preset = replace(PRESETS["tiny"], vocab=len(tokenizer))
    torch.manual_seed(0)
    model = build_model(preset, {"eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id})
    info = {"preset": preset.as_json(), "pretrain": {"steps": 3, "tokens": 12}}
    folder = save_model(model, tokenizer, tmp_path / "model", info)

    _, loaded, record = load_saved(folder, preset)
    assert record["pretrain"] == {"steps": 3, "tokens": 12}
    assert next(loaded.parameters()).dtype == torch.float32  # trained on in full precision
    saved = {k: v.to(torch.float32) for k, v in model.state_dict().items()}  # saved as bf16
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    with pytest.raises(SystemExit, match=r"hidden.*pass the --size"):
        load_saved(folder, replace(preset, hidden=preset.hidden * 2))
    with pytest.raises(SystemExit, match=r"no training\.json"):
        load_saved(tmp_path, preset)
