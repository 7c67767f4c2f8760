"""Helpers of the llama.cpp tests: deploy requests and run folders as the pipeline makes them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from forge_core.contracts import DeployRequest, DeployResult, ExportArtifact
from forge_core.runs import RunDir


def deploy_request(gguf: Path, run: Path, **settings: object) -> DeployRequest:
    """A deploy request for ``run``'s deploy/ folder, as the pipeline builds it."""
    return DeployRequest(
        artifact=ExportArtifact(path=str(gguf), quantization="F32"),
        model_name="forge-test",
        output_dir=str(run / "deploy"),
        settings={"target": "llamacpp", "host": "127.0.0.1", "port": 8088, **settings},
    )


def record_deployment(run: Path, result: DeployResult) -> None:
    """Write deployment.json and the deploy manifest, as the deploy stage does."""
    folder = run / "deploy"
    (folder / "deployment.json").write_text(json.dumps(result.model_dump(mode="json")))
    RunDir(run).finish(
        "deploy",
        inputs={},
        config={},
        outputs=[folder / "deployment.json"],
        metrics={"endpoint": result.endpoint},
        plugins={},
        started=time.time(),
    )
