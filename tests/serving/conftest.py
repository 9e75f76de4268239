"""Shared fixtures of the serving tests: one real bundle (a small HDR model over ~300 real Chit-Chat responses),
built once per session, and its loaded retriever."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

POOL_SIZE = 300


@pytest.fixture(scope="session")
def served_model_dir(tmp_path_factory) -> Path:
    """A small HDR-BERT-Trs-MV on the real encoder, untrained (a non-trivial merge so the aggregator counts)."""
    import torch

    from hashbert.config import EncoderConfig, HdrConfig
    from hashbert.models.hdr.model import HdrModel

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = HdrConfig(
        encoder=EncoderConfig(max_response_length=16, max_context_turns=4), aggregator="trs-mv",
        utterance_length=16, vectors_per_utterance=3, layers=2, heads=4, ffn_dim=256,
    )
    model = HdrModel.build(config)
    with torch.no_grad():
        model.aggregator.merge.weight.add_(0.05 * torch.randn_like(model.aggregator.merge.weight))
    return Path(model.eval().save(tmp_path_factory.mktemp("served-model") / "model"))


@pytest.fixture(scope="session")
def served_bundle(served_model_dir, small_corpus, tmp_path_factory) -> Path:
    """``build_bundle`` over the first ``POOL_SIZE`` real responses of the small corpus (read-only for tests)."""
    from hashbert.serving.bundle import build_bundle

    root = tmp_path_factory.mktemp("served-bundle")
    lines = (small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines()[:POOL_SIZE]
    responses = root / "responses.txt"
    responses.write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_bundle(served_model_dir, responses, root / "bundle", progress=False)
    return root / "bundle"


@pytest.fixture(scope="session")
def served_retriever(served_bundle):
    """The bundle's ``Retriever``, loaded once (apps under test share it; never mutate it)."""
    from hashbert.serving.retriever import Retriever

    return Retriever.load(served_bundle, threads=1)


@contextmanager
def running_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture()
def serve_app(served_bundle, served_retriever, tmp_path):
    """``serve_app(**settings) -> base URL`` of a live app on the shared retriever (sessions in tmp_path)."""
    from hashbert.config.serving import ServeConfig
    from hashbert.serving.app import create_app

    with ExitStack() as stack:

        def serve(**settings) -> str:
            settings.setdefault("sessions_db", str(tmp_path / "sessions.sqlite"))
            app = create_app(served_bundle, ServeConfig(**settings), retriever=served_retriever)
            return stack.enter_context(running_server(app))

        yield serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen, url: str, log: Path, ready_in_a_row: int) -> None:
    """Until ``/readyz`` answers 200 on ``ready_in_a_row`` fresh connections in a row (several workers: each
    connection may reach another one); fails with the server's log if it exits or takes too long."""
    import httpx

    deadline, in_a_row = time.monotonic() + 180, 0
    while in_a_row < ready_in_a_row:
        if process.poll() is not None:
            pytest.fail(f"hashbert serve exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"hashbert serve was not ready in time:\n{log.read_text(errors='replace')}")
        try:
            in_a_row = in_a_row + 1 if httpx.get(f"{url}/readyz", timeout=2).status_code == 200 else 0
        except httpx.TransportError:
            in_a_row = 0
        if in_a_row == 0:
            time.sleep(0.2)


@pytest.fixture()
def serve_process(served_bundle):
    """``serve_process(database, log, *flags) -> (process, base URL)``: ``hashbert serve`` of the shared bundle as
    a real process, once ready; processes still running at the end are killed."""
    started: list[subprocess.Popen] = []

    def start(database: Path, log: Path, *flags: str) -> tuple[subprocess.Popen, str]:
        port = _free_port()
        command = [sys.executable, "-m", "hashbert.cli", "serve", "--bundle", str(served_bundle), "--port", str(port),
                   "--sessions-db", str(database), "--threads", "1", *flags]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(process, url, log, ready_in_a_row=20 if "--workers" in flags else 1)
        return process, url

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait(30)
