"""RAFT synthesis on real repositories nobody here wrote: speed, and how findable oracles are.

Corpus: bench/.data/src (fetched by bench/mining.py: Django, requests, click,
rich, attrs, lodash, express, moment, async, commander and five Go libraries).
It mines the corpus once with the `mine` stage, then synthesizes each
repository (top-level folder) on its own, as a team would, with the default
`synth` settings, and prints per repository:

  units, examples, examples/s of the `synthesize` hook;
  retrieval quality: for each example's question alone, where BM25 over every
  unit of that repository ranks the oracle (or an exact duplicate of it):
  top-1 and top-5 rates; this is how often a retriever fed the question would
  have put the oracle in the context.

Also times rank-bm25's BM25Okapi against forge_raft's inverted index on the
largest repository (same scores, checked).

Run: python bench/synthesis.py [--data-dir bench/.data] [--repos Django-5.1.4 ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from forge_core.config import ForgeSettings
from forge_core.contracts import CodeUnit, Example, SynthesizeRequest, SynthesizeResult
from forge_core.files import read_jsonl
from forge_core.pipeline import Forge
from forge_core.plugins import PluginRegistry
from forge_raft.retrieval import BM25Index, tokenize, unit_tokens


def mine(source: Path, cache: Path) -> list[CodeUnit]:
    """Every unit of the corpus (parse cache kept under the data folder between runs)."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = ForgeSettings.model_validate(
            {"runs_dir": scratch, "mine": {"workers": 2, "cache_dir": str(cache)}}
        )
        forge = Forge(settings, Path(scratch) / "run", registry=PluginRegistry())
        forge.mine(source)
        return read_jsonl(Path(scratch) / "run" / "mine" / "units.jsonl", CodeUnit)


def question_of(example: Example) -> str:
    """The question of an example (the user turn after its documents)."""
    return example.messages[1].content.rsplit("\nQuestion: ", 1)[-1]


def retrieval_ranks(units: list[CodeUnit], examples: list[Example]) -> list[int | None]:
    """For each example, the rank BM25 gives its oracle (or a duplicate) for the question."""
    index = BM25Index([unit_tokens(u) for u in units])
    position = {u.id: i for i, u in enumerate(units)}
    by_hash: dict[str, set[int]] = defaultdict(set)
    for i, unit in enumerate(units):
        by_hash[unit.content_hash].add(i)
    ranks = []
    for example in examples:
        oracle = position[example.oracle_id]
        targets = by_hash[units[oracle].content_hash] | {oracle}
        ranks.append(index.rank_of(tokenize(question_of(example)), targets))
    return ranks


def compare_rank_bm25(units: list[CodeUnit], examples: list[Example], queries: int = 20) -> str:
    """ms/query of rank-bm25's BM25Okapi and of our index, on the same questions."""
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        return "rank-bm25 is not installed: pip install -e 'plugins/forge_raft[test]'"

    corpus = [unit_tokens(u) for u in units]
    asked = [tokenize(question_of(e)) for e in examples[:queries]]
    started = time.perf_counter()
    ours = BM25Index(corpus)
    built = time.perf_counter() - started
    started = time.perf_counter()
    mine_scores = [ours.scores(q) for q in asked]
    ours_ms = (time.perf_counter() - started) * 1000 / len(asked)
    reference = BM25Okapi(corpus)
    started = time.perf_counter()
    their_scores = [reference.get_scores(q) for q in asked]
    theirs_ms = (time.perf_counter() - started) * 1000 / len(asked)
    same = all(np.allclose(a, b) for a, b in zip(mine_scores, their_scores, strict=True))
    return (
        f"BM25 on {len(units)} units: rank-bm25 BM25Okapi {theirs_ms:.1f} ms/query, "
        f"forge_raft index {ours_ms:.2f} ms/query (built in {built:.1f} s); "
        f"same scores: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    parser.add_argument("--repos", nargs="*", default=None, help="top-level folders to use")
    args = parser.parse_args()
    source = args.data_dir / "src"
    if not source.is_dir():
        raise SystemExit(f"{source} is missing: run python bench/mining.py first")
    started = time.perf_counter()
    units = mine(source, args.data_dir / "parse-cache")
    print(f"mined {len(units)} units from {source} in {time.perf_counter() - started:.1f} s")
    by_repo: dict[str, list[CodeUnit]] = defaultdict(list)
    for unit in units:
        by_repo[unit.path.split("/", 1)[0]].append(unit)
    registry = PluginRegistry()
    header = f"{'repository':<48}{'units':>7}{'examples':>9}{'ex/s':>8}{'top-1':>7}{'top-5':>7}"
    print(header)
    totals: Counter[str] = Counter()
    all_ranks: list[int | None] = []
    by_type: dict[str, list[int | None]] = defaultdict(list)
    seconds_total = 0.0
    biggest: tuple[list[CodeUnit], list[Example]] = ([], [])
    for repo in sorted(args.repos or by_repo):
        repo_units = by_repo[repo]
        started = time.perf_counter()
        result = SynthesizeResult.model_validate(
            registry.call("synthesize", "raft", SynthesizeRequest(units=repo_units, seed=0))
        )
        seconds = time.perf_counter() - started
        seconds_total += seconds
        totals.update(result.stats)
        ranks = retrieval_ranks(repo_units, result.examples)
        all_ranks += ranks
        for example, rank in zip(result.examples, ranks, strict=True):
            by_type[example.question_type].append(rank)
        if len(repo_units) > len(biggest[0]):
            biggest = (repo_units, result.examples)
        top1 = sum(r == 1 for r in ranks) / max(len(ranks), 1)
        top5 = sum(r is not None and r <= 5 for r in ranks) / max(len(ranks), 1)
        rate = len(result.examples) / seconds
        print(
            f"{repo:<48}{len(repo_units):>7}{len(result.examples):>9}{rate:>8.0f}"
            f"{top1:>7.1%}{top5:>7.1%}"
        )
    examples = sum(len(v) for v in by_type.values())
    top1 = sum(r == 1 for r in all_ranks) / max(len(all_ranks), 1)
    top5 = sum(r is not None and r <= 5 for r in all_ranks) / max(len(all_ranks), 1)
    print(
        f"{'all':<48}{totals['units']:>7}{examples:>9}{examples / seconds_total:>8.0f}"
        f"{top1:>7.1%}{top5:>7.1%}"
    )
    print("\nby question type: examples, top-1, top-5")
    for name, ranks in sorted(by_type.items()):
        t1 = sum(r == 1 for r in ranks) / len(ranks)
        t5 = sum(r is not None and r <= 5 for r in ranks) / len(ranks)
        print(f"  {name:<12}{len(ranks):>8}{t1:>8.1%}{t5:>8.1%}")
    print("\nstats:", dict(sorted(totals.items())))
    print(compare_rank_bm25(*biggest))


if __name__ == "__main__":
    main()
