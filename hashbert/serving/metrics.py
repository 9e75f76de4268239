"""Prometheus metrics of the HTTP service: requests, per-stage latency, live sessions, index size.

With several worker processes (``--workers N``) the server sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start; every worker then writes its samples there and ``/metrics`` (served by any worker) adds them
up across processes: counters and histograms are summed, the gauges report the largest value (every worker
sees the same database and the same index). Without that variable the numbers are this process's own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
STAGES = ("encode", "aggregate", "search", "rerank", "total")
# Milliseconds: a fast turn is a few ms, a large re-rank or a cold start a few seconds.
LATENCY_BUCKETS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class ServeMetrics:
    """The service's metric families, in a registry of their own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        kwargs: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter(
            "hashbert_http_requests", "HTTP requests by method, route template and status code",
            ["method", "route", "status"], **kwargs,
        )
        self.stage_ms = Histogram(
            "hashbert_stage_latency_ms", "milliseconds per selection stage (total: the whole request)",
            ["route", "stage"], buckets=LATENCY_BUCKETS_MS, **kwargs,
        )
        self.batch_size = Histogram(
            "hashbert_batch_size", "requests encoded together by the micro-batcher",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), **kwargs,
        )
        self.live_sessions = Gauge(
            "hashbert_live_sessions", "sessions in the store that have not expired", multiprocess_mode="max", **kwargs
        )
        self.index_responses = Gauge(
            "hashbert_index_responses", "responses in the loaded index", multiprocess_mode="max", **kwargs
        )
        self.index_bytes = Gauge(
            "hashbert_index_bytes", "bytes of the loaded index's codes", multiprocess_mode="max", **kwargs
        )

    def observe_request(self, method: str, route: str, status: int) -> None:
        self.requests.labels(method, route, str(status)).inc()

    def observe_stages(self, route: str, timings_ms: Mapping[str, float]) -> None:
        """One sample per stage present in ``timings_ms`` (milliseconds)."""
        for stage in STAGES:
            if stage in timings_ms:
                self.stage_ms.labels(route, stage).observe(float(timings_ms[stage]))

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of ``/metrics``: every worker's samples in multiprocess mode, else ours."""
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware: counts every HTTP request by its route *template* (``/v1/sessions/{session_id}``, never
    the id itself, so the label set stays small) and its status, and times it as the ``total`` stage."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_and_note(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], template, status[0])
            self.metrics.observe_stages(template, {"total": (time.perf_counter() - start) * 1000})
