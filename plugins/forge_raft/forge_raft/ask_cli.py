"""``forge ask``: one question to the deployed model, with the repository's code in context."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from forge_core.cli import friendly_errors, open_forge

if TYPE_CHECKING:
    from forge_core.pipeline import Forge

#: Answer tokens when --max-tokens is not given.
DEFAULT_MAX_TOKENS = 256


def _token_room(forge: Forge, max_tokens: int) -> tuple[Callable[[str], int] | None, int | None]:
    """The base model's token counter and the tokens the messages may take, when known.

    The room is what a training example may hold (the pipeline's
    :meth:`~forge_core.pipeline.Forge.example_token_limit`) less the answer's tokens;
    with a base model that is not a local folder nothing is counted.
    """
    from forge_core.validation import token_counter

    tokenizer_file = forge.base_tokenizer_file()
    if tokenizer_file is None:
        return None, None
    count_tokens, _ = token_counter(tokenizer_file)
    return count_tokens, max(1, forge.example_token_limit(count_tokens) - max_tokens)


@click.command("ask")
@click.argument("question")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--documents",
    "count",
    type=click.IntRange(min=1),
    help="Documents to put in context (default: 1 + synth.distractors, as in training).",
)
@click.option("--max-tokens", default=DEFAULT_MAX_TOKENS, show_default=True)
@click.option(
    "--show-prompt", is_flag=True, help="Print the messages that would be sent, and stop."
)
@friendly_errors
def ask(
    question: str, run_dir: Path | None, count: int | None, max_tokens: int, show_prompt: bool
) -> None:
    """Ask the run's deployed model QUESTION, with the code it is about in context.

    The model was trained on questions that come after documents of the repository's
    code; this looks those documents up in the run's mined units (units the question
    names first, then the best BM25 matches), lists them, and sends the question in
    the training layout. `forge chat` sends your words without code in context.
    """
    from forge_core.chat import check_model_served, stream_chat
    from forge_core.contracts import CodeUnit
    from forge_core.files import read_jsonl
    from forge_raft.grounding import Grounding

    forge = open_forge(run_dir, (), None)
    forge.run.require("mine")
    units = read_jsonl(forge.run.path / "mine" / "units.jsonl", CodeUnit)
    if not units:
        raise click.UsageError(f"{forge.run.path}: mining found no code units to put in context")
    synth = forge.settings.synth
    count_tokens, room = _token_room(forge, max_tokens)
    grounding = Grounding(units, synth.max_document_chars)
    grounded = grounding.ground(question, count or 1 + synth.distractors, count_tokens, room)
    if show_prompt:
        for message in grounded.messages:
            click.secho(f"--- {message['role']}", fg="cyan")
            click.echo(message["content"])
        return
    deployment = forge.deployment()
    check_model_served(deployment.endpoint, deployment.model_name)
    if not grounded.documents:
        click.secho("context: no unit matches the question; asking without documents", err=True)
    else:
        click.secho("context:", fg="cyan", err=True)
    for document in grounded.documents:
        unit = document.unit
        lines = f"{unit.path}:{unit.start_line}-{unit.end_line}"
        click.secho(f"  {lines}  {unit.qualified_name}", fg="cyan", err=True)
    for piece in stream_chat(
        deployment.endpoint, deployment.model_name, grounded.messages, max_tokens=max_tokens
    ):
        click.echo(piece, nl=False)
    click.echo()
