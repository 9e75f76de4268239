"""The HTTP service: FastAPI routes over a ``Retriever``, a ``SessionStore`` and a micro-batcher.

``create_app(bundle_dir, settings)`` builds the app; the model loads in the background once the app starts
(``/readyz`` answers 503 until then, ``/healthz`` at once). Routes: ``POST /v1/search`` (stateless),
``POST /v1/sessions``, ``GET``/``DELETE /v1/sessions/{id}``, ``POST /v1/sessions/{id}/turns``,
``GET /v1/info``, ``GET /metrics`` and the demo page at ``/``. Bad input is a 4xx with a JSON ``detail``.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from hashbert.config.serving import ServeConfig
from hashbert.serving import schemas as s
from hashbert.serving.errors import install_error_handlers, not_ready
from hashbert.serving.guards import BodySizeLimit, api_key_dependency
from hashbert.serving.metrics import MetricsMiddleware, ServeMetrics
from hashbert.serving.runtime import Runtime

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SessionId = PathParam(min_length=1, max_length=64, description="a session id from POST /v1/sessions")


def create_app(bundle_dir: str | Path, settings: ServeConfig | None = None, *, retriever: Any = None) -> FastAPI:
    """The service for one bundle.

    Args:
        bundle_dir: a bundle written by ``build_bundle``.
        settings: sessions database, limits, batching, API key file (the defaults of ``ServeConfig``).
        retriever: an already loaded ``Retriever`` of that bundle (tests share one); else it is loaded in the
            background when the app starts.
    """
    settings = settings or ServeConfig()
    metrics = ServeMetrics()
    runtime = Runtime(Path(bundle_dir), settings, metrics, retriever)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="hashbert", summary="Fast retrieval-based dialogue: pick the next response from a large pool.",
        version=_version(), lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=s.MAX_BODY_BYTES)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    guard = [Depends(api_key_dependency(settings.api_key_file))]
    app.include_router(_open_routes(runtime))
    app.include_router(_v1_routes(runtime), dependencies=guard)
    app.include_router(_metrics_route(runtime), dependencies=guard)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _version() -> str:
    from hashbert import __version__

    return __version__


def _ready(runtime: Runtime):
    """A dependency: the runtime once the model is loaded, else a 503."""

    def dependency() -> Runtime:
        if not runtime.ready:
            raise not_ready(runtime.load_error)
        return runtime

    return dependency


def _open_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def demo_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @router.get("/healthz", response_model=s.Status, tags=["health"])
    def healthz() -> s.Status:
        """The process is up (the model may still be loading)."""
        return s.Status(status="ok")

    @router.get("/readyz", response_model=s.Status, responses={503: s.ERRORS[503]}, tags=["health"])
    def readyz() -> s.Status:
        """The model is loaded and requests are served (503 until then)."""
        if not runtime.ready:
            raise not_ready(runtime.load_error)
        return s.Status(status="ready")

    return router


def _metrics_route(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}},
                                                                401: s.ERRORS[401]}, tags=["health"])
    def metrics() -> Response:
        """Prometheus metrics: requests, per-stage latency, live sessions, index size."""
        body, content_type = runtime.render_metrics()
        return Response(body, media_type=content_type)

    return router


def _v1_routes(runtime: Runtime) -> APIRouter:
    # 400: a body that is not UTF-8 JSON at all; 422: JSON that does not fit the model.
    router = APIRouter(prefix="/v1", responses={code: s.ERRORS[code] for code in (400, 401, 413, 422, 503)})
    ready = Depends(_ready(runtime))

    @router.get("/info", response_model=s.InfoResponse, tags=["index"])
    def info(rt: Runtime = ready) -> s.InfoResponse:
        """The index's facts, its bundle manifest and the request limits."""
        return rt.info()

    @router.post("/search", response_model=s.SearchResponse, tags=["index"])
    async def search(body: s.SearchRequest, rt: Runtime = ready) -> s.SearchResponse:
        """Top-k responses for a whole context (stateless: nothing is stored)."""
        start = time.perf_counter()
        selection = await rt.select_contexts(list(body.turns), body.k)
        return rt.search_response(selection, start, "/v1/search")

    @router.post("/sessions", status_code=201, response_model=s.SessionOut, tags=["sessions"])
    def create_session(rt: Runtime = ready) -> s.SessionOut:
        """Start a conversation."""
        return s.SessionOut(id=rt.create_session(), turns=[])

    @router.get("/sessions/{session_id}", response_model=s.SessionOut, responses={404: s.ERRORS[404]},
                tags=["sessions"])
    def get_session(session_id: str = SessionId, rt: Runtime = ready) -> s.SessionOut:
        """The conversation's turns, oldest first (without their cached states)."""
        return rt.session_out(session_id)

    @router.delete("/sessions/{session_id}", status_code=204, response_class=Response,
                   responses={404: s.ERRORS[404]}, tags=["sessions"])
    def delete_session(session_id: str = SessionId, rt: Runtime = ready) -> Response:
        """Forget the conversation."""
        rt.delete_session(session_id)
        return Response(status_code=204)

    @router.post("/sessions/{session_id}/turns", response_model=s.TurnResponse, responses={404: s.ERRORS[404]},
                 tags=["sessions"])
    def add_turn(body: s.TurnRequest, session_id: str = SessionId, rt: Runtime = ready) -> s.TurnResponse:
        """Commit one utterance (encoding only it), then return candidates for the reply after it."""
        return rt.add_turn(session_id, body, time.perf_counter())

    return router
