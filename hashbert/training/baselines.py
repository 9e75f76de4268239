"""Fit the ITQ baseline on the same cached DR-BERT training vectors the Hash-BERT heads train on.

References: Gong & Lazebnik, "Iterative Quantization" (CVPR 2011).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from hashbert.config import DataConfig
from hashbert.data.vector_cache import pair_vectors
from hashbert.models.dual_encoder import DualEncoder
from hashbert.models.hashing.lsh import ITQ
from hashbert.training.inputs import load_training_pairs

logger = logging.getLogger(__name__)


def fit_itq_models(
    dual_encoder_dir: str | Path, data: DataConfig, bits: Sequence[int], out_dir: str | Path,
    cache_dir: str | Path | None = None, seed: int = 42, batch_size: int = 64, progress: bool = False,
) -> list[Path]:
    """Fit one ITQ per code length on DR-BERT vectors of the training pairs; save each to ``out_dir/itq-<b>``.

    The pair selection (``data.max_train_pairs`` subsampled with ``seed``) and the cache are those of
    ``train_hash_heads`` with the same settings, so the vectors are encoded only once.

    Returns:
        The saved model directories, in ``bits`` order.
    """
    out_dir = Path(out_dir)
    dual = DualEncoder.load(dual_encoder_dir)
    pairs, _ = load_training_pairs(data, dual.config.encoder.max_context_turns, seed)
    selection = {"expansion": data.expansion, "max_train_pairs": data.max_train_pairs, "seed": seed,
                 "max_context_turns": dual.config.encoder.max_context_turns}
    context_vecs, response_vecs = pair_vectors(
        dual, dual_encoder_dir, pairs, {"train": data.train}, selection, cache_dir or out_dir / "cache",
        batch_size, progress,
    )
    saved = []
    for n_bits in bits:
        started = time.perf_counter()
        itq = ITQ(n_bits, seed=seed).fit(context_vecs, response_vecs)
        saved.append(itq.save(out_dir / f"itq-{n_bits}"))
        logger.info("ITQ %d bits fitted on %d pairs in %.1f s", n_bits, len(pairs), time.perf_counter() - started)
    return saved
