"""The built-in light metrics: perplexity, exact match, hallucination, quote fidelity.

Registered as the builtin plugin ``builtin-metrics``. Each metric turns every
sample into a share ``(numerator, denominator)`` (or None when the sample has
nothing to measure); one helper pools the shares into the overall value, the
per-sample scores and the ``by_question_type`` / ``by_language`` breakdowns,
so a breakdown is always the same metric computed over a subset.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

from forge_core.contracts import CodeUnit, EvalSample, EvaluateRequest, EvaluateResult
from forge_core.hookspecs import hookimpl
from forge_core.validation import QUOTE_RE, final_answer, quotes

#: One sample's share of a metric, (numerator, denominator); None: nothing to measure.
Share = tuple[float, float] | None
#: Turns pooled (numerator, denominator) into the metric's value.
Combine = Callable[[float, float], float]

UNKNOWN_GROUP = "unknown"
#: exp() of more than this overflows a float; a perplexity that large means "infinite".
MAX_MEAN_NLL = 700.0


# --------------------------------------------------------------------------- pooling


def ratio(numerator: float, denominator: float) -> float:
    """The plain share."""
    return numerator / denominator


def perplexity_of(nll: float, tokens: float) -> float:
    """exp of the mean negative log-likelihood per token."""
    return math.exp(min(nll / tokens, MAX_MEAN_NLL))


def pooled(shares: Iterable[Share], combine: Combine) -> float | None:
    """The metric over several samples: sum the shares, then combine.

    None without data, and None when a share is NaN: a value that is not a number
    poisons the pool rather than being left out, which would flatter the rest.
    """
    present = [share for share in shares if share is not None and share[1] > 0]
    if not present:
        return None
    numerator = math.fsum(s[0] for s in present)
    if math.isnan(numerator):
        return None
    return combine(numerator, math.fsum(s[1] for s in present))


def breakdowns(
    samples: Sequence[EvalSample], shares: Sequence[Share], combine: Combine
) -> dict[str, Any]:
    """The metric per question type and per language, and how many samples each has."""
    details: dict[str, Any] = {"counts": {}}
    for key, field in (("by_question_type", "question_type"), ("by_language", "language")):
        groups: dict[str, list[Share]] = defaultdict(list)
        for sample, share in zip(samples, shares, strict=True):
            groups[getattr(sample, field) or UNKNOWN_GROUP].append(share)
        details[key] = {name: pooled(group, combine) for name, group in sorted(groups.items())}
        details["counts"][key] = {
            name: sum(share is not None for share in group)
            for name, group in sorted(groups.items())
        }
    return details


def summarise(
    request: EvaluateRequest,
    shares: Sequence[Share],
    combine: Combine,
    *,
    higher_is_better: bool,
    details: dict[str, Any],
) -> EvaluateResult:
    """Build the result: pooled value, per-sample scores, details with breakdowns."""
    return EvaluateResult(
        metric=request.metric,
        value=pooled(shares, combine),
        higher_is_better=higher_is_better,
        per_sample=[pooled([share], combine) for share in shares],
        details={**details, **breakdowns(request.samples, shares, combine)},
    )


# --------------------------------------------------------------------------- perplexity


def invalid_logprob(logprob: float) -> bool:
    """A log-prob no model can give: NaN, or +inf (a probability above one).

    ``-inf`` is a real one (a probability of zero): it makes perplexity infinite,
    which :func:`perplexity_of` caps at ``exp(MAX_MEAN_NLL)``.
    """
    return math.isnan(logprob) or logprob == math.inf


def perplexity(request: EvaluateRequest) -> EvaluateResult:
    """exp of the mean negative log-prob of the reference tokens, pooled over all tokens.

    A sample with a NaN or +inf log-prob (a diverged model, a broken backend) has no
    perplexity, and neither has any pool that holds it (the overall value, its
    question type and language): left out, it would make the model look better.
    ``details`` counts them (``invalid_logprobs``, ``invalid_samples``) and says why
    (``reason``), which the gate quotes when the value is missing.
    """
    shares: list[Share] = []
    invalid = invalid_samples = 0
    for sample in request.samples:
        logprobs = sample.token_logprobs or []
        bad = sum(invalid_logprob(lp) for lp in logprobs)
        invalid += bad
        invalid_samples += bool(bad)
        if bad:
            shares.append((math.nan, float(len(logprobs))))
        else:
            shares.append((-math.fsum(logprobs), float(len(logprobs))) if logprobs else None)
    tokens = int(sum(share[1] for share in shares if share))
    details: dict[str, Any] = {
        "tokens": tokens,
        "invalid_logprobs": invalid,
        "invalid_samples": invalid_samples,
    }
    if invalid:
        details["reason"] = (
            f"{invalid} of {tokens} reference-token log-probs (in {invalid_samples} of "
            f"{len(request.samples)} samples) are NaN or +inf: the model's scores are not "
            "numbers (diverged training or a broken backend)"
        )
    return summarise(request, shares, perplexity_of, higher_is_better=False, details=details)


# --------------------------------------------------------------------------- exact match

FENCE_BODY = re.compile(r"^```(?:[\w+#.-]*\n)?(.*?)\n?```$", re.DOTALL)
SURROUNDING = "\"'`"
TRAILING_PUNCTUATION = ".,;:!?"


def normalise_answer(text: str) -> str:
    """The final answer in comparable form.

    The final answer (:func:`forge_core.validation.final_answer`: the text after
    the first line starting with ``<ANSWER>: ``; the whole text without one); a code
    fence around all of it removed; whitespace runs collapsed to one space;
    then, until nothing changes, trailing ``.,;:!?`` and one pair of matching
    surrounding quotes or backticks stripped. Case is kept: in code ``Parse``
    and ``parse`` are different names, so folding case would count wrong
    answers as right.
    """
    answer = final_answer(text)
    answer = (text if answer is None else answer).strip()
    fence = FENCE_BODY.match(answer)
    if fence:
        answer = fence.group(1)
    answer = " ".join(answer.split())
    previous = None
    while answer != previous:
        previous = answer
        answer = answer.rstrip(TRAILING_PUNCTUATION).strip()
        if len(answer) >= 2 and answer[0] == answer[-1] and answer[0] in SURROUNDING:
            answer = answer[1:-1].strip()
    return answer


def exact_match(request: EvaluateRequest) -> EvaluateResult:
    """Share of samples whose normalised final answer equals the reference's."""
    shares: list[Share] = [
        (float(normalise_answer(s.prediction) == normalise_answer(s.reference)), 1.0)
        for s in request.samples
    ]
    matches = int(sum(share[0] for share in shares if share))
    return summarise(request, shares, ratio, higher_is_better=True, details={"matches": matches})


# --------------------------------------------------------------------------- hallucination

NAME = r"[A-Za-z_]\w*"
#: A name or dotted path; ``attr``: it follows ``).`` / ``].``; ``call``: ``(`` follows
#: (but not the plural ``(s)``). Paths inside file paths (``a/b``) do not count.
PATH = re.compile(
    rf"(?:(?P<attr>(?<=[)\]])\.)|(?<![\w./\\-]))(?P<path>{NAME}(?:\.{NAME})*)(?![\w/]|\.[A-Za-z_])"
    r"(?P<call>\((?!e?s\)))?"
)
SINGLE = re.compile(rf"{NAME}(?:\.{NAME})*(?:\(.*\))?", re.DOTALL)
FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
URL = re.compile(r"\b[a-z][\w+.-]*://\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+")
STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
CAMEL = re.compile(r"[a-z0-9][A-Z]|[A-Z]{2}[a-z]{2}")
DUNDER = re.compile(r"__\w+__")
WORD = re.compile(NAME)
#: Lines that define things (every name on them is the answer's own) and other bindings.
DEFINITION_LINE = re.compile(
    r"^[ \t]*(?:export\s+)?(?:async\s+)?(?:def|class|function\*?|func|type|interface|struct)\b.*$",
    re.MULTILINE,
)
BINDINGS = (
    re.compile(rf"({NAME})\s*(?::=|(?<![=!<>+\-*/%&|^])=(?![=>]))"),
    re.compile(r"\bfor\s+\(?([^\n:=]*?)\)?\s*(?:\bin\b|\bof\b|:=)"),
    re.compile(rf"\bas\s+({NAME})"),
    re.compile(r"\b(?:let|const|var)\s+([^\n=;]+)"),
    re.compile(r"\(([^()\n]*)\)\s*=>|\b(\w+)\s*=>"),
    re.compile(r"\blambda\b([^:\n]*):"),
)
RECEIVERS = frozenset({"self", "this", "cls", "super"})
#: Sections of ``data/builtin_names.txt`` that are not languages.
SHARED_SECTIONS = frozenset({"common", "file_extensions"})
LANGUAGE_ALIASES = {"typescript": "javascript", "tsx": "javascript", "jsx": "javascript"}


@dataclass(frozen=True)
class Vocabulary:
    """Names an answer may use without naming a repository API (``data/builtin_names.txt``)."""

    names: frozenset[str]
    modules: frozenset[str] = frozenset()


@cache
def name_sections() -> dict[str, frozenset[str]]:
    """The sections of ``data/builtin_names.txt``: section name → names."""
    text = resources.files("forge_core").joinpath("data/builtin_names.txt").read_text("utf-8")
    sections: dict[str, set[str]] = defaultdict(set)
    current = "common"
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif line:
            sections[current].update(line.split())
    return {name: frozenset(names) for name, names in sections.items()}


@cache
def vocabulary(language: str) -> Vocabulary:
    """The names of ``language`` plus the common ones; every language's for an unknown one."""
    sections = name_sections()
    language = LANGUAGE_ALIASES.get(language, language)
    languages = (
        [language]
        if language in sections
        else [name for name in sections if "." not in name and name not in SHARED_SECTIONS]
    )
    names: set[str] = set(sections.get("common", ()))
    modules: set[str] = set()
    for name in languages:
        names.update(sections.get(name, ()))
        modules.update(sections.get(f"{name}.modules", ()))
    return Vocabulary(frozenset(names | modules), frozenset(modules))


def symbol_names(symbols: Iterable[str]) -> frozenset[str]:
    """The symbol table as given, plus every bare name inside a qualified one."""
    names: set[str] = set()
    for symbol in symbols:
        names.add(symbol)
        names.add(re.sub(r"[()*&\s]", "", symbol))  # `(*Server).Serve` → `Server.Serve`
        names.update(WORD.findall(symbol))
    return frozenset(names)


def repository_symbols(units: Iterable[CodeUnit], *, code_names: bool = True) -> list[str]:
    """The symbol table for ``EvaluateRequest.symbols``.

    Unit names and qualified names, the module names of their files
    (``pkg/util.py`` → ``pkg.util``, ``util``, ``pkg``), the names the units
    reference (calls, attributes, imports) and, with ``code_names``, every
    identifier written in the units' source (fields, constants, parameters):
    a name the repository's own code uses is not one the model invented.
    """
    names: set[str] = set()
    for unit in units:
        names.update((unit.name, unit.qualified_name, *unit.references))
        path = PurePosixPath(unit.path)
        parts = [*path.parent.parts, path.stem] if path.stem != "__init__" else [*path.parent.parts]
        names.update(part for part in parts if part.isidentifier())
        if parts:
            names.add(".".join(parts))
        if code_names:
            names.update(WORD.findall(unit.source))
    return sorted(names)


def defined_names(answer: str) -> set[str]:
    """Names the answer binds itself: definitions, assignments, loop and lambda variables."""
    defined = {word for line in DEFINITION_LINE.findall(answer) for word in WORD.findall(line)}
    for pattern in BINDINGS:
        for match in pattern.finditer(answer):
            for group in match.groups():
                defined.update(WORD.findall(group or ""))
    return defined


def named_identifiers(answer: str) -> list[str]:
    """The code-like names an answer uses, without repeats (code spans first, then prose).

    A name counts when it is called (``name(``), accessed as an attribute
    (``obj.name``, ``f().name``), written as a dotted path (``pkg.mod.name``),
    written in CamelCase (an inner capital) or snake_case (an inner ``_``), or
    is the whole of an inline code span (`` `name` ``). The same rules apply in
    prose, inline code and fenced code; string literals inside code, URLs,
    e-mail addresses, file paths and the quote markers are ignored. Plain
    lowercase words (``data``, ``result``), even in code, are not counted: they
    are variables and English, not APIs.
    """
    text = URL.sub(" ", answer.replace("##begin_quote##", " ").replace("##end_quote##", " "))
    regions: list[tuple[str, bool]] = []  # (text, is the whole of an inline span)

    def keep_fence(match: re.Match[str]) -> str:
        regions.append((STRING.sub('""', match.group(1)), False))
        return "\n"

    def keep_inline(match: re.Match[str]) -> str:
        content = match.group(1).strip()
        regions.append((STRING.sub('""', content), SINGLE.fullmatch(content) is not None))
        return " "

    text = INLINE.sub(keep_inline, FENCE.sub(keep_fence, text))
    regions.append((text, False))
    found: dict[str, None] = {}
    for region, whole in regions:
        for match in PATH.finditer(region):
            path = match.group("path")
            plain = path.strip("_")
            if (
                (whole and match.start() == 0)
                or match.group("call")
                or match.group("attr")
                or "." in path
                or "_" in plain
                or CAMEL.search(path)
            ):
                found.setdefault(path, None)
    return list(found)


def is_phantom(path: str, symbols: frozenset[str], known: set[str], vocab: Vocabulary) -> bool:
    """Whether a named identifier exists nowhere: not a symbol, not in the context, not builtin."""
    if path in symbols or path in vocab.names:
        return False
    segments = path.split(".")
    while segments and segments[0] in RECEIVERS:
        segments = segments[1:]
    if not segments or all(len(s) == 1 for s in segments):
        return False
    if len(segments) > 1 and (
        segments[0] in vocab.modules or segments[-1] in name_sections()["file_extensions"]
    ):
        return False  # an outside library's API (unverifiable) or a file name
    last = segments[-1]
    if len(last) < 2 or DUNDER.fullmatch(last) or ".".join(segments) in symbols:
        return False
    return not (last in symbols or last in known or last in vocab.names)


def phantom_names(sample: EvalSample, symbols: frozenset[str]) -> list[str]:
    """The identifiers the sample's prediction names that exist neither in the repo nor context."""
    given = " ".join([sample.context, *(m.content for m in sample.prompt)])
    known = set(WORD.findall(given)) | defined_names(sample.prediction)
    vocab = vocabulary(sample.language)
    return [
        path
        for path in named_identifiers(sample.prediction)
        if is_phantom(path, symbols, known, vocab)
    ]


def hallucination(request: EvaluateRequest) -> EvaluateResult:
    """Share of answers naming a phantom API: an identifier in neither the repo nor the context."""
    symbols = symbol_names(request.symbols)
    shares: list[Share] = []
    phantoms: dict[str, list[str]] = {}
    for sample in request.samples:
        found = phantom_names(sample, symbols)
        shares.append((float(bool(found)), 1.0))
        if found:
            phantoms[sample.id] = found
    frequent = Counter(name for names in phantoms.values() for name in names).most_common(20)
    details = {"phantoms": phantoms, "most_common": [[name, n] for name, n in frequent]}
    return summarise(request, shares, ratio, higher_is_better=False, details=details)


# --------------------------------------------------------------------------- quote fidelity

QUOTE_PREVIEW = 200


def quote_fidelity(request: EvaluateRequest) -> EvaluateResult:
    """Share of quoted spans in the predictions that are verbatim in the context."""
    shares: list[Share] = []
    unfaithful: dict[str, list[str]] = {}
    for sample in request.samples:
        spans = [span for span in quotes(sample.prediction) if span]
        missing = [span for span in spans if span not in sample.context]
        shares.append((float(len(spans) - len(missing)), float(len(spans))) if spans else None)
        if missing:
            unfaithful[sample.id] = [span[:QUOTE_PREVIEW] for span in missing]
    total = int(sum(share[1] for share in shares if share))
    verbatim = int(sum(share[0] for share in shares if share))
    details = {
        "quotes": total,
        "verbatim": verbatim,
        "unfaithful": total - verbatim,
        "unfaithful_share": (total - verbatim) / total if total else None,
        "unfaithful_quotes": unfaithful,
        "unterminated_quotes": sum(
            s.prediction.count("##begin_quote##") - len(QUOTE_RE.findall(s.prediction))
            for s in request.samples
        ),
    }
    return summarise(request, shares, ratio, higher_is_better=True, details=details)


# --------------------------------------------------------------------------- hooks

METRICS: dict[str, Callable[[EvaluateRequest], EvaluateResult]] = {
    "perplexity": perplexity,
    "exact_match": exact_match,
    "hallucination": hallucination,
    "quote_fidelity": quote_fidelity,
}


@hookimpl
def provided_names() -> dict[str, list[str]]:
    """The metric names this plugin computes."""
    return {"evaluate": sorted(METRICS)}


@hookimpl
def evaluate(request: EvaluateRequest) -> EvaluateResult | None:
    """Compute one of the built-in metrics."""
    metric = METRICS.get(request.metric)
    return metric(request) if metric else None
