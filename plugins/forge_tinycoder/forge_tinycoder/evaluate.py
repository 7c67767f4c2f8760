"""Held-out figures of a tinycoder model: ``python -m forge_tinycoder.evaluate MODEL_DIR``.

Three measures, on files the model never trained on (the corpus's held-out set):

* perplexity (and bits per byte) per language on the held-out files;
* the share of sampled completions of held-out Python function headers (the
  ``def`` line and its docstring, up to the closing quotes) that parse with
  :mod:`ast` (dedented to the ``def``), the completion cut
  where the function ends (the first line back at the ``def``'s indentation) or,
  when the token budget runs out first, after its last complete line;
* exact match of the final answer (the text after ``<ANSWER>:``) on held-out RAFT
  questions whose context holds the oracle document (greedy decoding).

It writes the figures as JSON (default ``MODEL_DIR/evaluation.json``) and prints a table.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_core.contracts import Example


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m forge_tinycoder.evaluate", description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--cache", type=Path, default=None, help="corpus download cache")
    parser.add_argument("--ppl-tokens", type=int, default=100_000, help="per language")
    parser.add_argument("--completions", type=int, default=100)
    parser.add_argument("--raft-questions", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.4)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- perplexity


def perplexity(model: Any, tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, float]:
    """Token-weighted perplexity and bits per byte over whole files (until ``max_tokens``)."""
    import torch
    import torch.nn.functional as F

    width = model.config.max_position_embeddings
    nll, tokens, size = 0.0, 0, 0
    for text in texts:
        if tokens >= max_tokens:
            break
        ids = [tokenizer.pad_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
        for start in range(0, len(ids) - 1, width):
            window = torch.tensor([ids[start : start + width + 1]])
            logits = model(input_ids=window[:, :-1]).logits[0].float()
            nll += float(F.cross_entropy(logits, window[0, 1:], reduction="sum"))
            tokens += window.size(1) - 1
        size += len(text.encode("utf-8"))
    return {
        "tokens": tokens,
        "bytes": size,
        "perplexity": math.exp(nll / max(tokens, 1)),
        "bits_per_byte": nll / math.log(2) / max(size, 1),
    }


# --------------------------------------------------------------------------- completions


def function_prompts(texts: list[str], count: int, seed: int) -> list[dict[str, str]]:
    """``count`` held-out functions with a docstring: their header+docstring and the rest."""
    found = []
    for text in texts:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = text.splitlines(keepends=True)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if ast.get_docstring(node) is None or len(node.body) < 2:
                continue
            docstring_end = node.body[0].end_lineno or node.lineno
            indent = lines[node.lineno - 1][: node.col_offset]
            # The header keeps its indentation in the file (a method stays a method). It
            # stops at the closing quotes, not after the newline: a byte-level BPE merges
            # a newline with the next line's indentation, so a prompt ending in a bare
            # "\n" token would tell the model that no indentation follows.
            prompt = "".join(lines[node.lineno - 1 : docstring_end]).removesuffix("\n")
            whole = "".join(lines[node.lineno - 1 : node.end_lineno])
            if prompt.endswith(('"""', "'''", '"', "'")) and parses(dedent(whole, indent)):
                found.append({"prompt": prompt, "indent": indent, "reference": whole})
    random.Random(seed).shuffle(found)
    return found[:count]


def dedent(source: str, indent: str) -> str:
    """Remove the ``def`` line's indentation from every line that has it."""
    return "".join(line.removeprefix(indent) for line in source.splitlines(keepends=True))


def cut_function(completion: str, indent: str = "") -> tuple[str, bool]:
    """The completion up to the end of the function, and whether the function ended.

    The function ends at the first non-blank line (after the docstring's line)
    indented no deeper than the ``def``; without one, only complete lines are kept.
    """
    lines = completion.splitlines(keepends=True)
    kept: list[str] = []
    for index, line in enumerate(lines):
        depth = len(line) - len(line.lstrip(" \t"))
        if index > 0 and line.strip() and depth <= len(indent):
            return "".join(kept), True
        kept.append(line)
    if lines and not lines[-1].endswith("\n"):
        kept = kept[:-1]
    return "".join(kept), False


def parses(source: str) -> bool:
    """Whether the source parses as Python."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def complete_functions(
    model: Any, tokenizer: Any, prompts: list[dict[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    """Sample one completion per prompt; the share that parses (and samples)."""
    import torch

    parsed = ended = adds_code = 0
    samples = []
    for index, item in enumerate(prompts):
        torch.manual_seed(args.seed * 100_003 + index)
        ids = [
            tokenizer.pad_token_id,
            *tokenizer(item["prompt"], add_special_tokens=False)["input_ids"],
        ]
        output = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=True,
            temperature=args.temperature,
            top_p=0.95,
            max_new_tokens=args.max_new_tokens,
            eos_token_id=[tokenizer.pad_token_id, tokenizer.eos_token_id],
            pad_token_id=tokenizer.pad_token_id,
        )
        completion = tokenizer.decode(output[0, len(ids) :], skip_special_tokens=True)
        body, closed = cut_function(completion, item["indent"])
        has_code = bool(body.strip())
        ok = has_code and parses(dedent(item["prompt"] + body, item["indent"]))
        parsed += ok
        ended += closed
        adds_code += has_code
        samples.append({"prompt": item["prompt"], "completion": body, "parses": ok})
    total = max(len(prompts), 1)
    return {
        "count": len(prompts),
        "parse_rate": parsed / total,
        "ended_rate": ended / total,
        "adds_code_rate": adds_code / total,
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "samples": samples,
    }


# --------------------------------------------------------------------------- RAFT


def _id(example: Example) -> str:
    return example.id


def answer_questions(
    model: Any, tokenizer: Any, examples: list[Example], count: int, seed: int
) -> dict[str, Any]:
    """Greedy answers to a sample of held-out RAFT questions (oracle in context): exact match."""
    import torch

    from forge_raft.answers import final_answer

    width = model.config.max_position_embeddings
    eligible = sorted((e for e in examples if e.oracle_in_context and e.final_answer), key=_id)
    chosen = random.Random(seed).sample(eligible, min(count, len(eligible)))
    hits, skipped = 0, 0
    by_type: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    totals: Counter[str] = Counter()
    for example in chosen:
        messages = [m.model_dump() for m in example.messages[:-1]]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        budget = min(256, width - len(ids))
        if budget < 32:
            skipped += 1
            continue
        output = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=budget,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        answer = tokenizer.decode(output[0, len(ids) :], skip_special_tokens=True)
        predicted = final_answer(answer)
        hit = predicted is not None and predicted.strip() == example.final_answer.strip()
        hits += hit
        totals[example.question_type] += 1
        by_type[example.question_type] += hit
        if len(samples) < 12:
            question = example.messages[-2].content.rsplit("Question:", 1)[-1].strip()
            samples.append(
                {
                    "question_type": example.question_type,
                    "question": question[:300],
                    "reference": example.final_answer,
                    "answer": answer,
                    "exact_match": hit,
                }
            )
    scored = sum(totals.values())
    return {
        "count": scored,
        "skipped_too_long": skipped,
        "exact_match": hits / max(scored, 1),
        "by_question_type": {t: by_type[t] / n for t, n in sorted(totals.items())},
        "samples": samples,
    }


# --------------------------------------------------------------------------- main


def print_table(figures: dict[str, Any]) -> None:
    """A plain table of the headline figures."""
    print(f"\n{'measure':<44} {'value':>12}")
    print("-" * 57)
    for language, row in figures["perplexity"].items():
        print(f"{'perplexity ' + language:<44} {row['perplexity']:>12.2f}")
        print(f"{'bits per byte ' + language:<44} {row['bits_per_byte']:>12.3f}")
    done = figures["completions"]
    print(f"{'python completions that parse':<44} {done['parse_rate']:>11.0%}")
    raft = figures["raft"]
    print(f"{'RAFT exact match (oracle in context)':<44} {raft['exact_match']:>11.0%}")
    print(f"{'(questions scored)':<44} {raft['count']:>12}")


def main(argv: list[str] | None = None) -> int:
    """Compute the held-out figures of the model in ``MODEL_DIR``."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from forge_core.plugins import PluginRegistry
    from forge_tinycoder.corpus import build_corpus
    from forge_tinycoder.instruct import heldout_raft_examples
    from forge_tinycoder.presets import PRESETS

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(str(args.model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(args.model_dir), dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    info_path = args.model_dir / "training.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    preset = PRESETS[info.get("size", "small")]
    seed = info.get("seed", args.seed)
    corpus = build_corpus(args.cache)
    recorded = set(info.get("corpus", {}).get("heldout", []))
    if recorded and recorded != set(corpus.manifest["heldout"]):
        print("warning: the held-out files differ from those recorded at training time")

    def heldout_texts(language: str) -> list[str]:
        files = sorted(corpus.select(language, heldout=True), key=lambda f: f.id)
        random.Random(f"eval-{language}").shuffle(files)
        return [f.read_text() for f in files]

    figures: dict[str, Any] = {"model_dir": str(args.model_dir), "perplexity": {}}
    with torch.no_grad():
        for language in corpus.languages:
            texts = heldout_texts(language)
            figures["perplexity"][language] = perplexity(model, tokenizer, texts, args.ppl_tokens)
        prompts = function_prompts(heldout_texts("python"), args.completions, args.seed)
        figures["completions"] = complete_functions(model, tokenizer, prompts, args)
        examples = heldout_raft_examples(corpus, preset, seed, PluginRegistry())
        figures["raft"] = answer_questions(
            model, tokenizer, examples, args.raft_questions, args.seed
        )
    figures["seconds"] = time.time() - started
    target = args.out or args.model_dir / "evaluation.json"
    target.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print_table(figures)
    print(f"\nwritten to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
