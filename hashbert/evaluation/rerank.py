"""RerankEvaluator: the 10-candidate protocol over any model that can score candidates.

A model takes part by having ``rerank_scores(groups, batch_size=..., progress=...) -> list[(n,) array]``
(higher = better; hashing models return negated Hamming distances): DR-BERT, HDR-BERT (cosine or
MaxSim) and their hashing models all go through ``load_model`` and this one call. The metrics and their tie rule
live in ``metrics.py``.

A test file with another number n of candidates per context (the reader requires the same n in every
group) is scored as ``R{n}@k`` for the cut-offs k < n, and its table columns say so (``rerank_columns``):
R5@1 is not R10@1, and printing it under an R10@1 heading (or leaving that column blank) would mislead.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hashbert.config.inference import InferenceConfig
from hashbert.data.sampling import seeded_subsample
from hashbert.evaluation.metrics import rerank_keys, rerank_metrics

logger = logging.getLogger(__name__)

SCORING_SUFFIX = {"symmetric": "sym", "asymmetric": "asym"}
STANDARD_CANDIDATES = 10
STANDARD_KS = (1, 2, 5)


def rerank_ks(n_candidates: int) -> tuple[int, ...]:
    """The standard cut-offs below ``n_candidates``: R{n}@k for k >= n counts every candidate, always 1."""
    return tuple(k for k in STANDARD_KS if k < n_candidates)


def rerank_columns(rows: Sequence[tuple[str, dict[str, float]]]) -> tuple[str, ...]:
    """Table columns for rows of ``RerankEvaluator`` metrics: ``R{n}@k`` for their group size n, MRR, P@1, MAP.

    Raises:
        ValueError: rows scored on different group sizes (their R@k cannot share a column).
    """
    sizes = {int(m.group(1)) for _, metrics in rows for key in metrics if (m := re.fullmatch(r"R(\d+)@\d+", key))}
    if len(sizes) > 1:
        raise ValueError(f"rows of different group sizes {sorted(sizes)} cannot share one table")
    n_candidates = sizes.pop() if sizes else STANDARD_CANDIDATES
    return rerank_keys(n_candidates, rerank_ks(n_candidates))


class RerankEvaluator:
    """Score every group's candidates with a model and average R{n}@k, MRR, P@1 and MAP over the groups.

    Args:
        groups: ``RerankGroup``s (context, candidates, labels), all with the same n >= 2 candidates
            (10 in the standard protocol, giving ``R10@1``, ``R10@2``, ``R10@5``).
        batch_size: encoding batch size handed to the model.
        progress: show progress bars while the model encodes.

    Attributes:
        n_candidates: candidates per group; ``primary_metric`` is ``R{n}@1``; ``columns`` the table columns.
    """

    greater_is_better = True

    def __init__(self, groups: Sequence, batch_size: int = 64, progress: bool = False) -> None:
        if not groups:
            raise ValueError("RerankEvaluator needs at least one group")
        self.groups = list(groups)
        self.n_candidates = _common_group_size(self.groups)
        self.ks = rerank_ks(self.n_candidates)
        self.primary_metric = f"R{self.n_candidates}@1"
        self.columns = rerank_keys(self.n_candidates, self.ks)
        self.batch_size = batch_size
        self.progress = progress
        self.labels = [np.asarray(g.labels) for g in self.groups]

    def __call__(self, model: Any) -> dict[str, float]:
        """Returns the metrics as fractions (plus ``contexts``, ``skipped`` and ``seconds``)."""
        started = time.perf_counter()
        scores = model.rerank_scores(self.groups, batch_size=self.batch_size, progress=self.progress)
        metrics = rerank_metrics(scores, self.labels, ks=self.ks)
        metrics["seconds"] = time.perf_counter() - started
        return metrics


def _common_group_size(groups: Sequence) -> int:
    """The candidates per group, refusing groups of one (every metric would be 1) and mixed sizes."""
    n_candidates = len(groups[0].candidates)
    for group in groups:
        if len(group.candidates) != n_candidates:
            where = f"group at line {group.line_no}"
            raise ValueError(f"{where} has {len(group.candidates)} candidates, the first has {n_candidates}")
    if n_candidates < 2:
        raise ValueError(f"re-ranking needs at least 2 candidates per group, got {n_candidates}")
    return n_candidates


def one_of_n_groups(groups: Sequence, n_candidates: int, seed: int) -> list:
    """ConveRT's 1-of-N protocol: each context's positive against ``n_candidates - 1`` other test responses.

    The negatives are drawn (seeded, without replacement) from the distinct positives of the *other* groups,
    never a text equal to this group's positive; the file's own negatives are dropped.

    Args:
        groups: ``RerankGroup``s with exactly one positive each.
        n_candidates: N, e.g. 100 for R100@1.
        seed: sampling seed.

    Returns:
        New groups, positive first, ``n_candidates`` candidates each.

    References: Henderson et al. 2020 (ConveRT) sec. 4.2, "1-of-100 ranking accuracy".
    """
    from hashbert.data import RerankGroup

    if any(g.n_positives != 1 for g in groups):
        raise ValueError("the 1-of-N protocol needs exactly one positive per context")
    positives = [next(c for c, label in zip(g.candidates, g.labels, strict=True) if label) for g in groups]
    pool = list(dict.fromkeys(positives))
    if len(pool) < n_candidates:
        raise ValueError(f"1-of-{n_candidates} needs {n_candidates} distinct test responses, the file has {len(pool)}")
    rng = np.random.default_rng(seed)
    out = []
    for group, positive in zip(groups, positives, strict=True):
        draw = rng.choice(len(pool), n_candidates, replace=False)  # one spare in case it draws the positive
        negatives = [pool[j] for j in draw if pool[j] != positive][: n_candidates - 1]
        labels = (1,) + (0,) * len(negatives)
        out.append(RerankGroup(group.context, (positive, *negatives), labels, group.line_no, group.speakers))
    return out


def newest_turn_groups(groups: Sequence, n_turns: int) -> list:
    """The groups with each context cut to its newest ``n_turns`` turns (and their speakers); candidates unchanged.

    A history ablation: a model scored on these, against the same model on the whole contexts, shows how much of
    its ranking the earlier turns carry (the BM25 split's negatives are drawn to match the newest turns).
    """
    from hashbert.data import RerankGroup

    if n_turns < 1:
        raise ValueError(f"n_turns must be >= 1, got {n_turns}")
    return [
        RerankGroup(
            g.context[-n_turns:], g.candidates, g.labels, g.line_no,
            None if g.speakers is None else g.speakers[-n_turns:],
        )
        for g in groups
    ]


def _zero_shot_row(models: Sequence, base_model: str, evaluator: RerankEvaluator, inference) -> tuple[str, dict]:
    """The untrained base encoder's row, with the first saved model's text settings (truncation, pooling) if any."""
    from hashbert.config import BackboneConfig, DualEncoderConfig, EncoderConfig
    from hashbert.models.dual_encoder import DualEncoder
    from hashbert.models.onnx.runtime import on_device

    encoders = [m.config.encoder for m in models if hasattr(m.config, "encoder")]
    encoder = encoders[0] if encoders else EncoderConfig(backbone=BackboneConfig(model=base_model))
    base = DualEncoder.from_base(DualEncoderConfig(encoder=encoder, shared=True))
    return f"zero-shot {encoder.model}", evaluator(on_device(base, inference.device))


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
    one_of_n: int = 0,
    inference=None,
    newest_turns: int = 0,
) -> list[tuple[str, dict[str, float]]]:
    """Table rows ``(name, metrics)`` for the untrained base encoder (if ``zero_shot``) and each saved model.

    The zero-shot row uses the first saved model's text settings (truncation, pooling) when there is
    one, so the two rows differ only in training. Hashing models (those with a ``scoring`` attribute)
    give one row per entry of ``scorings`` (``symmetric``: Hamming; ``asymmetric``: float context . ±1
    code), suffixed `` sym``/`` asym`` when there are several. ``one_of_n`` > 0 scores ConveRT's 1-of-N
    protocol instead of the file's candidates (``one_of_n_groups``, seeded by ``seed``): R100@1 for 100.
    ``inference`` (an ``InferenceConfig``) runs the saved models' towers on torch or ONNX Runtime.
    ``newest_turns`` > 0 scores every context by its newest turns only (``newest_turn_groups``).
    """
    from hashbert.data import existing_speakers_path, read_rerank_groups
    from hashbert.models.onnx.runtime import load_inference_model

    model_dirs, names = list(model_dirs or []), list(names or [])
    if len(names) > len(model_dirs):
        raise ValueError(f"{len(names)} --name given for {len(model_dirs)} --model")
    # Recorded speakers (a .speakers sidecar) reach SA-BERT; every other model ignores them.
    all_groups = read_rerank_groups(test_path, speakers_path=existing_speakers_path(test_path))
    groups = seeded_subsample(all_groups, max_groups, seed)
    groups = one_of_n_groups(groups, one_of_n, seed) if one_of_n else groups
    groups = newest_turn_groups(groups, newest_turns) if newest_turns else groups
    evaluator = RerankEvaluator(groups, batch_size=batch_size, progress=progress)
    if evaluator.n_candidates != STANDARD_CANDIDATES and not one_of_n:
        logger.warning(
            "%s has %d candidates per context, not %d: reporting %s, not comparable with R10@k",
            test_path, evaluator.n_candidates, STANDARD_CANDIDATES, ", ".join(evaluator.columns[: len(evaluator.ks)]),
        )
    inference = inference or InferenceConfig()
    models = [load_inference_model(d, inference) for d in model_dirs]
    rows = []
    if zero_shot:
        rows.append(_zero_shot_row(models, base_model, evaluator, inference))
    for i, (directory, model) in enumerate(zip(model_dirs, models, strict=True)):
        # HDR, hashing and cross-encoders name themselves
        default = f"{getattr(model, 'row_name', 'DR-BERT')} ({directory})"
        name = names[i] if i < len(names) else default
        for scoring in scorings if hasattr(model, "scoring") else [None]:
            if scoring is not None:
                model.scoring = scoring
            suffix = f" {SCORING_SUFFIX.get(scoring, scoring)}" if scoring is not None and len(scorings) > 1 else ""
            rows.append((name + suffix, evaluator(model)))
            logger.info("%s: %s", rows[-1][0], {k: round(v, 4) for k, v in rows[-1][1].items()})
    return rows
