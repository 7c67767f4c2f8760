"""Write the model card of a training run: ``python -m forge_tinycoder.card RUN_DIR``.

Reads the run's ``model/training.json``, both stages' ``done.json`` and the
model's ``evaluation.json`` (from ``forge_tinycoder.evaluate``), renders
``model_card.md.jinja`` and copies the loss curve beside the card.
"""

from __future__ import annotations

import argparse
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

#: Where the card and its picture go by default: the plugin folder.
PLUGIN_DIR = Path(__file__).resolve().parent.parent


def with_defaults(preset: dict[str, Any]) -> dict[str, Any]:
    """A saved preset with the fields added since it was saved, at their defaults."""
    from dataclasses import MISSING, fields

    from forge_tinycoder.presets import Preset

    defaults = {f.name: f.default for f in fields(Preset) if f.default is not MISSING}
    return {**defaults, **preset}


def card_context(run_dir: Path, model_dir: Path) -> dict[str, Any]:
    """Everything the template shows, from the run's files."""
    info = json.loads((model_dir / "training.json").read_text())
    earlier = info.get("continued_from")
    # A run made with --from-model has no pretraining of its own: that stage (and the
    # first instruction stage) come from the starting model's own record.
    stages = ("instruct",) if earlier else ("pretrain", "instruct")
    for stage in stages:
        done = json.loads((run_dir / stage / "done.json").read_text())
        info[stage] = {**done, **info[stage]}
        info[stage].setdefault("wall_seconds", done.get("wall_seconds", done["seconds"]))
    if earlier:
        info["pretrain"] = earlier["pretrain"]
    evaluation = json.loads((model_dir / "evaluation.json").read_text())
    files = [p for p in model_dir.iterdir() if p.is_file()]
    budget = info["instruct"]["config"]["budget_seconds"]
    if not earlier:
        budget += info["pretrain"]["config"]["budget_seconds"]
    return {
        "info": info,
        # the recipe the card describes is the one the pretraining ran with
        "preset": with_defaults(earlier["preset"] if earlier else info["preset"]),
        "config": json.loads((model_dir / "config.json").read_text()),
        "corpus": info["corpus"],
        "evaluation": evaluation,
        "completions": evaluation["completions"],
        "raft": evaluation["raft"],
        "completion_samples": evaluation["completions"]["samples"][:4],
        "raft_samples": evaluation["raft"]["samples"][:4],
        "weights_bytes": (model_dir / "model.safetensors").stat().st_size,
        "folder_bytes": sum(p.stat().st_size for p in files),
        "minutes": f"{budget / 60:g}",
        "earlier": earlier,
        "curve": "loss_curve_continued.png" if earlier else "loss_curve.png",
    }


def render_card(context: dict[str, Any]) -> str:
    """The model card's Markdown."""
    import jinja2

    source = resources.files("forge_tinycoder").joinpath("model_card.md.jinja").read_text("utf-8")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(source).render(**context)


def main(argv: list[str] | None = None) -> int:
    """Render the card of ``RUN_DIR`` into the plugin folder (or ``--out``)."""
    parser = argparse.ArgumentParser(prog="python -m forge_tinycoder.card", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="default RUN_DIR/model")
    parser.add_argument("--out", type=Path, default=PLUGIN_DIR / "MODEL_CARD.md")
    parser.add_argument("--note", action="append", default=[], help="a line for Training")
    args = parser.parse_args(argv)
    model_dir = args.model or args.run_dir / "model"
    context = {**card_context(args.run_dir, model_dir), "notes": args.note}
    args.out.write_text(render_card(context), encoding="utf-8")
    picture = args.out.parent / context["curve"]
    if picture.resolve() != (args.run_dir / "loss_curve.png").resolve():
        shutil.copyfile(args.run_dir / "loss_curve.png", picture)
    print(f"written {args.out} and {picture}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
