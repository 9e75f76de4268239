"""``LocalMilvus``: a Milvus standalone server on this machine, started and stopped from Python (tests, benchmarks).

The server runs in its own environment (``.venv-milvus``, made by ``scripts/setup_env.sh dev``) through
``scripts/milvus_server.py``, in a new process group with its data in a directory of the caller's choosing, so a
stop, a ``kill -9`` and a restart on the same directory behave as they would for a real deployment.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SERVER_PYTHON_ENV = "HASHBERT_MILVUS_PYTHON"


def server_python() -> Path:
    """The Python of the server's environment: ``$HASHBERT_MILVUS_PYTHON`` or ``.venv-milvus/bin/python``."""
    return Path(os.environ.get(SERVER_PYTHON_ENV) or REPO / ".venv-milvus" / "bin" / "python")


def missing_server_reason() -> str | None:
    """Why no local server can be started (``None`` when one can): the server or the client is not installed."""
    python = server_python()
    if not python.is_file():
        return f"no Milvus server environment at {python} (run: bash scripts/setup_env.sh dev)"
    from hashbert.index.milvus_client import _pymilvus

    try:
        _pymilvus()
    except ImportError:
        return "pymilvus is not installed (pip install 'hashbert[milvus]')"
    return None


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalMilvus:
    """One Milvus 2.3 standalone server process group.

    Args:
        data: the server's data directory (kept across ``stop``/``start``).
        port: the gRPC port; default a free one, kept across restarts so the URI stays the same.
    """

    def __init__(self, data: str | Path, port: int | None = None) -> None:
        self.data = Path(data)
        self.port = port or free_port()
        self._proc: subprocess.Popen | None = None
        self._log = self.data.parent / f"{self.data.name}.server.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pids(self) -> list[int]:
        """The ids of the launcher and the server processes (for reading their memory)."""
        if self._proc is None:
            return []
        group = self._proc.pid
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == group]

    def start(self, timeout: float = 240.0) -> LocalMilvus:
        """Start the server and return once it answers requests; ``RuntimeError`` with its log tail if it does not."""
        if reason := missing_server_reason():
            raise RuntimeError(reason)
        launcher = REPO / "scripts" / "milvus_server.py"
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(
                [str(server_python()), str(launcher), "--data", str(self.data), "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        started = time.monotonic()
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() - started > timeout:
                tail = self._log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"Milvus did not start on port {self.port}; its log ends with:\n{tail}")
            time.sleep(1.0)
        logger.info("Milvus answers at %s after %.1f s", self.uri, time.monotonic() - started)
        return self

    def _answers(self) -> bool:
        from hashbert.index.milvus_client import _pymilvus

        pymilvus = _pymilvus()
        alias = f"probe-{self.port}"
        try:
            pymilvus.connections.connect(alias=alias, uri=self.uri, timeout=2)
            pymilvus.utility.list_collections(using=alias, timeout=5)
            return True
        except Exception:  # not up yet: connection refused, no rootcoord yet, ...
            return False
        finally:
            pymilvus.connections.disconnect(alias)

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after ``grace`` seconds."""
        if self._proc is None:
            return
        group = self._proc.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while self._proc.poll() is None or self.pids:  # poll() reaps the launcher, so it is not listed
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        self._proc = None

    def __enter__(self) -> LocalMilvus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
