"""Contracts round-trip through JSON."""

from __future__ import annotations

from forge_core import contracts as c


def make_unit() -> c.CodeUnit:
    return c.CodeUnit(
        path="pkg/mod.py",
        language="python",
        kind=c.UnitKind.METHOD,
        name="push",
        qualified_name="Stack.push",
        signature="def push(self, item):",
        docstring="Push an item.",
        source='def push(self, item):\n    """Push an item."""\n',
        start_line=3,
        end_line=4,
        start_byte=20,
        end_byte=70,
        references=["append"],
        quality=c.UnitQuality(lines=2, has_doc=True),
    )


def test_every_contract_round_trips() -> None:
    unit = make_unit()
    assert unit.content_hash == c.content_hash(unit.source)
    example = c.Example(
        id="e1",
        messages=[
            c.ChatMessage(role="user", content="q"),
            c.ChatMessage(role="assistant", content="a"),
        ],
        question_type="what",
        language="python",
        path="pkg/mod.py",
        oracle_id="pkg/mod.py::Stack.push",
        split="train",
    )
    artifact = c.ExportArtifact(path="m.gguf", quantization="Q8_0", fidelity={"top1": 0.99})
    samples = [c.EvalSample(id="s", reference="r", token_logprobs=[-0.1, -0.2])]
    values = [
        unit,
        example,
        c.ParseRequest(path="a.py", language="python", source=b"\xff\xfe invalid utf-8"),
        c.ParseResult(units=[unit], imports=["os"]),
        c.SynthesizeRequest(units=[unit], settings={"distractors": 3}),
        c.SynthesizeResult(examples=[example], stats={"n": 1}),
        c.InitAdapterRequest(method="pissa", base_model="m", output_dir="o"),
        c.InitAdapterResult(method="pissa", residual_base="r"),
        c.TrainRequest(base_model="m", train_file="t.jsonl", output_dir="o"),
        c.TrainResult(adapter_dir="a", base_model="m", metrics={"loss": 1.0}),
        c.EvaluateRequest(metric="exact_match", samples=samples, symbols=["f"]),
        c.EvaluateResult(metric="exact_match", value=0.5, per_sample=[1.0, None]),
        c.ExportRequest(base_model="m", output_dir="o"),
        c.ExportResult(artifacts=[artifact]),
        c.DeployRequest(artifact=artifact, model_name="n", output_dir="o"),
        c.DeployResult(target="llamacpp", model_name="n", endpoint="http://h/v1", pid=3),
        c.LanguageSpec(name="go", extensions=[".go"]),
        c.BaseModelSpec(name="tinycoder", path="/p", default=True),
    ]
    for value in values:
        again = type(value).model_validate_json(value.model_dump_json())
        assert again == value, type(value).__name__


def test_in_process_handles_are_not_serialised() -> None:
    request = c.InitAdapterRequest(method="lora", base_model="m", output_dir="o", model=object())
    import json

    assert "model" not in json.loads(request.model_dump_json())
