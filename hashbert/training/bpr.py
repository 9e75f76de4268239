"""Train BPR: a dual-encoder and linear hashing layers together, from the pretrained base encoder.

The result is a ``HashBert`` (recipe ``bpr``) whose heads are single linear layers (``hidden = 0``)
and whose fine-tuned encoder is embedded in the model directory. Codes are ``tanh(beta h)`` in
training with ``beta = sqrt(1 + gamma * step)`` (``schedules.bpr_beta``), or a straight-through sign.
Search: Hamming distance for candidates, then the float context output against the ±1 response
codes (the ``asym`` rows of ``evaluate hashing``).

References: Yamada et al., "Efficient Passage Retrieval with Hashing for Open-domain Question
Answering" (BPR, ACL 2021) sec. 3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from hashbert.config import (
    BprConfig,
    DataConfig,
    DualEncoderConfig,
    HashBertConfig,
    HashConfig,
    TrainConfig,
    config_to_dict,
)
from hashbert.losses.bpr import BprLoss
from hashbert.models.dual_encoder import DualEncoder
from hashbert.models.hashing.hash_bert import HashBert
from hashbert.models.hashing.tower_heads import HashHeads
from hashbert.training.distributed import gather
from hashbert.training.fingerprint import run_fingerprint
from hashbert.training.hash_training import StepLoss, beta_for, fit_hashing
from hashbert.training.inputs import load_training_pairs, load_valid_evaluator

logger = logging.getLogger(__name__)


def build_bpr(config: BprConfig) -> HashBert:
    """A fresh BPR model: two towers of the pretrained ``config.encoder.model`` and linear hashing layers."""
    dual = DualEncoder.from_base(DualEncoderConfig(encoder=config.encoder))
    hash_config = HashConfig(n_bits=config.n_bits, hidden=0, dropout=0.0, relax=config.relax, gamma=config.gamma)
    heads = HashHeads(hash_config, dual.dim, decoders=False)
    model_config = HashBertConfig(
        hash=hash_config, in_dim=dual.dim, decoders=False, recipe="bpr", encoder_embedded=True
    )
    return HashBert(model_config, dual, heads)


def train_bpr(config: BprConfig, data: DataConfig, train: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Fit BPR on ``data.train`` (whole encoder trainable) and save it to ``out_dir/model``; returns the summary."""
    if not data.train:
        raise ValueError("--train is required")
    pairs, _ = load_training_pairs(data, config.encoder.max_context_turns, train.seed)
    logger.info("training BPR (%d bits) on %d pairs from %s", config.n_bits, len(pairs), data.train)
    torch.manual_seed(train.seed)
    model = build_bpr(config)
    model.trainable_encoder_layers(None)
    loss = BprLoss(config.margin, config.candidate_weight, config.rerank_weight)
    hash_config = model.config.hash

    def bpr_loss(batch, step):
        context_vecs, _, out = model(**batch, beta=beta_for(hash_config, step))
        return loss(*gather((model.heads.context_float_outputs(context_vecs), out.context_hash, out.response_hash)))

    extra = {"pairs": len(pairs), "bpr": config_to_dict(config), "data": config_to_dict(data)}
    return fit_hashing(
        model, model, StepLoss(bpr_loss, loss), pairs, model.collate, train, Path(out_dir),
        load_valid_evaluator(data, train.seed), lambda pair: pair.response, extra,
        fingerprint=run_fingerprint(data, bpr=config),
    )
