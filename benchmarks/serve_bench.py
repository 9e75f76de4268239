"""Load test of ``hashbert serve`` on localhost: turns/s, p50/p99 per turn, errors and server RSS.

Starts the real server (a subprocess, 127.0.0.1, a fresh sessions database) over a bundle and drives it
with an asyncio HTTP client:

* load: 1, 8 and 32 concurrent sessions of 20 turns each (each turn: POST /v1/sessions/{id}/turns with a
  real Chit-Chat utterance); turns/s, p50 and p99 latency, errors (must be 0);
* soak (HDR bundle): ``--soak-turns`` turns (default 10,000) over 32 sessions; server RSS before and after;
* per-turn latency by turn number (1, 5, 10, 20) for an HDR bundle against a DR-BERT bundle, one session
  at a time (DR-BERT re-encodes the whole history each turn; HDR encodes only the newest utterance).

Bounded in count and time, localhost only. Latency does not depend on training, so ``--make-bundles``
builds the two bundles from the untrained base encoder (a DualEncoder and an HDR model on it) over the
first ``--pool-size`` responses of a pool file:

    python benchmarks/serve_bench.py --make-bundles runs/bench --pool runs/chitchat/responses.txt
    python benchmarks/serve_bench.py --dr-bundle runs/bench/dr --hdr-bundle runs/bench/hdr \\
        --dialogues runs/chitchat/test.txt
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def make_bundles(out: Path, pool: Path, pool_size: int) -> None:
    """A zero-shot DR-BERT bundle and an (untrained-aggregator) HDR bundle over the first ``pool_size`` lines."""
    from hashbert.config import DualEncoderConfig, HdrConfig
    from hashbert.models.dual_encoder import DualEncoder
    from hashbert.models.hdr.model import HdrModel
    from hashbert.serving.bundle import build_bundle

    out.mkdir(parents=True, exist_ok=True)
    lines = pool.read_text(encoding="utf-8").splitlines()[:pool_size]
    (out / "pool.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    DualEncoder.from_base(DualEncoderConfig()).save(out / "dual-model")
    HdrModel.build(HdrConfig(), dual_encoder_dir=out / "dual-model").save(out / "hdr-model")
    build_bundle(out / "dual-model", out / "pool.txt", out / "dr")
    build_bundle(out / "hdr-model", out / "pool.txt", out / "hdr")


def utterances(path: Path, n: int) -> list[str]:
    """Real turns to send: the context turns of a response-selection file, in order."""
    seen: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for turn in line.split("\t")[1:-1]:
            if turn and turn not in seen[-3:]:
                seen.append(turn)
        if len(seen) >= n:
            break
    return seen[:n]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process and its children (uvicorn workers), MB, from /proc."""
    total = 0
    pids = [pid, *_children(pid)]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(k) for k in kids] + [g for k in kids for g in _children(int(k))]


class Server:
    """``hashbert serve`` in a subprocess on a free port; waits for /readyz."""

    def __init__(self, bundle: Path, extra: list[str]) -> None:
        self.port, self.tmp = free_port(), tempfile.TemporaryDirectory()
        command = [
            sys.executable, "-m", "hashbert.cli", "serve", "--bundle", str(bundle), "--port", str(self.port),
            "--sessions-db", str(Path(self.tmp.name) / "sessions.db"), *extra,
        ]
        self.process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        raise RuntimeError("server not ready in 300 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.tmp.cleanup()


async def _session(client: httpx.AsyncClient, texts: list[str], turns: int, k: int, latencies: list) -> int:
    """One conversation of ``turns`` user turns; returns its error count; appends (turn number, seconds)."""
    errors = 0
    created = await client.post("/v1/sessions")
    if created.status_code != 201:
        return turns
    sid = created.json()["id"]
    for number in range(1, turns + 1):
        text = texts[(number * 7 + len(latencies)) % len(texts)]
        started = time.perf_counter()
        reply = await client.post(f"/v1/sessions/{sid}/turns", json={"text": text, "k": k})
        latencies.append((number, time.perf_counter() - started))
        errors += reply.status_code != 200
    return errors


async def drive(url: str, texts: list[str], sessions: int, turns: int, k: int) -> dict[str, float]:
    """``sessions`` concurrent conversations of ``turns`` turns: turns/s, p50/p99 ms, errors."""
    latencies: list[tuple[int, float]] = []
    limits = httpx.Limits(max_connections=sessions + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        errors = await asyncio.gather(*(_session(client, texts, turns, k, latencies) for _ in range(sessions)))
        seconds = time.perf_counter() - started
    ms = np.array([s for _, s in latencies]) * 1000
    return {
        "sessions": sessions, "turns": len(latencies), "turns/s": len(latencies) / seconds,
        "p50 ms": float(np.percentile(ms, 50)), "p99 ms": float(np.percentile(ms, 99)), "errors": sum(errors),
        "by_turn": {
            n: statistics.median(s * 1000 for m, s in latencies if m == n) for n in (1, 5, 10, 20) if n <= turns
        },
    }


def load_table(bundle: Path, texts: list[str], args: argparse.Namespace, soak: bool) -> list[dict]:
    server = Server(bundle, ["--threads", str(args.threads)])
    try:
        rows = []
        for sessions in args.sessions:
            rows.append(asyncio.run(drive(server.url, texts, sessions, args.turns, args.k)))
        if not soak:
            return rows
        before = rss_mb(server.process.pid)
        soak_sessions = 32
        soak = asyncio.run(drive(server.url, texts, soak_sessions, max(1, args.soak_turns // soak_sessions), args.k))
        soak["rss before MB"], soak["rss after MB"] = before, rss_mb(server.process.pid)
        return [*rows, soak]
    finally:
        server.stop()


def per_turn(bundle: Path, texts: list[str], args: argparse.Namespace) -> dict[int, float]:
    server = Server(bundle, ["--threads", str(args.threads)])
    try:
        results = [asyncio.run(drive(server.url, texts, 1, 20, args.k)) for _ in range(args.repeats)]
        return {n: statistics.median(r["by_turn"][n] for r in results) for n in (1, 5, 10, 20)}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make-bundles", type=Path, help="build the DR-BERT and HDR bundles under this directory")
    parser.add_argument("--pool", type=Path, help="response pool for --make-bundles")
    parser.add_argument("--pool-size", type=int, default=115_709, help="responses of --pool to index")
    parser.add_argument("--dr-bundle", type=Path)
    parser.add_argument("--hdr-bundle", type=Path)
    parser.add_argument("--dialogues", type=Path, help="response-selection file whose context turns are sent")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--turns", type=int, default=20, help="turns per session")
    parser.add_argument("--soak-turns", type=int, default=10_000, help="turns of the RSS soak (32 sessions)")
    parser.add_argument("--repeats", type=int, default=5, help="sessions per bundle for the per-turn table")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="the server's torch and faiss threads")
    parser.add_argument("--bundles", nargs="+", default=["HDR", "DR-BERT"], help="which load tables to run")
    parser.add_argument("--skip-per-turn", action="store_true", help="only the load tables")
    args = parser.parse_args(argv)
    if args.make_bundles:
        make_bundles(args.make_bundles, args.pool, args.pool_size)
        return 0
    texts = utterances(args.dialogues, 2000)
    print("| bundle | sessions | turns | turns/s | x 1 session | p50 ms | p99 ms | errors | RSS before -> after MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, bundle in (("HDR", args.hdr_bundle), ("DR-BERT", args.dr_bundle)):
        if name not in args.bundles:
            continue
        rows = load_table(bundle, texts, args, soak=name == "HDR")
        for row in rows:
            rss = f"{row['rss before MB']:.0f} -> {row['rss after MB']:.0f}" if "rss before MB" in row else ""
            print(f"| {name} | {row['sessions']} | {row['turns']} | {row['turns/s']:.1f} | "
                  f"{row['turns/s'] / rows[0]['turns/s']:.2f} | {row['p50 ms']:.1f} | {row['p99 ms']:.1f} | "
                  f"{row['errors']} | {rss} |", flush=True)
    if args.skip_per_turn:
        return 0
    hdr, dr = per_turn(args.hdr_bundle, texts, args), per_turn(args.dr_bundle, texts, args)
    print("\n| turn | HDR p50 ms | DR-BERT p50 ms | DR-BERT / HDR |\n|---|---|---|---|")
    for n in (1, 5, 10, 20):
        print(f"| {n} | {hdr[n]:.1f} | {dr[n]:.1f} | {dr[n] / hdr[n]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
