"""``create_app(settings)``: the FastAPI application of ``forge serve``.

Tests and embedders build the app with their own settings (and ForgeSettings for
the jobs' defaults) and call it over HTTP. Building the app opens the queue; the
supervisor that starts workers runs only while the app is served (its lifespan),
so an app driven without a lifespan accepts and shows jobs but runs none.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from forge_core.config import ForgeSettings
from forge_server import __version__
from forge_server.api_jobs import router as jobs_router
from forge_server.api_openai import UpstreamError
from forge_server.api_openai import router as openai_router
from forge_server.jobqueue import JobStore
from forge_server.metrics import MetricsMiddleware, ServerMetrics
from forge_server.schemas import ErrorResponse, Health
from forge_server.security import APIKeyMiddleware, BodyLimitMiddleware, error_body
from forge_server.settings import ServerSettings
from forge_server.state import ServerState
from forge_server.supervisor import Supervisor

log = logging.getLogger("forge_server")

#: Responses any operation may give (documented so clients and schema checks know them).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request (undecodable body)."},
    401: {"model": ErrorResponse, "description": "Missing or invalid API key."},
    413: {"model": ErrorResponse, "description": "Request body over max_body_bytes."},
}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def add_error_handlers(app: FastAPI) -> None:
    """Errors as JSON: ``{"detail"}`` on Forge endpoints, ``{"error"}`` on OpenAI ones."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        path = request.url.path
        body = error_body(path, 422, _validation_message(errors), "invalid_request")
        if "detail" in body:
            body["detail"] = errors
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail
        path = request.url.path
        if isinstance(detail, list):
            body = error_body(path, exc.status_code, _validation_message(detail), "invalid")
            if "detail" in body:
                body["detail"] = detail
        else:
            body = error_body(path, exc.status_code, str(detail), _code(exc.status_code))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(UpstreamError)
    async def upstream_error(request: Request, exc: UpstreamError) -> JSONResponse:
        return JSONResponse(
            error_body(request.url.path, exc.status, str(exc), exc.code), status_code=exc.status
        )


def _code(status: int) -> str:
    return {404: "model_not_found", 403: "forbidden", 409: "conflict"}.get(status, "error")


def add_openapi_security(app: FastAPI, keys_required: bool) -> None:
    """Declare bearer auth in the schema (every operation but /healthz)."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        if keys_required:
            components = document.setdefault("components", {})
            components.setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
            document["security"] = [{"bearer": []}]
            for operation in document["paths"].get("/healthz", {}).values():
                operation["security"] = []
        app.openapi_schema = document
        return document

    app.openapi = schema  # type: ignore[method-assign]


def create_app(settings: ServerSettings, forge_settings: ForgeSettings | None = None) -> FastAPI:
    """The REST server: job queue, status, logs, retrain, and the OpenAI-compatible proxy."""
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.database_path)
    metrics = ServerMetrics(store)
    supervisor = Supervisor(
        settings,
        store,
        on_retry=lambda outcome: metrics.retries.labels(outcome).inc(),
        on_launch_error=lambda reason: metrics.launch_failures.labels(reason).inc(),
    )
    timeout = httpx.Timeout(settings.upstream_timeout_seconds, connect=10.0)
    state = ServerState(
        settings=settings,
        forge_settings=forge_settings or ForgeSettings.model_validate({}),
        store=store,
        supervisor=supervisor,
        metrics=metrics,
        http=httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=200)),
        roots=settings.resolved_roots(),
    )
    missing = [str(r) for r in settings.allowed_roots if not r.exists()]
    if missing:
        log.warning("allowed roots that do not exist are ignored: %s", ", ".join(missing))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor.start()
        try:
            yield
        finally:
            supervisor.stop()
            await state.http.aclose()

    app = FastAPI(
        title="Forge server",
        version=__version__,
        description="Fine-tune a code LLM on a repository, follow the job, chat with the result.",
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
    )
    app.state.forge = state
    add_error_handlers(app)
    app.include_router(jobs_router)
    app.include_router(openai_router)

    @app.get("/healthz", response_model=Health, tags=["server"], summary="Liveness")
    def healthz() -> Health:
        """The server answers and its queue database is readable (no key needed)."""
        store.ping()
        return Health(status="ok")

    @app.get(
        "/metrics",
        tags=["server"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def prometheus() -> Response:
        """Jobs by state, request counts and latency, chat tokens, upstream errors."""
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    keys = settings.all_api_keys()
    add_openapi_security(app, bool(keys))
    # Added last = outermost: metrics see every answer, auth runs before any body is read.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(APIKeyMiddleware, keys=keys)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
