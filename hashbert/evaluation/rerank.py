"""RerankEvaluator: the 10-candidate protocol over any model that can score candidates.

A model takes part by having ``rerank_scores(groups, batch_size=..., progress=...) -> list[(n,) array]``
(higher = better; hashing models return negated Hamming distances): DR-BERT, HDR-BERT (cosine or
MaxSim) and their hashing models all go through ``load_model`` and this one call. The metrics and their tie rule
live in ``metrics.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hashbert.evaluation.metrics import rerank_metrics
from hashbert.sampling import seeded_subsample

logger = logging.getLogger(__name__)

SCORING_SUFFIX = {"symmetric": "sym", "asymmetric": "asym"}


class RerankEvaluator:
    """Score every group's candidates with a model and average R10@k, MRR, P@1 and MAP over the groups.

    Args:
        groups: ``RerankGroup``s (context, candidates, labels).
        batch_size: encoding batch size handed to the model.
        progress: show progress bars while the model encodes.
    """

    primary_metric = "R10@1"
    greater_is_better = True

    def __init__(self, groups: Sequence, batch_size: int = 64, progress: bool = False) -> None:
        if not groups:
            raise ValueError("RerankEvaluator needs at least one group")
        self.groups = list(groups)
        self.batch_size = batch_size
        self.progress = progress
        self.labels = [np.asarray(g.labels) for g in self.groups]

    def __call__(self, model: Any) -> dict[str, float]:
        """Returns the metrics as fractions (plus ``contexts``, ``skipped`` and ``seconds``)."""
        started = time.perf_counter()
        scores = model.rerank_scores(self.groups, batch_size=self.batch_size, progress=self.progress)
        metrics = rerank_metrics(scores, self.labels)
        metrics["seconds"] = time.perf_counter() - started
        return metrics


def evaluate_rerank_models(
    test_path: str,
    model_dirs: Sequence[str] | None,
    zero_shot: bool = False,
    base_model: str = "all-MiniLM-L6-v2",
    names: Sequence[str] | None = None,
    batch_size: int = 64,
    max_groups: int = 0,
    seed: int = 0,
    progress: bool = False,
    scorings: Sequence[str] = ("symmetric",),
) -> list[tuple[str, dict[str, float]]]:
    """Table rows ``(name, metrics)`` for the untrained base encoder (if ``zero_shot``) and each saved model.

    The zero-shot row uses the first saved model's text settings (truncation, pooling) when there is
    one, so the two rows differ only in training. Hashing models (those with a ``scoring`` attribute)
    give one row per entry of ``scorings`` (``symmetric``: Hamming; ``asymmetric``: float context . ±1
    code), suffixed `` sym``/`` asym`` when there are several.
    """
    from hashbert.config import DualEncoderConfig, EncoderConfig
    from hashbert.data import existing_speakers_path, read_rerank_groups
    from hashbert.models.dual_encoder import DualEncoder
    from hashbert.models.registry import load_model

    model_dirs = list(model_dirs or [])
    names = list(names or [])
    if len(names) > len(model_dirs):
        raise ValueError(f"{len(names)} --name given for {len(model_dirs)} --model")
    # Recorded speakers (a .speakers sidecar) reach SA-BERT; every other model ignores them.
    groups = seeded_subsample(read_rerank_groups(test_path, speakers_path=existing_speakers_path(test_path)), max_groups, seed)
    evaluator = RerankEvaluator(groups, batch_size=batch_size, progress=progress)
    models = [load_model(d) for d in model_dirs]
    rows = []
    if zero_shot:
        encoders = [m.config.encoder for m in models if hasattr(m.config, "encoder")]
        encoder = encoders[0] if encoders else EncoderConfig(model=base_model)
        base = DualEncoder.from_base(DualEncoderConfig(encoder=encoder, shared=True))
        rows.append((f"zero-shot {encoder.model}", evaluator(base)))
    for i, (directory, model) in enumerate(zip(model_dirs, models, strict=True)):
        default = f"{getattr(model, 'row_name', 'DR-BERT')} ({directory})"  # HDR, hashing and cross-encoders name themselves
        name = names[i] if i < len(names) else default
        for scoring in scorings if hasattr(model, "scoring") else [None]:
            if scoring is not None:
                model.scoring = scoring
            suffix = f" {SCORING_SUFFIX.get(scoring, scoring)}" if scoring is not None and len(scorings) > 1 else ""
            rows.append((name + suffix, evaluator(model)))
            logger.info("%s: %s", rows[-1][0], {k: round(v, 4) for k, v in rows[-1][1].items()})
    return rows
