"""The ``validate`` stage's work: checks, deduplication, balance, scores and splits.

Order: every check contributed through ``register_validation_checks`` runs on
every example (the first failing check names the rejection reason); exact
duplicates, then near duplicates (MinHash LSH over word shingles) are removed;
over-represented question types are capped; each example gets a quality score;
then the examples are split into train/valid/test **by file** (default: no file
has examples in two splits, so test questions are about code never seen in
training) or **randomly by oracle unit** (a unit's examples stay together).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.config import ValidationSettings
from forge_core.contracts import CodeUnit, Example, Split, content_hash

QUOTE_RE = re.compile(r"##begin_quote##(.*?)##end_quote##", re.DOTALL)
ANSWER_MARK = "<ANSWER>:"
#: The final-answer line as the RAFT synthesizer writes it (``forge_raft.answers``).
ANSWER_PREFIX = f"{ANSWER_MARK} "
ANSWER_LINE = re.compile(r"(?:^|\n)" + re.escape(ANSWER_PREFIX))
#: A looser line a model may write instead: indented, or without the space.
LOOSE_ANSWER_LINE = re.compile(r"(?:^|\n)[ \t]*" + re.escape(ANSWER_MARK))
SPLITS: tuple[Split, ...] = ("train", "valid", "test")


@dataclass
class ValidationContext:
    """What checks may consult besides the example."""

    units: dict[str, CodeUnit]
    settings: ValidationSettings
    count_tokens: Callable[[str], int]


@dataclass(frozen=True)
class ValidationCheck:
    """A named check: returns the reason to reject an example, or None to keep it."""

    name: str
    description: str
    check: Callable[[Example, ValidationContext], str | None]


@dataclass
class ValidationReport:
    """Counts of what was kept and rejected, by reason."""

    received: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    question_types_before: Counter[str] = field(default_factory=Counter)
    question_types: Counter[str] = field(default_factory=Counter)
    splits: dict[str, int] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    tokenizer: str = "estimate (characters / 4)"
    warnings: list[str] = field(default_factory=list)
    """What the user should know before training on these splits (an empty test split)."""

    def as_json(self) -> dict[str, Any]:
        """The ``validate/report.json`` shape."""
        histogram = Counter(min(int(score * 10), 9) for score in self.scores)
        return {
            "received": self.received,
            "kept": self.kept,
            "rejected": dict(sorted(self.rejected.items())),
            "question_types_before": dict(sorted(self.question_types_before.items())),
            "question_types": dict(sorted(self.question_types.items())),
            "splits": self.splits,
            "checks": self.checks,
            "tokenizer": self.tokenizer,
            "warnings": self.warnings,
            "score_histogram": {
                f"{b / 10:.1f}-{(b + 1) / 10:.1f}": histogram[b] for b in range(10)
            },
        }


# --------------------------------------------------------------------------- helpers


def quotes(text: str) -> list[str]:
    """The spans quoted between ``##begin_quote##`` and ``##end_quote##``."""
    return [match.strip() for match in QUOTE_RE.findall(text)]


def final_answer(text: str) -> str | None:
    """The final answer: the text after the first line that starts with ``<ANSWER>: ``.

    That is the RAFT synthesizer's layout (``forge_raft.answers.final_answer``): an
    ``<ANSWER>:`` inside quoted code or mid-line does not end the reasoning. For a
    model's output that strays from the layout, the text after the first line that
    starts with ``<ANSWER>:`` after indentation or without the space, else after the
    last ``<ANSWER>:`` anywhere. Stripped; None when the text has no ``<ANSWER>:``.
    """
    for line in (ANSWER_LINE, LOOSE_ANSWER_LINE):
        match = line.search(text)
        if match:
            return text[match.end() :].strip()
    _, mark, answer = text.rpartition(ANSWER_MARK)
    return answer.strip() if mark else None


class TokenCounter:
    """Counts tokens with a ``tokenizers`` tokenizer (or estimates them), remembering each
    text's count: the same prompt recurs in every example."""

    def __init__(self, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer
        self._counts: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        """Tokens of ``text`` (without special tokens)."""
        if self.tokenizer is None:
            return max(1, len(text) // 4)
        count = self._counts.get(text)
        if count is None:
            count = self._counts[text] = len(
                self.tokenizer.encode(text, add_special_tokens=False).ids
            )
        return count

    def prime(self, texts: Iterable[str]) -> None:
        """Count ``texts`` ahead, as one batch (the tokenizer spreads it over the cores)."""
        if self.tokenizer is None:
            return
        todo = list(dict.fromkeys(t for t in texts if t not in self._counts))
        for start in range(0, len(todo), PRIME_BATCH):
            batch = todo[start : start + PRIME_BATCH]
            encodings = self.tokenizer.encode_batch(batch, add_special_tokens=False)
            self._counts.update(zip(batch, (len(e.ids) for e in encodings), strict=True))


#: Texts tokenised per batch by :meth:`TokenCounter.prime`.
PRIME_BATCH = 512


def token_counter(tokenizer_file: Path | None) -> tuple[TokenCounter, str]:
    """Count tokens with the target model's ``tokenizer.json`` when available."""
    if tokenizer_file is not None and tokenizer_file.is_file():
        try:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except (ImportError, Exception):
            pass
        else:
            return TokenCounter(tokenizer), str(tokenizer_file)
    return TokenCounter(), "estimate (characters / 4)"


def question_of(example: Example) -> str:
    """The question ``example`` asks, without its context documents when the synthesizer
    says which part that is (``Example.question``); otherwise its whole user turn."""
    if example.question:
        return example.question
    return example.messages[-2].content if len(example.messages) >= 2 else ""


def exact_key(example: Example) -> str:
    """Identity of an example's content: the question and the answer (context aside)."""
    text = f"{question_of(example).strip()}\x00{example.messages[-1].content.strip()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shingles(text: str, size: int = 5) -> set[str]:
    """Word ``size``-grams of ``text`` (the unit of near-duplicate comparison)."""
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def shingle_hashes(items: Iterable[str]) -> list[int]:
    """Each shingle's 32-bit hash, exactly datasketch's default ``sha1_hash32`` (the first
    four bytes of SHA-1, little-endian) without its two Python calls per shingle."""
    sha1 = hashlib.sha1
    from_bytes = int.from_bytes
    return [from_bytes(sha1(s.encode("utf-8")).digest()[:4], "little") for s in items]


def near_duplicates(examples: list[Example], threshold: float) -> set[int]:
    """Indexes of examples whose question and answer nearly copy an earlier example's: their
    word shingles' Jaccard similarity (estimated by MinHash) is at least ``threshold``."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    # One set of permutations for all (datasketch makes them anew for every MinHash),
    # and the shingles hashed in one comprehension (see shingle_hashes).
    template = MinHash(num_perm=64, seed=1)
    shared = {"permutations": template.permutations, "scheme": template.scheme}
    dropped: set[int] = set()
    inserted: dict[str, MinHash] = {}
    for index, example in enumerate(examples):
        # Context aside: RAFT examples about one unit share most of their documents, and
        # compared with them a question about its callers looks like one about its purpose.
        text = f"{question_of(example)}\n{example.messages[-1].content}"
        minhash = MinHash(num_perm=64, seed=1, hashfunc=int, **shared)
        minhash.update_batch(shingle_hashes(shingles(text)))
        # LSH only proposes candidates (some far below the threshold): each is confirmed
        # by its estimated similarity before the example is dropped.
        if any(minhash.jaccard(inserted[key]) >= threshold for key in lsh.query(minhash)):
            dropped.add(index)
            continue
        inserted[str(index)] = minhash
        lsh.insert(str(index), minhash)
    return dropped


def quality_score(example: Example, units: dict[str, CodeUnit]) -> float:
    """A 0–1 score: grounded quotes, a final answer, a documented oracle, a useful length."""
    answer = example.messages[-1].content
    unit = units.get(example.oracle_id)
    found = quotes(answer)
    score = 0.2
    if final_answer(answer):
        score += 0.2
    if not example.oracle_in_context or found:
        score += 0.2
    if unit is not None and unit.quality.has_doc:
        score += 0.2
    if 40 <= len(answer) <= 4000:
        score += 0.2
    return round(min(score, 1.0), 3)


def type_cap(counts: Counter[str], max_share: float) -> int | None:
    """The most examples any one question type may keep so that none holds more than
    ``max_share`` of what is kept; None when no type needs cutting.

    Every type above the cap is cut to it, the others keep all theirs, so a type's
    share is at most ``cap / kept(cap)``: the cap is the largest one where that is
    within the share. Cutting one type raises the others' shares, which a per-type
    limit misses (two dominant types would both stay above it). With fewer than
    ``ceil(1 / max_share)`` types no cut meets the share: the best possible is
    ``1 / types`` (every type cut to the smallest one's count, or one type kept whole).
    """
    if not counts:
        return None
    share = max(max_share, 1 / len(counts))

    def fits(cap: int) -> bool:
        kept = sum(min(n, cap) for n in counts.values())
        return cap <= share * kept * (1 + 1e-12)

    # cap / kept(cap) never falls as the cap grows (each step adds one example per type
    # still above it, and fewer types are), so the caps that fit run from 1 to the
    # largest: bisect for it.
    low, high = 1, max(counts.values())
    if fits(high):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def cap_question_types(examples: list[Example], max_share: float, seed: int) -> list[Example]:
    """Downsample question types so that none holds more than ``max_share`` of the examples.

    Each over-represented type keeps its best-scored examples (ties broken by a hash
    of the id and the seed), all cut to the same count (see :func:`type_cap`); with
    fewer than ``ceil(1 / max_share)`` types the share cannot be met, and each type
    is cut to at most ``1 / types`` instead. Keeps the examples' order.
    """
    cap = type_cap(Counter(e.question_type for e in examples), max_share)
    if cap is None:
        return examples
    by_type: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_type[example.question_type].append(example)
    keep: set[str] = set()
    for items in by_type.values():
        best = sorted(items, key=lambda e: (-(e.score or 0.0), split_rank(e.id, seed), e.id))
        keep.update(e.id for e in best[:cap])
    return [e for e in examples if e.id in keep]


def split_rank(group: str, seed: int) -> str:
    """Where a group (a file or a unit) stands in the split order: a hash of its name."""
    return content_hash(f"{seed}\0{group}")


def assign_splits(examples: list[Example], settings: ValidationSettings) -> None:
    """Set ``split`` on every example, grouping by file or by oracle unit.

    Groups are ordered by a hash of their name and the seed (not shuffled), the first
    ones going to test, the next to valid: adding or removing files then moves only
    the groups at the edges of the splits, so the test split of a model retrained on
    the changed repository holds almost nothing an earlier model trained on, and the
    gate can compare the two fairly (``eval.gate.reference = "deployed"``).
    """

    def group(example: Example) -> str:
        return example.path if settings.split_by == "file" else example.oracle_id

    groups = sorted({group(e) for e in examples}, key=lambda g: (split_rank(g, settings.seed), g))
    n_test = round(len(groups) * settings.test_fraction)
    n_valid = round(len(groups) * settings.valid_fraction)
    # With 2 groups or more, test gets at least one (eval has nothing to score without
    # it), valid too from 3; train keeps the rest, at least one group.
    if len(groups) >= 2 and settings.test_fraction > 0:
        n_test = max(n_test, 1)
    if len(groups) >= 3 and settings.valid_fraction > 0:
        n_valid = max(n_valid, 1)
    n_test = min(n_test, max(len(groups) - 1, 0))
    n_valid = min(n_valid, max(len(groups) - 1 - n_test, 0))
    split_of: dict[str, Split] = {}
    for index, name in enumerate(groups):
        split_of[name] = (
            "test" if index < n_test else "valid" if index < n_test + n_valid else "train"
        )
    for example in examples:
        example.split = split_of[group(example)]


# --------------------------------------------------------------------------- the stage


def validate_examples(
    examples: list[Example],
    context: ValidationContext,
    checks: list[ValidationCheck],
) -> tuple[dict[str, list[Example]], ValidationReport]:
    """Check, deduplicate, balance, score and split ``examples``."""
    settings = context.settings
    active = [c for c in checks if c.name not in settings.disabled_checks]
    report = ValidationReport(received=len(examples), checks=[c.name for c in active])
    kept: list[Example] = []
    seen: set[str] = set()
    for example in examples:
        reason = next((r for c in active if (r := c.check(example, context))), None)
        if reason is None:
            key = exact_key(example)
            reason = "exact duplicate" if key in seen else None
            seen.add(key)
        if reason is not None:
            report.rejected[reason] += 1
            continue
        kept.append(example)
    if settings.near_duplicate_threshold < 1.0 and kept:
        dropped = near_duplicates(kept, settings.near_duplicate_threshold)
        report.rejected["near duplicate"] += len(dropped)
        kept = [e for i, e in enumerate(kept) if i not in dropped]
    for example in kept:
        example.score = quality_score(example, context.units)
    low = [e for e in kept if (e.score or 0.0) < settings.min_score]
    report.rejected["quality score below validation.min_score"] += len(low)
    kept = [e for e in kept if (e.score or 0.0) >= settings.min_score]
    report.question_types_before.update(e.question_type for e in kept)
    balanced = cap_question_types(kept, settings.max_type_share, settings.seed)
    report.rejected["question type over validation.max_type_share"] += len(kept) - len(balanced)
    report.warnings = share_warnings(kept, balanced, settings)
    kept = balanced
    assign_splits(kept, settings)
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example in kept:
        splits[example.split or "train"].append(example)
    report.question_types.update(e.question_type for e in kept)
    report.kept = len(kept)
    report.splits = {name: len(items) for name, items in splits.items()}
    report.scores = [e.score or 0.0 for e in kept]
    report.rejected = Counter({k: v for k, v in report.rejected.items() if v})
    report.warnings += split_warnings(splits, settings)
    return splits, report


def split_warnings(splits: dict[str, list[Example]], settings: ValidationSettings) -> list[str]:
    """What to tell the user about the splits: an empty test split leaves eval nothing."""
    if splits["test"] or not splits["train"]:
        return []
    if settings.test_fraction == 0:
        why, advice = "validation.test_fraction is 0", "set it above 0"
    elif settings.split_by == "file":
        why = "every kept example is about one file, and a file's examples stay in one split"
        advice = "mine a repository with more files, or set validation.split_by = 'random'"
    else:
        why = "every kept example is about one unit, and a unit's examples stay in one split"
        advice = "synthesize examples about more units"
    return [
        f"the test split is empty: {why}; eval will have no question to score and its "
        f"gate will fail ({advice})"
    ]


def share_warnings(
    before: list[Example], after: list[Example], settings: ValidationSettings
) -> list[str]:
    """What to tell the user when ``validation.max_type_share`` cannot be met, or when
    meeting it cut most of the examples (rare types bound how many the others keep)."""
    counts = Counter(e.question_type for e in before)
    share = settings.max_type_share
    if len(counts) < 2 or share >= 1.0:
        return []
    if len(counts) < math.ceil(1 / share):
        return [
            f"only {len(counts)} question types: validation.max_type_share ({share:.0%}) "
            f"cannot hold, so each type was cut to at most {1 / len(counts):.0%} instead"
        ]
    if len(after) * 2 < len(before):
        rare = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items(), key=lambda i: i[1]))
        return [
            f"validation.max_type_share ({share:.0%}) cut {len(before) - len(after)} of "
            f"{len(before)} examples: the rarer question types bound how many the others "
            f"keep ({rare}); raise the share or synthesize more of the rare types"
        ]
    return []


def plot_scores(report: ValidationReport, target: Path) -> Path | None:
    """Write the score histogram PNG (None when matplotlib is not installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from forge_core.files import atomic_path

    figure, axis = plt.subplots(figsize=(6, 3.5), dpi=100)
    axis.hist(report.scores, bins=[i / 10 for i in range(11)], color="#3b7dd8", edgecolor="white")
    axis.set_xlabel("quality score")
    axis.set_ylabel("examples")
    axis.set_title(f"{report.kept} examples kept of {report.received}")
    figure.tight_layout()
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return target
