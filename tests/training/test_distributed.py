"""`hashbert train dual` under the real torchrun (2 CPU processes, gloo) against one plain process.

Two processes with ``--batch-size b`` must take the steps one process takes with ``2b`` on the same data and
seed: the same per-step losses and the same weights, within float tolerance (each process encodes its half of
the global batch, the in-batch negatives are gathered from both, the gradients averaged). The encoder is the
real all-MiniLM-L6-v2 with its dropout set to 0 in a copy of its config (dropout masks drawn for two halves
cannot equal those drawn for the whole batch); everything else is the shipped code path. The 2-process run
then resumes exactly from its step-2 checkpoint, and a 1-process resume of it is refused. Last, the gather
itself, for each contrastive loss (multi-vector rows of unequal padding, dataclass outputs): two spawned gloo
processes reach the one-process loss and gradient of the global batch.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from hashbert.cli import main
from hashbert.config import HashLossConfig
from hashbert.io import read_json
from hashbert.losses.bpr import BprLoss
from hashbert.losses.hash_bert import HashBertLoss
from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.losses.maxsim import MaxSimInBatchLoss
from hashbert.models.hashing.tower_heads import HashOutputs

B = 4  # pairs per process
STEPS = 4
ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")},
    "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


@pytest.fixture(scope="module")
def encoder_without_dropout(tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2's files, linked, with a config whose dropout probabilities are 0."""
    from hashbert.models.encoder import resolve_model_dir

    source, copy = resolve_model_dir("all-MiniLM-L6-v2"), tmp_path_factory.mktemp("minilm-no-dropout")
    for path in source.iterdir():
        if path.name != "config.json":
            (copy / path.name).symlink_to(path)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return copy


def _args(corpus: Path, encoder: Path, batch_size: int, out: Path) -> list[str]:
    return [
        "train", "dual", "--train", str(corpus / "train.txt"), "--model", str(encoder), "--max-train-pairs", "64",
        "--batch-size", str(batch_size), "--max-steps", str(STEPS), "--save-every", "2", "--keep-checkpoints", "5",
        "--lr", "2e-4", "--max-context-length", "32", "--max-response-length", "16", "--max-context-turns", "4",
        "--no-progress", "--device", "cpu", "--out", str(out),
    ]


def _run(command: list[str], log: Path) -> str:
    """Run ``command`` to completion (its output in ``log``); return its stdout."""
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, f"{command} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def runs(small_corpus, encoder_without_dropout, module_tmp) -> dict[str, Path | str]:
    """One plain process with batch 2b and torchrun's two with b, side by side."""
    root = module_tmp
    one = [sys.executable, "-m", "hashbert.cli", *_args(small_corpus, encoder_without_dropout, 2 * B, root / "one")]
    two = [*TORCHRUN, "-m", "hashbert.cli", *_args(small_corpus, encoder_without_dropout, B, root / "two")]
    with ThreadPoolExecutor(2) as pool:
        stdout_one, stdout_two = pool.map(_run, [one, two], [root / "one.log", root / "two.log"])
    return {"one": root / "one", "two": root / "two", "stdout_two": stdout_two, "root": root}


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "model.safetensors"))


def _losses(out: Path) -> list[float]:
    return read_json(out / "run.json")["state"]["losses"]


def test_two_processes_take_the_steps_of_one_with_the_doubled_batch(runs, encoder_without_dropout):
    one, two = _losses(runs["one"]), _losses(runs["two"])
    assert len(one) == len(two) == STEPS
    assert two == pytest.approx(one, rel=1e-5, abs=1e-6), (one, two)
    w_one, w_two = _weights(runs["one"]), _weights(runs["two"])
    start = load_file(str(encoder_without_dropout / "model.safetensors"))
    assert w_one.keys() == w_two.keys()
    # the two runs differ by float noise, next to how far training moved the weights (a norm over every weight:
    # parameters whose gradient is 0 up to rounding, as the attention key biases, see Adam magnify that noise)
    start = {k: start.get(k.split(".", 2)[-1]) for k in w_one}  # tower prefix, then the base model's name
    gap = sum(float((w_one[k] - w_two[k]).pow(2).sum()) for k in w_one) ** 0.5
    moved = sum(float((w_one[k] - start[k]).pow(2).sum()) for k in w_one if start[k] is not None) ** 0.5
    assert gap < 1e-3 * moved, (gap, moved)


def test_rank_zero_alone_writes_and_prints(runs):
    two = runs["two"]
    assert runs["stdout_two"].count("trained DR-BERT") == 1
    record = read_json(two / "run.json")
    assert record["processes"] == 2 and record["fingerprint"]["processes"] == 2
    assert record["config"]["batch_size"] == B
    rng = load_file(str(two / "checkpoints" / "step-0000004" / "rng.safetensors"))
    assert {"torch", "torch.1"} <= rng.keys() and not torch.equal(rng["torch"], rng["torch.1"])
    names = sorted(p.name for p in (two / "checkpoints").iterdir() if not p.name.startswith("."))  # not versions
    assert names == ["LATEST", "step-0000002", "step-0000004"]


def test_two_processes_resume_exactly(runs, small_corpus, encoder_without_dropout):
    resumed = runs["root"] / "resumed"
    shutil.copytree(runs["two"], resumed, symlinks=True)  # checkpoints are links to versions beside them
    (resumed / "checkpoints" / "LATEST").write_text("step-0000002\n", encoding="utf-8")
    command = [*TORCHRUN, "-m", "hashbert.cli", *_args(small_corpus, encoder_without_dropout, B, resumed)]
    stdout = _run(command, runs["root"] / "resumed.log")
    assert "4 steps" in stdout
    assert _losses(resumed) == _losses(runs["two"])
    w_resumed, w_two = _weights(resumed), _weights(runs["two"])
    assert all(torch.equal(w_resumed[k], w_two[k]) for k in w_two)


def test_resuming_with_another_number_of_processes_is_refused(runs, small_corpus, encoder_without_dropout, capsys):
    assert main(_args(small_corpus, encoder_without_dropout, B, runs["two"])) == 2
    err = capsys.readouterr().err
    assert "written by 2 training process(es), this run has 1" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------- the gather alone

H = 8  # vector size of the gather cases


def _loss_cases() -> dict:
    """name -> (model: (projection, *rows) -> outputs, loss: *outputs -> scalar, global rows): the contrastive
    losses the recipes gather for, over a linear "model"."""
    g = torch.Generator().manual_seed(0)
    vecs = [torch.randn(2 * B, H, generator=g) for _ in range(2)]
    multi = [torch.randn(2 * B, 5, H, generator=g) for _ in range(2)]
    # valid vectors per row: rank 0's rows use at most 3 of 5 slots, rank 1's all 5 (unequal padding)
    masks = [torch.arange(5)[None, :] < torch.tensor([1, 2, 3, 2, 5, 1, 4, 2])[:, None] for _ in range(2)]
    hashing = HashBertLoss(HashLossConfig(similarity="distill", quantization_weight=0.1, reconstruction_weight=0.0))
    return {
        "in_batch": (lambda p, c, r: (p(c), p(r)), InBatchSoftmaxLoss(), vecs),
        "maxsim": (lambda p, c, cm, r, rm: (p(c), cm, p(r), rm), MaxSimInBatchLoss(0.1),
                   [multi[0], masks[0], multi[1], masks[1]]),
        "hash_bert": (lambda p, c, r: (HashOutputs(torch.tanh(p(c)), torch.tanh(p(r))), c, r),
                      lambda out, c, r: hashing(**vars(out), context_vecs=c, response_vecs=r), vecs),
        "bpr": (lambda p, c, r: (p(c), torch.tanh(p(c)), torch.tanh(p(r))), BprLoss(), vecs),
    }


def _local_rows(tensors: list[torch.Tensor], rank: int) -> list[torch.Tensor]:
    """Rank ``rank``'s rows, multi-vector ones cut to their own longest row (as a local batch is padded)."""
    rows = [t[rank * B : (rank + 1) * B] for t in tensors]
    masks = [t for t in rows if t.dtype == torch.bool]
    if masks:
        width = max(int(m.sum(1).max()) for m in masks)
        rows = [t[:, :width] if t.ndim > 1 and t.shape[1] == 5 else t for t in rows]
    return rows


def _gather_child(rank: int, port: int) -> None:
    """One of two gloo processes: every case's gathered loss and averaged gradient equal the global ones."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from hashbert.training import distributed

    torch.set_num_threads(1)
    distributed.setup()
    assert distributed.mean_and_any(float(rank), rank == 1) == (0.5, True)
    for name, (model, loss, inputs) in _loss_cases().items():
        torch.manual_seed(1)
        reference, local = nn.Linear(H, H), nn.Linear(H, H)
        local.load_state_dict(reference.state_dict())
        expected = loss(*model(reference, *inputs))
        expected.backward()
        value = loss(*distributed.gather(model(local, *_local_rows(inputs, rank))))
        value.backward()
        distributed.average_gradients(local)
        assert torch.allclose(value, expected, rtol=1e-5), (name, value, expected)
        for got, want in zip(local.parameters(), reference.parameters(), strict=True):
            assert torch.allclose(got.grad, want.grad, rtol=1e-4, atol=1e-6), (name, got.grad - want.grad)


def test_gather_gives_every_loss_its_global_batch_and_gradient(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))  # spawned children import this module by name
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(_gather_child, args=(port,), nprocs=2)
