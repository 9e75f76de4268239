"""Train hashing heads on a frozen HDR-BERT (BPR-HDR-BERT): three recipes over cached HDR vectors.

The training pairs are those of the HDR run (same subsample), encoded once by the frozen HDR model and
cached (``data.vector_cache``: fingerprinted by model, data and selection); the ``HashHeads`` of
Hash-BERT then train on the vectors with the shared ``Trainer`` through ``hash_training.fit_hashing``.
Recipes:

* ``bpr``: ``tanh(beta h)`` with ``beta = sqrt(1 + gamma * step)`` (``--relax scaled_tanh``), the
  ``BprLoss`` of BPR: margin ranking on codes against in-batch negatives + float context . codes
  cross-entropy;
* ``similarity``: the similarity-preserving loss alone (``HashBertLoss`` with the other weights at 0);
* ``vae``: similarity + quantization + decoder reconstruction MSE (``VaeLoss``, the seed's VAELoss).

References: HDR + DSH (ACM TOIS 2023) sec. 4; BPR (ACL 2021) sec. 3; Hash-BERT (arXiv 2012.09647) sec. 3.3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hashbert.config import DataConfig, HashConfig, HashLossConfig, HdrHashTrainConfig, TrainConfig, config_to_dict
from hashbert.data.vector_cache import group_vectors, pair_vectors
from hashbert.evaluation.hashing import VectorRerankEvaluator
from hashbert.losses.bpr import BprLoss
from hashbert.losses.hash_bert import HashBertLoss
from hashbert.losses.vae import VaeLoss
from hashbert.models.hashing.scoring import index_groups
from hashbert.models.hdr.hashing import heads_model
from hashbert.models.hdr.model import HdrModel
from hashbert.training.distributed import gather, main_process_first
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.hash_training import StepLoss, beta_for, fit_hashing
from hashbert.training.inputs import load_training_pairs, load_valid_evaluator

logger = logging.getLogger(__name__)


def recipe_loss(recipe: HdrHashTrainConfig) -> nn.Module:
    """The loss module of ``recipe.recipe``."""
    if recipe.recipe == "bpr":
        return BprLoss(recipe.margin, recipe.candidate_weight, recipe.rerank_weight)
    similarity = HashLossConfig(
        similarity=recipe.similarity, temperature=recipe.temperature, reconstruction_weight=0.0,
        quantization_weight=recipe.quantization_weight if recipe.recipe == "vae" else 0.0,
    )
    if recipe.recipe == "vae":
        return VaeLoss(similarity, recipe.reconstruction_weight)
    return HashBertLoss(similarity)


def train_hdr_hash(
    recipe: HdrHashTrainConfig, hash_config: HashConfig, data: DataConfig, train: TrainConfig, out_dir: str | Path
) -> dict[str, Any]:
    """Train heads on ``recipe.hdr`` and save the ``HdrHash`` to ``out_dir/model``; returns the run summary."""
    if not recipe.hdr or not data.train:
        raise ValueError("--hdr (a trained HDR model directory) and --train are required")
    out_dir = Path(out_dir)
    hdr = HdrModel.load(recipe.hdr)
    pairs, _ = load_training_pairs(data, hdr.config.max_turns, train.seed)
    torch.manual_seed(train.seed)
    loss = recipe_loss(recipe)
    model = heads_model(hdr, recipe.hdr, hash_config, decoders=recipe.recipe == "vae", recipe=recipe.recipe)
    heads = model.hasher
    cache_dir = Path(recipe.cache_dir) if recipe.cache_dir else out_dir / "cache"
    selection = {"expansion": data.expansion, "max_train_pairs": data.max_train_pairs, "seed": train.seed,
                 "max_context_turns": hdr.config.max_turns}
    with main_process_first():  # under torchrun the others read what rank 0 encoded
        context_np, response_np = pair_vectors(
            hdr, recipe.hdr, pairs, {"train": data.train}, selection, cache_dir, recipe.encode_batch_size,
            train.progress,
        )
    evaluator = None
    valid = load_valid_evaluator(data, train.seed, recipe.encode_batch_size)
    if valid is not None:
        params = {"max_valid_groups": data.max_valid_groups, "seed": train.seed}
        with main_process_first():
            vectors = group_vectors(
                hdr, recipe.hdr, index_groups(valid.groups), {"valid": data.valid}, params, cache_dir,
                recipe.encode_batch_size,
            )
        evaluator = VectorRerankEvaluator(valid.groups, *vectors)
    context_t, response_t = torch.from_numpy(context_np), torch.from_numpy(response_np)

    def loss_at(batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        context_vecs, response_vecs = batch["context_vecs"], batch["response_vecs"]
        out, context_float = heads(context_vecs, response_vecs, beta_for(hash_config, step)), None
        if recipe.recipe == "bpr":
            context_float = heads.context_float_outputs(context_vecs)
        # under torchrun: every process's rows, the in-batch negatives of the global batch
        out, context_float, context_vecs, response_vecs = gather((out, context_float, context_vecs, response_vecs))
        if recipe.recipe == "bpr":
            return loss(context_float, out.context_hash, out.response_hash)
        if recipe.recipe == "vae":
            return loss(**vars(out), context_vecs=context_vecs, response_vecs=response_vecs)
        return loss(out.context_hash, out.response_hash)

    def collate(indices: list[int]) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(indices)
        return {"context_vecs": context_t[rows], "response_vecs": response_t[rows]}

    extra = {
        "pairs": len(pairs), "recipe": config_to_dict(recipe), "hash": config_to_dict(hash_config),
        "data": config_to_dict(data), "loss_config": loss.get_config_dict(),
    }
    return fit_hashing(
        heads, model, StepLoss(loss_at, loss), list(range(len(pairs))), collate, train, out_dir, evaluator,
        lambda i: pairs[i].response, extra,
        fingerprint=run_fingerprint(data, {"hdr": recipe.hdr}, recipe=recipe, hash=hash_config),
    )
