"""Train Hash-BERT's hashing heads on a trained DR-BERT (frozen: on cached vectors; or with its top layers).

Frozen (the default): the training pairs are encoded once with the DR-BERT and cached (``data.vector_cache``:
a fingerprint of model, data and selection guards against stale vectors), then the heads train on
the vectors with the shared ``Trainer``; each step costs a few small matrix products, so this is fast
on a CPU. With ``unfreeze_layers > 0`` the top layers of both towers train with the heads on text,
as slowly as DR-BERT itself; the fine-tuned encoder is then saved inside the model directory.

References: Hash-BERT (arXiv 2012.09647) sec. 3-4.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hashbert.config import (
    DataConfig,
    HardNegativeConfig,
    HashBertConfig,
    HashConfig,
    HashEncoderConfig,
    HashLossConfig,
    TrainConfig,
    config_to_dict,
)
from hashbert.data.bm25 import near_copy_key
from hashbert.data.vector_cache import group_vectors, pair_vectors
from hashbert.evaluation.hashing import VectorRerankEvaluator
from hashbert.io import write_json
from hashbert.losses.hash_bert import HashBertLoss
from hashbert.models.dual_encoder import DualEncoder
from hashbert.models.hashing.hash_bert import HashBert, referencing
from hashbert.models.hashing.lsh import ITQ
from hashbert.models.hashing.scoring import code_stats, codes_of, index_groups
from hashbert.models.hashing.tower_heads import HashHeads
from hashbert.training.distributed import active, gather, is_main, main_process_first
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.hard_negatives import HardNegativeMiner, negatives_fingerprint
from hashbert.training.inputs import load_training_pairs, load_valid_evaluator
from hashbert.training.schedules import bpr_beta
from hashbert.training.trainer import Trainer, resolve_device

logger = logging.getLogger(__name__)


class StepLoss:
    """``compute_loss`` for the Trainer that also knows the step (for beta) and records the loss parts.

    Args:
        loss_at: ``(batch, step) -> scalar``.
        loss_module: a loss with ``last_parts``, read after every call.
    """

    def __init__(self, loss_at: Callable[[Any, int], torch.Tensor], loss_module: nn.Module) -> None:
        self.loss_at, self.loss_module = loss_at, loss_module
        self.trainer: Trainer | None = None
        self.parts: list[dict[str, float]] = []

    def __call__(self, batch: Any) -> torch.Tensor:
        loss = self.loss_at(batch, self.trainer.state.step if self.trainer else 0)
        self.parts.append(dict(getattr(self.loss_module, "last_parts", {})))
        return loss

    def summary(self, windows: int = 20) -> list[dict[str, float]]:
        """The recorded parts averaged over ``windows`` equal spans of the steps of this call."""
        if not self.parts:
            return []
        spans = np.array_split(np.arange(len(self.parts)), min(windows, len(self.parts)))
        return [
            {"step_end": int(span[-1]) + 1,
             **{k: float(np.mean([self.parts[i][k] for i in span])) for k in self.parts[span[0]]}}
            for span in spans
        ]


def code_negatives_collate(
    heads: HashHeads, miner: HardNegativeMiner, context_np: np.ndarray, response_np: np.ndarray,
    step_of: Callable[[], int],
) -> Callable[[list[int]], dict[str, torch.Tensor]]:
    """``collate(pair indices)`` whose ``response_vecs`` are the batch's responses followed by each context's
    ``hard_per_context`` mined negatives (cached vectors): the heads' own Hamming top-k over the distinct training
    responses, re-mined with the current heads every ``hard_refresh_every`` steps (``step_of()`` is the step).
    The loss scores every context against all of them (``SimilarityPreservingLoss``'s extra negatives).

    Args:
        context_np, response_np: (n_pairs, dim) cached vectors, row i of pair i of ``miner.pairs``.
    """
    rows_of: dict[str, int] = {}  # distinct response text -> a row of response_np holding its vector
    for i, pair in enumerate(miner.pairs):
        rows_of.setdefault(pair.response, i)
    texts = list(rows_of)
    pool_vecs = response_np[[rows_of[t] for t in texts]]
    pool_ids = [miner.pool.id_of(t) for t in texts]
    context_t, response_t = torch.from_numpy(context_np), torch.from_numpy(response_np)

    def mine() -> None:
        context_codes = codes_of(heads.context_hash_vectors(context_np))
        miner.mine_with_codes(context_codes, codes_of(heads.response_hash_vectors(pool_vecs)), pool_ids)

    def collate(indices: list[int]) -> dict[str, torch.Tensor]:
        step = step_of()
        miner.refresh(step, mine)
        rows = torch.as_tensor(indices)
        # the negatives are shared by the batch: one that is a near-copy of another context's positive is dropped
        positives = {near_copy_key(miner.pairs[i].response) for i in indices}
        drawn = [text for i in indices for text in miner.draw(i, step)]
        negatives = torch.as_tensor([rows_of[t] for t in drawn if near_copy_key(t) not in positives], dtype=torch.long)
        return {"context_vecs": context_t[rows], "response_vecs": torch.cat([response_t[rows], response_t[negatives]])}

    return collate


def beta_for(config: HashConfig, step: int) -> float:
    """The ``tanh(beta h)`` scale at ``step`` (only ``scaled_tanh`` uses it)."""
    return bpr_beta(step, config.gamma) if config.relax == "scaled_tanh" else 1.0


def fit_hashing(
    trained: nn.Module, model: HashBert, step_loss: StepLoss, examples: Sequence, collate: Callable,
    train: TrainConfig, out_dir: Path, evaluator: Callable | None, dedupe_key: Callable | None, extra: dict[str, Any],
    fingerprint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the shared Trainer on ``trained`` (heads, or the whole model), save ``model`` and ``run.json``.

    ``fingerprint`` (``run_fingerprint``) is what a resume must find unchanged.

    Returns: the run summary (also in ``out_dir/run.json``).
    """
    trainer = Trainer(
        trained, step_loss, examples, collate, train, out_dir, evaluator=evaluator, dedupe_key=dedupe_key,
        fingerprint=fingerprint,
    )
    step_loss.trainer = trainer
    state = trainer.fit()
    summary = {**trainer.summary(), **extra, "loss_parts": step_loss.summary(), "n_bits": model.n_bits}
    summary["state"].pop("losses", None)  # the curve is in loss_parts, averaged
    if not trainer.main:  # under torchrun, rank 0 alone writes
        return summary
    model.save(out_dir / "model")
    write_json(out_dir / "run.json", summary)
    logger.info("trained %d steps in %.0f s; model saved to %s", state.step, state.seconds, out_dir / "model")
    return summary


def train_hash_heads(
    hash_config: HashConfig, loss_config: HashLossConfig, encoder: HashEncoderConfig, data: DataConfig,
    train: TrainConfig, out_dir: str | Path, negatives: HardNegativeConfig | None = None,
) -> dict[str, Any]:
    """Train Hash-BERT heads on ``encoder.dual_encoder`` and save the HashBert to ``out_dir/model``.

    ``out_dir`` also holds the resumable checkpoints, ``run.json`` (configs, pairs, time, loss parts
    over time, validation metrics, code statistics) and, unless ``encoder.cache_dir`` says otherwise,
    the vector cache. ``negatives`` ``model`` adds each context's hard negatives from the heads' own Hamming
    top-k over the cached training responses, re-mined every ``hard_refresh_every`` steps.
    """
    negatives = negatives or HardNegativeConfig()
    _check_negatives(negatives, encoder)
    if not encoder.dual_encoder:
        raise ValueError("--dual-encoder is required: the trained DR-BERT directory")
    if not data.train:
        raise ValueError("--train is required")
    if hash_config.init == "itq" and hash_config.hidden:
        raise ValueError(f"--init itq sets linear heads: use --hidden 0 (got {hash_config.hidden}) or --init random")
    dual = DualEncoder.load(encoder.dual_encoder)
    pairs, _ = load_training_pairs(data, dual.config.encoder.max_context_turns, train.seed)
    torch.manual_seed(train.seed)
    heads = HashHeads(hash_config, dual.dim, decoders=loss_config.reconstruction_weight > 0)
    model = HashBert(HashBertConfig(hash=hash_config, in_dim=dual.dim, decoders=heads.has_decoders), dual, heads)
    extra = {
        "pairs": len(pairs), "hash": config_to_dict(hash_config), "loss": config_to_dict(loss_config),
        "encoder": config_to_dict(encoder), "data": config_to_dict(data), "negatives": config_to_dict(negatives),
    }
    fingerprint = run_fingerprint(
        data, {"dual_encoder": encoder.dual_encoder}, hash=hash_config, loss=loss_config, encoder=encoder,
        **negatives_fingerprint(negatives),
    )
    if encoder.unfreeze_layers:
        return _train_joint(model, HashBertLoss(loss_config), pairs, encoder, data, train, Path(out_dir), extra,
                            fingerprint)
    return _train_on_vectors(model, HashBertLoss(loss_config), pairs, encoder, data, train, Path(out_dir), extra,
                             fingerprint, negatives)


def _check_negatives(negatives: HardNegativeConfig, encoder: HashEncoderConfig) -> None:
    """The heads mine with their own codes, on cached vectors, in one process."""
    if negatives.hard_negatives == "none":
        return
    if negatives.hard_negatives != "model":
        raise ValueError(
            f"train hash mines hard negatives with the heads' own codes: --hard-negatives model or none, "
            f"got {negatives.hard_negatives!r}"
        )
    if encoder.unfreeze_layers:
        raise ValueError("--hard-negatives model needs the cached vectors of a frozen encoder: --unfreeze-layers 0")
    if active():
        raise ValueError("--hard-negatives model trains the heads in one process (not under torchrun)")


def _train_joint(model, loss, pairs, encoder, data, train, out_dir, extra, fingerprint) -> dict[str, Any]:
    """Heads and the top ``encoder.unfreeze_layers`` layers together, on text; the encoder is embedded.

    ``--init itq`` fits ITQ on the starting encoder's cached vectors of ``pairs`` first (as a frozen run does), so
    the joint run starts where a frozen run's heads start rather than from a random projection.
    """
    if model.config.hash.init == "itq":
        _itq_start(model, pairs, encoder, data, train, out_dir, extra)
    model.config = dataclasses.replace(model.config, encoder_embedded=True)
    model.trainable_encoder_layers(encoder.unfreeze_layers)
    hash_config = model.config.hash

    def joint_loss(batch, step):
        context_vecs, response_vecs, out = gather(model(**batch, beta=beta_for(hash_config, step)))
        return loss(**vars(out), context_vecs=context_vecs, response_vecs=response_vecs)

    valid = load_valid_evaluator(data, train.seed, encoder.encode_batch_size)
    return fit_hashing(
        model, model, StepLoss(joint_loss, loss), pairs, model.collate, train, out_dir, valid,
        lambda pair: pair.response, extra, fingerprint,
    )


def _cached_pair_vectors(dual, pairs, encoder, data, train, out_dir) -> tuple[np.ndarray, np.ndarray]:
    """(n_pairs, dim) context and response vectors of ``pairs`` by the DR-BERT, from (or into) the vector cache."""
    selection = {"expansion": data.expansion, "max_train_pairs": data.max_train_pairs, "seed": train.seed,
                 "max_context_turns": dual.config.encoder.max_context_turns}
    dual.to(resolve_device(train.device))  # the training device encodes the cache too (a GPU: ~119k pairs in seconds)
    with main_process_first():  # under torchrun the others read what rank 0 encoded
        return pair_vectors(
            dual, Path(encoder.dual_encoder), pairs, {"train": data.train}, selection, _cache_dir(encoder, out_dir),
            encoder.encode_batch_size, train.progress,
        )


def _cache_dir(encoder: HashEncoderConfig, out_dir: Path) -> Path:
    return Path(encoder.cache_dir) if encoder.cache_dir else out_dir / "cache"


def _itq_start(model, pairs, encoder, data, train, out_dir, extra, evaluator=None) -> tuple[np.ndarray, np.ndarray]:
    """Fit ITQ on the cached vectors of ``pairs`` and start the heads from it; returns those vectors."""
    context_np, response_np = _cached_pair_vectors(model.dual_encoder, pairs, encoder, data, train, out_dir)
    itq = ITQ(model.config.hash.n_bits, seed=train.seed).fit(context_np, response_np)
    model.heads.init_linear(itq.projection, itq.context_mean, itq.response_mean)
    if evaluator is not None:
        extra["init_validation"] = evaluator(model.heads)
        logger.info("ITQ initialisation: validation %s", {k: round(v, 4) for k, v in extra["init_validation"].items()})
    return context_np, response_np


def _train_on_vectors(model, loss, pairs, encoder, data, train, out_dir, extra, fingerprint, negatives) -> dict:
    """The heads alone on cached DR-BERT vectors of ``pairs`` (and of the validation groups)."""
    dual, heads, hash_config = model.dual_encoder, model.heads, model.config.hash
    dual_dir, cache_dir = Path(encoder.dual_encoder), _cache_dir(encoder, out_dir)
    dual.to(resolve_device(train.device))  # it encodes the validation groups first
    evaluator = None
    valid = load_valid_evaluator(data, train.seed, encoder.encode_batch_size)
    if valid is not None:
        index = index_groups(valid.groups)
        params = {"max_valid_groups": data.max_valid_groups, "seed": train.seed}
        with main_process_first():
            vecs = group_vectors(
                dual, dual_dir, index, {"valid": data.valid}, params, cache_dir, encoder.encode_batch_size
            )
        evaluator = VectorRerankEvaluator(valid.groups, *vecs)
    if hash_config.init == "itq":
        context_np, response_np = _itq_start(model, pairs, encoder, data, train, out_dir, extra, evaluator)
    else:
        context_np, response_np = _cached_pair_vectors(dual, pairs, encoder, data, train, out_dir)
    context_t, response_t = torch.from_numpy(context_np), torch.from_numpy(response_np)

    def heads_loss(batch, step):
        out = heads(batch["context_vecs"], batch["response_vecs"], beta_for(hash_config, step))
        out, batch = gather((out, batch))
        return loss(**vars(out), context_vecs=batch["context_vecs"], response_vecs=batch["response_vecs"])

    def collate(indices: list[int]) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(indices)
        return {"context_vecs": context_t[rows], "response_vecs": response_t[rows]}

    step_loss = StepLoss(heads_loss, loss)
    if negatives.hard_negatives == "model":
        miner = HardNegativeMiner.for_run(negatives, pairs, data, train)
        collate = code_negatives_collate(heads, miner, context_np, response_np, lambda: step_loss.trainer.state.step)
    model.config = referencing(model.config, dual_dir)
    summary = fit_hashing(
        heads, model, step_loss, list(range(len(pairs))), collate, train, out_dir, evaluator,
        lambda i: pairs[i].response, extra, fingerprint,
    )
    summary["train_code_stats"] = code_stats(codes_of(heads.response_hash_vectors(response_np)), hash_config.n_bits)
    if is_main():
        write_json(out_dir / "run.json", summary)
    return summary
