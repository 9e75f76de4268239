"""``hashbert serve``: run the app under uvicorn, in one process or several workers.

One worker gets the app object. Several workers (``--workers N``) each import the app from
``app_from_env``, which rebuilds it from the bundle and settings the parent put into ``HASHBERT_SERVE``;
the parent also points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory so ``/metrics`` sums every
worker. Workers share sessions through the SQLite database (see ``hashbert.serving.sessions``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from hashbert.config import config_from_dict, config_to_dict
from hashbert.config.serving import ServeConfig

logger = logging.getLogger(__name__)

SETTINGS_ENV = "HASHBERT_SERVE"


def _check(bundle_dir: str | Path, settings: ServeConfig) -> None:
    """Refuse, before any worker starts, what would only fail later: no bundle, an unreadable key file."""
    from hashbert.serving.bundle import read_manifest
    from hashbert.serving.guards import read_api_key

    read_manifest(bundle_dir)
    if settings.api_key_file:
        read_api_key(settings.api_key_file)
    Path(settings.sessions_db).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def passive_openmp_threads() -> None:
    """Make OpenMP threads sleep, not spin, while they wait (unless the user chose otherwise).

    faiss (its own OpenBLAS and libgomp) and torch each run an OpenMP pool; by default an idle pool spins.
    In a server the two pools, the HTTP threads and the batcher share the cores, and a spinning pool starves
    the thread it waits for: on this project's 2-core machine, a batch of 32 float queries over 116k vectors
    took 1,850 ms with two faiss threads spinning and 80 ms with them sleeping (one query: 13 ms either way).
    libgomp reads the setting when it is loaded, so this must run before faiss or torch is imported.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    loaded = [name for name in ("faiss", "torch") if name in sys.modules]
    if loaded:
        logger.warning("%s already imported: its OpenMP threads may spin while waiting", " and ".join(loaded))


def serve(bundle_dir: str | Path, settings: ServeConfig) -> None:
    """Serve ``bundle_dir`` until interrupted (Ctrl-C or SIGTERM end it cleanly)."""
    passive_openmp_threads()
    try:
        import uvicorn
    except ImportError as err:  # pragma: no cover - a dependency of hashbert
        raise ImportError("hashbert serve needs uvicorn and fastapi: pip install hashbert") from err
    _check(bundle_dir, settings)
    where = {"host": settings.host, "port": settings.port, "log_level": "info"}
    if settings.workers == 1:
        from hashbert.serving.app import create_app

        uvicorn.run(create_app(bundle_dir, settings), **where)
        return
    os.environ[SETTINGS_ENV] = json.dumps({"bundle": str(bundle_dir), "settings": config_to_dict(settings)})
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hashbert-metrics-")
    logger.info("%d workers; metrics of every worker in %s", settings.workers, os.environ["PROMETHEUS_MULTIPROC_DIR"])
    uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=settings.workers, **where)


def app_from_env():
    """The app of one worker process, from the bundle and settings in ``HASHBERT_SERVE``."""
    from hashbert.serving.app import create_app

    told = json.loads(os.environ[SETTINGS_ENV])
    return create_app(told["bundle"], config_from_dict(ServeConfig, told["settings"]))
