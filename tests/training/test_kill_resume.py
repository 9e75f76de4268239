"""`hashbert train dual` killed by Ctrl-C or kill -9 at seeded random moments, then rerun: bit-identical results.

Each trial starts the tiny real run (the real encoder at test lengths, 8 steps of 8 pairs, a checkpoint every
2 steps, one thread), waits for a given checkpoint, sleeps a seeded delay, sends the signal and reruns the same
command to completion. The model file and the per-step losses must equal those of one uninterrupted run.
Trials and the reference run side by side (as many as there are CPUs) to keep the test near a minute.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from hashbert.io import read_json, sha256_file

TINY = [
    "--max-train-pairs", "64", "--batch-size", "8", "--max-steps", "8", "--save-every", "2", "--threads", "1",
    "--max-context-length", "48", "--max-response-length", "16", "--max-context-turns", "4", "--no-progress",
]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
# name -> (signal, seed); each seed draws (checkpoint, delay): 2 -> (2, 0.07 s), 5 -> (4, 0.59 s),
# 1 -> (2, 0.46 s), 7 -> (4, 0.76 s): both signals early and late, right after a checkpoint and mid-step
TRIALS = {"sigint-a": (signal.SIGINT, 2), "sigint-b": (signal.SIGINT, 5), "sigkill-a": (signal.SIGKILL, 1),
          "sigkill-b": (signal.SIGKILL, 7)}
EXIT = {signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}  # the CLI's Ctrl-C status; killed by the signal


@dataclass
class Outcome:
    """One run's result and, for a trial, how it was killed (kept in failure messages)."""

    model_sha256: str
    losses: list[float]
    leftovers: list[str]
    kill: str = ""
    exit_status: int = 0


def _command(train: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "hashbert.cli", "train", "dual", "--train", str(train), *TINY, "--out", str(out)]


def _finish(train: Path, out: Path, kill: str = "", exit_status: int = 0) -> Outcome:
    """Run the command to completion and read what it produced."""
    with open(out.parent / f"{out.name}.log", "a") as log:
        subprocess.run(_command(train, out), env=ENV, stdout=log, stderr=log, check=True, timeout=600)
    leftovers = sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.endswith((".tmp", ".old")))
    losses = read_json(out / "run.json")["state"]["losses"]
    return Outcome(sha256_file(out / "model" / "model.safetensors"), losses, leftovers, kill, exit_status)


def _latest_step(out: Path) -> int:
    try:
        return int((out / "checkpoints" / "LATEST").read_text().strip().removeprefix("step-") or -1)
    except (FileNotFoundError, ValueError):
        return -1


def _kill_and_rerun(train: Path, out: Path, sig: signal.Signals, seed: int) -> Outcome:
    """Start the run, signal it ``delay`` s after checkpoint ``after`` (both seeded), then rerun it to the end."""
    rng = random.Random(seed)
    after, delay = rng.choice((2, 4)), rng.uniform(0.0, 0.8)
    out.mkdir(parents=True)
    with open(out.parent / f"{out.name}.log", "w") as log:
        process = subprocess.Popen(_command(train, out), env=ENV, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 600
            while _latest_step(out) < after and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
            process.send_signal(sig)
            status = process.wait(timeout=600)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    kill = f"{sig.name} {delay:.2f} s after step-{after}, stopped at step-{_latest_step(out)}"
    return _finish(train, out, kill, status)


@pytest.fixture(scope="module")
def outcomes(small_corpus, module_tmp) -> dict[str, Outcome]:
    """The reference run and every trial, run side by side."""
    train, root = small_corpus / "train.txt", module_tmp
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=max(1, min(len(TRIALS) + 1, cpus))) as pool:
        futures = {"reference": pool.submit(_finish, train, root / "reference")}
        for name, (sig, seed) in TRIALS.items():
            futures[name] = pool.submit(_kill_and_rerun, train, root / name, sig, seed)
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("trial", sorted(TRIALS))
def test_killed_run_resumes_bit_identical(outcomes, trial):
    reference, outcome = outcomes["reference"], outcomes[trial]
    assert outcome.exit_status == EXIT[TRIALS[trial][0]], outcome.kill
    assert outcome.losses == reference.losses, outcome.kill
    assert outcome.model_sha256 == reference.model_sha256, outcome.kill
    assert not outcome.leftovers, outcome.kill  # a kill -9 mid-save leaves temporaries the rerun removes
    assert len(reference.losses) == 8 and not reference.leftovers
