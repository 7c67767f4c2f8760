"""Prometheus metrics of one server (a registry of its own, so apps never share counters).

``forge_server_jobs{state}`` is read from the queue at scrape time, so it is true
across restarts; the request counters and the latency histogram are labelled by
route template (``/status/{job_id}``), never by raw path, to keep cardinality low.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forge_server.jobqueue import JobStore

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class QueueCollector(Collector):
    """Jobs by state, straight from the queue."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "forge_server_jobs", "Jobs in the queue by state", labels=["state"]
        )
        for state, count in self.store.counts().items():
            family.add_metric([state], count)
        yield family


class ServerMetrics:
    """Every metric the server exports."""

    def __init__(self, store: JobStore) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(QueueCollector(store))
        self.requests = Counter(
            "forge_server_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "forge_server_http_request_duration_seconds",
            "Time to the end of the response, by route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.submitted = Counter(
            "forge_server_jobs_submitted",
            "Jobs accepted, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.retries = Counter(
            "forge_server_job_worker_deaths",
            "Attempts whose worker died, by what happened to the job (queued again or failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.launch_failures = Counter(
            "forge_server_worker_launch_failures",
            "Workers that could not be started (their job stays queued), by errno name",
            ["reason"],
            registry=self.registry,
        )
        self.chat_tokens = Counter(
            "forge_server_chat_tokens",
            "Tokens reported by the model server in chat usage",
            ["kind"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "forge_server_upstream_errors",
            "Chat requests the model server failed or could not be reached for",
            ["reason"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count requests and time them to the last byte of the response."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
