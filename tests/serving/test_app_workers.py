"""``hashbert serve --workers 2``: two real worker processes over one sessions database. Concurrent clients on
one session lose no turn and keep their order whichever worker takes each request, sessions select what an
in-process conversation selects, and ``/metrics`` adds up the requests of both workers."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

CLIENTS, TURNS = 6, 3


def _process_group(pgid: int) -> list[int]:
    """The pids of the live processes in process group ``pgid`` (from /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def _post_turn(url: str, sid: str, text: str) -> dict:
    response = httpx.post(f"{url}/v1/sessions/{sid}/turns", json={"text": text, "k": 3}, timeout=120)  # new connection
    assert response.status_code == 200, response.text
    return response.json()


def test_two_workers_share_sessions_without_losing_or_reordering_turns(served_retriever, serve_process, tmp_path):
    process, url = serve_process(tmp_path / "sessions.sqlite", tmp_path / "serve.log", "--workers", "2")
    assert len(_process_group(process.pid)) >= 3  # the parent and its two workers
    sid = httpx.post(f"{url}/v1/sessions").json()["id"]

    def client(number: int) -> list[dict]:
        return [_post_turn(url, sid, f"client {number} says line {turn}") for turn in range(TURNS)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [answer for answers in pool.map(client, range(CLIENTS)) for answer in answers]
    stored = httpx.get(f"{url}/v1/sessions/{sid}").json()["turns"]
    assert [turn["index"] for turn in stored] == list(range(CLIENTS * TURNS))
    assert sorted(answer["turn"]["index"] for answer in answers) == list(range(CLIENTS * TURNS))
    for number in range(CLIENTS):
        mine = [turn["text"] for turn in stored if turn["text"].startswith(f"client {number} says")]
        assert mine == [f"client {number} says line {turn}" for turn in range(TURNS)]

    alone = served_retriever.new_conversation()
    for turn in stored:  # the session's order, re-played in this process
        alone.add(turn["text"], 0)
    last = max(answers, key=lambda answer: answer["turn"]["index"])
    assert [c["id"] for c in last["candidates"]] == [
        c.id for c in served_retriever.select_conversations([alone], 3)[0].candidates
    ]

    metrics = httpx.get(f"{url}/metrics").text
    counted = sum(float(value) for value in re.findall(
        r'hashbert_http_requests_total\{[^}]*route="/v1/sessions/\{session_id\}/turns"[^}]*status="200"[^}]*\} (\S+)',
        metrics,
    ))
    assert counted == CLIENTS * TURNS  # both workers' requests, summed
    os.killpg(process.pid, 15)
    process.wait(30)


def test_the_serve_command_makes_openmp_threads_sleep_before_faiss_or_torch_loads():
    import subprocess
    import sys

    code = (
        "import os, sys; os.environ.pop('OMP_WAIT_POLICY', None)\n"
        "import hashbert.cli, hashbert.serving.server as server\n"
        "assert 'faiss' not in sys.modules and 'torch' not in sys.modules, 'loaded too early'\n"
        "server.passive_openmp_threads(); print(os.environ['OMP_WAIT_POLICY'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "PASSIVE"
