"""Hook specifications: the contract between the Forge core and its plugins.

A plugin is a module (or object) registered under a name, usually through the
``forge`` entry-point group, with functions decorated by :data:`hookimpl`.

Two kinds of hooks:

* **Pipeline hooks** (``parse``, ``synthesize``, ``init_adapter``, ``train``,
  ``evaluate``, ``export``, ``deploy``) do the work of one stage. The core never
  calls every implementation: it selects exactly one plugin *by name* from the
  configuration (``train.trainer = "torch"``) and calls that plugin's
  implementation with one keyword argument, ``request``. A plugin answers for
  the names it declares in ``provided_names`` (by default, its own plugin name;
  for ``parse``, the languages it registers).
* **Registry hooks** (``register_*`` and ``provided_names``) are called on every
  plugin; each answers with what it contributes.

Every hook is documented below: when it is called, its arguments, its result,
and whether it is first-result. ``docs/plugins.md`` is checked against these
docstrings by the test suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from forge_core.backends import ModelBackendSpec
    from forge_core.contracts import (
        BaseModelSpec,
        DeployRequest,
        DeployResult,
        EvaluateRequest,
        EvaluateResult,
        ExportRequest,
        ExportResult,
        InitAdapterRequest,
        InitAdapterResult,
        LanguageSpec,
        ParseRequest,
        ParseResult,
        SynthesizeRequest,
        SynthesizeResult,
        TrainRequest,
        TrainResult,
    )
    from forge_core.validation import ValidationCheck

PROJECT_NAME = "forge"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: The hooks that do a stage's work, in pipeline order.
PIPELINE_HOOKS: tuple[str, ...] = (
    "parse",
    "synthesize",
    "init_adapter",
    "train",
    "evaluate",
    "export",
    "deploy",
)

#: The hooks every plugin may answer to contribute to a registry.
REGISTRY_HOOKS: tuple[str, ...] = (
    "provided_names",
    "register_languages",
    "register_base_models",
    "register_model_backends",
    "register_validation_checks",
    "register_cli_commands",
)


# --------------------------------------------------------------------------- pipeline


@hookspec(firstresult=True)
def parse(request: ParseRequest) -> ParseResult | None:
    """Turn one source file into whole code units.

    When: the ``mine`` stage, once per file, on the plugin that registered the
    file's language (``register_languages``); possibly in a spawned helper process.
    Arguments: ``request`` (:class:`~forge_core.contracts.ParseRequest`): the
    repository-relative path, the language name and the raw bytes.
    Result: :class:`~forge_core.contracts.ParseResult` with whole units (never a
    unit split inside a function) and the file's imports. Unit ids are assigned
    by the core. Never raise on bad source: flag syntax errors instead.
    First-result: yes.
    """


@hookspec(firstresult=True)
def synthesize(request: SynthesizeRequest) -> SynthesizeResult | None:
    """Make training examples from a repository's code units.

    When: the ``synth`` stage, once per run, on the plugin named by
    ``synth.synthesizer``.
    Arguments: ``request`` (:class:`~forge_core.contracts.SynthesizeRequest`):
    every mined unit, the ``synth`` settings, a seed and a cache directory.
    Result: :class:`~forge_core.contracts.SynthesizeResult`: examples in the
    chat-messages shape with provenance, and counts.
    First-result: yes.
    """


@hookspec(firstresult=True)
def init_adapter(request: InitAdapterRequest) -> InitAdapterResult | None:
    """Make a trainable adapter (LoRA, PiSSA, ...) on a base model.

    When: by the trainer, before training, on the plugin that provides the
    method named by ``train.method`` (``lora``, ``pissa``, ``pissa_niter_16``).
    Arguments: ``request`` (:class:`~forge_core.contracts.InitAdapterRequest`):
    the method, the base model path, the ``train`` settings, an output
    directory, and optionally the already loaded base model (in-process).
    Result: :class:`~forge_core.contracts.InitAdapterResult`: the trainable
    model (in-process) and, for QPiSSA, the path of the residual base.
    First-result: yes.
    """


@hookspec(firstresult=True)
def train(request: TrainRequest) -> TrainResult | None:
    """Train an adapter on the validated splits.

    When: the ``train`` stage, on the plugin named by ``train.trainer``.
    Arguments: ``request`` (:class:`~forge_core.contracts.TrainRequest`): the
    resolved base model, the train/valid JSONL files, the output directory
    (which may hold checkpoints of an interrupted run: resume from them) and
    the ``train`` settings.
    Result: :class:`~forge_core.contracts.TrainResult`: the adapter directory,
    final metrics, the log and the loss plot.
    First-result: yes.
    """


@hookspec(firstresult=True)
def evaluate(request: EvaluateRequest) -> EvaluateResult | None:
    """Compute one named metric over evaluated samples.

    When: the ``eval`` stage, once per metric in ``eval.metrics`` and per
    model (base, fine-tuned), on the plugin that provides that metric name.
    Arguments: ``request`` (:class:`~forge_core.contracts.EvaluateRequest`):
    the metric name, the samples (prompts, references, predictions,
    log-probs), the repository's symbol table and the ``eval`` settings.
    Result: :class:`~forge_core.contracts.EvaluateResult`: the value, whether
    higher is better, per-sample scores and details.
    First-result: yes.
    """


@hookspec(firstresult=True)
def export(request: ExportRequest) -> ExportResult | None:
    """Merge the adapter into its base and write deployable files.

    When: the ``export`` stage, on the plugin named by ``export.exporter``.
    Arguments: ``request`` (:class:`~forge_core.contracts.ExportRequest`): base
    model, adapter directory, output directory and the ``export`` settings.
    Result: :class:`~forge_core.contracts.ExportResult`: one artifact per
    quantisation, each with its fidelity figures and verdict.
    First-result: yes.
    """


@hookspec(firstresult=True)
def deploy(request: DeployRequest) -> DeployResult | None:
    """Serve an exported model so it can be chatted with.

    When: the ``deploy`` stage, on the plugin named by ``deploy.target``.
    Arguments: ``request`` (:class:`~forge_core.contracts.DeployRequest`): the
    artifact to serve, the model name, the output directory and the
    ``deploy`` settings.
    Result: :class:`~forge_core.contracts.DeployResult` with an
    OpenAI-compatible endpoint; the core writes it to ``deployment.json``.
    First-result: yes.
    """


# --------------------------------------------------------------------------- registries


@hookspec
def provided_names() -> dict[str, list[str]]:
    """Declare the names this plugin answers to, per pipeline hook.

    When: at plugin discovery, on every plugin; used to select plugins by name
    and shown by ``forge plugins``.
    Arguments: none.
    Result: a mapping from pipeline hook name to the names provided, e.g.
    ``{"train": ["torch"], "init_adapter": ["lora"]}``. A name may end in
    ``*`` to match a family (``pissa_niter_*``). A plugin that does not
    implement this hook answers to its own plugin name for every pipeline hook
    it implements; ``parse`` always answers to the registered languages.
    First-result: no (one mapping per plugin).
    """
    return {}


@hookspec
def register_languages() -> list[LanguageSpec]:
    """Declare the languages this plugin parses, with their file extensions.

    When: at plugin discovery, on every plugin; the ``mine`` stage routes each
    file to the plugin that registered its extension.
    Arguments: none.
    Result: a list of :class:`~forge_core.contracts.LanguageSpec`.
    First-result: no (one list per plugin).
    """
    return []


@hookspec
def register_base_models() -> list[BaseModelSpec]:
    """Declare named base models (e.g. the embedded default ``tinycoder``).

    When: when resolving ``train.base_model``; a name found here is replaced
    by its path; with no base model configured, the spec marked ``default``
    is used.
    Arguments: none.
    Result: a list of :class:`~forge_core.contracts.BaseModelSpec`.
    First-result: no (one list per plugin).
    """
    return []


@hookspec
def register_model_backends() -> list[ModelBackendSpec]:
    """Declare model backends: load a model (± adapter), generate, score log-probs.

    When: by the ``eval`` stage and ``forge chat``, selected by
    ``eval.backend``.
    Arguments: none.
    Result: a list of :class:`~forge_core.backends.ModelBackendSpec`, each a
    name and a factory; the factory must import heavy libraries lazily.
    First-result: no (one list per plugin).
    """
    return []


@hookspec
def register_validation_checks() -> list[ValidationCheck]:
    """Contribute checks to the ``validate`` stage.

    When: the ``validate`` stage, on every plugin; each example goes through
    every check not named in ``validation.disabled_checks``, in plugin order;
    the first check that objects names the rejection reason in the report.
    Arguments: none.
    Result: a list of :class:`~forge_core.validation.ValidationCheck` (a name,
    a description and a function ``(example, context) -> reason | None``).
    First-result: no (one list per plugin).
    """
    return []


@hookspec
def register_cli_commands() -> list[click.Command]:
    """Contribute commands to the ``forge`` CLI (e.g. ``forge serve``).

    When: when the CLI lists or looks up a command it does not define itself.
    Arguments: none.
    Result: a list of ``click.Command`` objects; a name clash with a core
    command is reported and the plugin's command is not added.
    First-result: no (one list per plugin).
    """
    return []


def hook_docstrings() -> dict[str, str]:
    """Return each hook's name and docstring, in a stable order (for the docs)."""
    import inspect

    module: Any = globals()
    return {name: inspect.getdoc(module[name]) or "" for name in (*PIPELINE_HOOKS, *REGISTRY_HOOKS)}


def render_hook_reference() -> str:
    """The hook reference of ``docs/plugins.md``, rendered from the docstrings above."""
    sections = []
    for name, doc in hook_docstrings().items():
        kind = "pipeline" if name in PIPELINE_HOOKS else "registry"
        sections.append(f"### `{name}` ({kind} hook)\n\n```text\n{doc}\n```\n")
    return "\n".join(sections)
