"""Data-parallel training under ``torchrun``: the process group, gradient averaging, a gather that keeps the
local gradient, and the few agreements the Trainer needs so that every process takes the same steps.

Without torchrun (``WORLD_SIZE`` unset or 1) every function here is the one-process identity and nothing is
set up. With it, the first call joins the process group from torchrun's environment: gloo for CPU tensors,
NCCL for CUDA ones (each process on the GPU ``LOCAL_RANK``).

Batches: ``--batch-size`` is per process. Step s draws the global batch ``batch_order(n, b * N)[s]`` and
process r takes its rows ``[r b, (r + 1) b)``, so N processes see exactly the examples one process sees with
``--batch-size b * N`` (and the duplicate-response rule holds across the whole global batch).

Gradients: ``gather`` concatenates every process's rows (dim 0; other dims padded to the largest) and keeps
gradients for the local rows only, as DPR does. A loss over gathered tensors is then the one-process loss of
the global batch, on every process, and each process holds its gradient through its own rows; these sum to
the global gradient. ``average_gradients`` divides the sum by N (as DDP does, so that per-example losses over
local rows, BCE or LM, average to the global mean), so ``gather``'s backward multiplies its rows' gradient by N.

References: Karpukhin et al. 2020 (DPR) sec. 3.2 and its ``all_gather`` of question and passage vectors;
PyTorch DistributedDataParallel (gradient averaging).
"""

from __future__ import annotations

import atexit
import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from hashbert.training.launch import process_count, process_rank

T = TypeVar("T")
_BUCKET = 1 << 24  # gradient elements per all-reduce (64 MB of float32)


def active() -> bool:
    """True when torchrun started more than one process."""
    return process_count() > 1


def setup() -> None:
    """Join torchrun's process group (once; a no-op for one process)."""
    if not active() or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    atexit.register(dist.destroy_process_group)


def is_main() -> bool:
    """Rank 0: the process that writes checkpoints, models, logs and the progress bar."""
    return process_rank() == 0


def rank_seed(seed: int) -> int:
    """The torch seed of this process: ``seed`` on rank 0 (a plain run is unchanged), a derived one elsewhere
    (so that dropout masks differ between processes)."""
    rank = process_rank()
    return seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def barrier() -> None:
    """Wait for every process (an all-reduce of a CPU tensor: gloo, whatever the model's device)."""
    if active():
        dist.all_reduce(torch.zeros(1))


@contextmanager
def main_process_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the others: they find the caches rank 0 wrote."""
    setup()
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def mean_and_any(value: float, flag: bool) -> tuple[float, bool]:
    """The mean of ``value`` over processes and whether any process raised ``flag`` (one small all-reduce)."""
    if not active():
        return value, flag
    both = torch.tensor([value, float(flag)], dtype=torch.float64)
    dist.all_reduce(both)
    return float(both[0]) / process_count(), bool(both[1] > 0)


def broadcast_object(value: T) -> T:
    """Rank 0's ``value`` on every process (picklable objects: validation metrics)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_objects(value: T) -> list[T]:
    """Every process's ``value``, by rank (picklable objects: RNG states for rank 0's checkpoint)."""
    if not active():
        return [value]
    values: list[Any] = [None] * process_count()
    dist.all_gather_object(values, value)
    return values


def broadcast_parameters(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process (a fresh run starts from one set of weights)."""
    if not active():
        return
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)


def average_gradients(model: nn.Module) -> None:
    """Replace each gradient by its mean over processes, in flat buckets of at most ``_BUCKET`` elements.

    Every process must hold gradients for the same parameters (the same graph on every rank's shard).
    """
    if not active():
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    bucket: list[torch.Tensor] = []
    for grad in grads:
        if bucket and (sum(g.numel() for g in bucket) + grad.numel() > _BUCKET or grad.dtype != bucket[0].dtype):
            _average_bucket(bucket)
            bucket = []
        bucket.append(grad)
    if bucket:
        _average_bucket(bucket)


def _average_bucket(grads: list[torch.Tensor]) -> None:
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= process_count()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


class _GatherRows(torch.autograd.Function):
    """All processes' rows of a tensor, concatenated by rank; gradient for the local rows only, times N."""

    @staticmethod
    def forward(ctx, local: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        shape = torch.tensor(local.shape, dtype=torch.int64)
        shapes = [torch.empty_like(shape) for _ in range(process_count())]
        dist.all_gather(shapes, shape)
        sizes = torch.stack(shapes)  # (N, ndim)
        largest = sizes.max(0).values.tolist()
        padded = local.new_zeros(largest)
        padded[tuple(slice(0, n) for n in local.shape)] = local
        wire = padded.to(torch.uint8) if local.dtype == torch.bool else padded  # gloo sends no bool
        parts = [torch.empty_like(wire) for _ in range(process_count())]
        dist.all_gather(parts, wire.contiguous())
        rows = sizes[:, 0].tolist()
        ctx.offset, ctx.local_shape = sum(rows[: process_rank()]), local.shape
        out = torch.cat([part[:n] for part, n in zip(parts, rows, strict=True)])  # (sum rows, *largest[1:])
        return out.to(local.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rows = slice(ctx.offset, ctx.offset + ctx.local_shape[0])
        local = grad[(rows, *(slice(0, n) for n in ctx.local_shape[1:]))]
        return local * process_count()


def gather(value: T) -> T:
    """Every process's rows of each tensor in ``value`` (a tensor, None, or a tuple, list, dict or dataclass of
    them), concatenated by rank along dim 0; the identity for one process. See the module docstring for the
    gradient; padding in dims >= 1 (multi-vector outputs, masks) is zeros (False)."""
    if not active() or value is None:
        return value
    if isinstance(value, torch.Tensor):
        return _GatherRows.apply(value)
    if isinstance(value, (tuple, list)):
        items = [gather(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # a NamedTuple, or not
    if isinstance(value, dict):
        return {key: gather(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: gather(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **fields)
    raise TypeError(f"gather: cannot gather a {type(value).__name__}")
