"""Fixtures of the server tests: an allowed root with repositories, the app, real servers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream
from fastapi.testclient import TestClient
from server_helpers import API_KEY, ServerProcess, kill_workers, make_repo, write_forge_toml
from server_toy import TOY_SETTINGS

from forge_core.config import ForgeSettings
from forge_server.app import create_app
from forge_server.settings import ServerSettings

SAMPLE_REPO = Path(__file__).resolve().parents[2] / "fixtures" / "sample_repo"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The allowed root, holding a toy repository ``repo`` and a copy of the sample repo."""
    folder = tmp_path / "root"
    make_repo(folder / "repo")
    shutil.copytree(SAMPLE_REPO, folder / "sample_repo")
    return folder


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """A fake OpenAI-compatible model server."""
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def app_settings(tmp_path: Path, root: Path) -> ServerSettings:
    """Server settings with one API key and the root allowed."""
    return ServerSettings(
        runs_dir=tmp_path / "runs",
        allowed_roots=[root],
        api_keys=[API_KEY],
        discover_plugins=False,
    )


@pytest.fixture
def client(app_settings: ServerSettings) -> TestClient:
    """The app without its lifespan: jobs are accepted and shown, never started."""
    forge_settings = ForgeSettings.model_validate(TOY_SETTINGS)
    app = create_app(app_settings, forge_settings)
    return TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"})


@pytest.fixture
def start_server(
    tmp_path: Path, root: Path, upstream: FakeUpstream
) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``forge serve`` processes on one runs dir; all stopped, workers killed, at the end."""
    servers: list[ServerProcess] = []
    config = write_forge_toml(tmp_path, upstream.port)

    def start(**env: str) -> ServerProcess:
        server = ServerProcess(tmp_path / "runs", root, config, **env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
    kill_workers(tmp_path / "runs" / "jobs.sqlite3")
