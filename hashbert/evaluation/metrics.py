"""Re-rank metrics over scored candidates: Recall@k, MRR, P@1 and MAP, as pure NumPy functions.

Scores are "higher is better"; for Hamming distances pass the negated distance.

Tie rule (SPEC, Metrics): **ties count against the positives**. A positive ranks after every
negative with an equal score; positives tied with each other occupy consecutive ranks (their
internal order changes no metric). Ties are never broken by candidate order (test files usually
put the positive first, which would flatter every model) nor by any other score (that would leak
a float model's quality into a binary row: a hash collapsed to one code would score like the
float model). Every metric is built on ``pessimistic_order``, the one place this rule lives.

Per-context functions take ``scores: (n_candidates,) float`` and ``labels: (n_candidates,)`` with
values in {0, 1} and raise ``ValueError`` on a shape mismatch, non-binary labels, NaN scores or a
context without a positive. ``rerank_metrics`` averages over many contexts and skips (counts) the
contexts without a positive, the Douban convention.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)


def _check_arrays(
    scores: np.ndarray | Sequence, labels: np.ndarray | Sequence, ndim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert scores/labels of ``ndim`` dimensions; the rows may lack a positive."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != ndim or scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must both have {ndim} dimension(s) and equal shapes, "
            f"got scores {scores.shape} and labels {labels.shape}"
        )
    if np.isnan(scores).any():
        raise ValueError(f"scores contain NaN at positions {np.argwhere(np.isnan(scores)).tolist()[:5]}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {np.unique(labels).tolist()[:10]}")
    return scores, labels.astype(np.int64)


def _check_context(scores: np.ndarray | Sequence, labels: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Validate one context: 1-D, equal shapes, binary labels, no NaN, at least one positive."""
    scores, labels = _check_arrays(scores, labels, ndim=1)
    if not labels.any():
        raise ValueError(f"the context has no positive among its {labels.size} candidates")
    return scores, labels


def _check_k(k: int) -> int:
    """Return ``k`` as an int, raising ``ValueError`` unless it is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def pessimistic_order(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Candidate indices from best to worst, with ties counted against the positives.

    Sorts by descending score, then negatives before positives among equal scores, so a positive
    ranks after every negative with an equal score. Candidate order never breaks a tie (positives
    tied with each other stay in input order, which changes no metric).

    Args:
        scores: (..., n_candidates) float, higher is better; validated by the callers.
        labels: (..., n_candidates) int in {0, 1}.

    Returns:
        (..., n_candidates) int64 indices into the last axis.
    """
    # np.lexsort sorts by the last key first: -score, then label (0 before 1). It is stable.
    return np.lexsort((labels, -scores), axis=-1)


def _ranked_hits(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n_contexts, n) labels in pessimistic rank order: hits[c, r] = 1 if rank r + 1 is a positive."""
    return np.take_along_axis(labels, pessimistic_order(scores, labels), axis=-1)


def _recall_rows(hits: np.ndarray, k: int) -> np.ndarray:
    """(n_contexts,) fraction of each row's positives in its first k ranks."""
    return hits[:, :k].sum(axis=1) / hits.sum(axis=1)


def _reciprocal_rank_rows(hits: np.ndarray) -> np.ndarray:
    """(n_contexts,) 1 / rank of each row's first positive."""
    return 1.0 / (np.argmax(hits, axis=1) + 1)


def _average_precision_rows(hits: np.ndarray) -> np.ndarray:
    """(n_contexts,) mean over each row's positives of precision at that positive's rank."""
    ranks = np.arange(1, hits.shape[1] + 1)
    precision = np.cumsum(hits, axis=1) / ranks
    return (precision * hits).sum(axis=1) / hits.sum(axis=1)


def positive_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1-based ranks of the positives, ties counted against the positives.

    A positive ranks after every negative with an equal score; positives tied with each other
    take consecutive ranks. Never broken by candidate order or by another score.

    Args:
        scores: (n_candidates,) float, higher is better (negate Hamming distances).
        labels: (n_candidates,) int or bool in {0, 1}, at least one positive.

    Returns:
        (n_positives,) int64 ranks in increasing order.

    Raises:
        ValueError: shape mismatch, non-binary labels, NaN scores or no positive.
    """
    scores, labels = _check_context(scores, labels)
    return np.flatnonzero(_ranked_hits(scores[None], labels[None])[0]) + 1


def recall_at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of the positives ranked in the top k (R10@k when there are 10 candidates).

    Ties count against the positives: a positive ranks after every negative with an equal score;
    tied positives take consecutive ranks. Never broken by candidate order or by another score.

    Args:
        scores: (n_candidates,) float, higher is better (negate Hamming distances).
        labels: (n_candidates,) int or bool in {0, 1}, at least one positive.
        k: cut-off, a positive integer; k >= n_candidates counts every candidate.

    Returns:
        (# positives in the top k) / (# positives), in [0, 1].

    Raises:
        ValueError: bad k, shape mismatch, non-binary labels, NaN scores or no positive.
    """
    k = _check_k(k)
    scores, labels = _check_context(scores, labels)
    return float(_recall_rows(_ranked_hits(scores[None], labels[None]), k)[0])


def mrr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Reciprocal rank of the first positive (averaged over contexts, this is the MRR).

    Ties count against the positives: a positive ranks after every negative with an equal score;
    tied positives take consecutive ranks. Never broken by candidate order or by another score.

    Args:
        scores: (n_candidates,) float, higher is better (negate Hamming distances).
        labels: (n_candidates,) int or bool in {0, 1}, at least one positive.

    Returns:
        1 / rank of the first positive, in (0, 1].

    Raises:
        ValueError: shape mismatch, non-binary labels, NaN scores or no positive.
    """
    scores, labels = _check_context(scores, labels)
    return float(_reciprocal_rank_rows(_ranked_hits(scores[None], labels[None]))[0])


def precision_at_1(scores: np.ndarray, labels: np.ndarray) -> float:
    """1.0 if the top-ranked candidate is a positive, else 0.0.

    Ties count against the positives: a positive tied with a negative for the top score is not
    top-1. Never broken by candidate order or by another score.

    Args:
        scores: (n_candidates,) float, higher is better (negate Hamming distances).
        labels: (n_candidates,) int or bool in {0, 1}, at least one positive.

    Returns:
        1.0 or 0.0.

    Raises:
        ValueError: shape mismatch, non-binary labels, NaN scores or no positive.
    """
    scores, labels = _check_context(scores, labels)
    return float(_ranked_hits(scores[None], labels[None])[0, 0])


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the positives of the precision at each positive's rank (averaged: MAP).

    Ties count against the positives: a positive ranks after every negative with an equal score;
    tied positives take consecutive ranks. Never broken by candidate order or by another score.

    Args:
        scores: (n_candidates,) float, higher is better (negate Hamming distances).
        labels: (n_candidates,) int or bool in {0, 1}, at least one positive.

    Returns:
        Average precision in (0, 1].

    Raises:
        ValueError: shape mismatch, non-binary labels, NaN scores or no positive.
    """
    scores, labels = _check_context(scores, labels)
    return float(_average_precision_rows(_ranked_hits(scores[None], labels[None]))[0])


def _stack_contexts(groups: Sequence[np.ndarray] | np.ndarray, what: str) -> np.ndarray:
    """Stack per-context 1-D arrays into (n_contexts, n); every context must have the first's n."""
    if isinstance(groups, np.ndarray):
        return groups
    if len(groups) == 0:
        raise ValueError(f"no contexts given ({what} is empty)")
    first = np.shape(groups[0])
    for index, group in enumerate(groups):
        if len(first) != 1 or np.shape(group) != first:
            raise ValueError(
                f"{what}[{index}] has shape {np.shape(group)}, expected {first} like {what}[0]: every context "
                "must be a 1-D array with the same number of candidates"
            )
    return np.stack([np.asarray(group) for group in groups])


def rerank_keys(n_candidates: int, ks: Sequence[int] = (1, 2, 5)) -> tuple[str, ...]:
    """The keys of ``rerank_metrics`` for ``n_candidates`` per context, in table order.

    The recall keys name the group size (``R10@1``; ``R5@1`` for 5 candidates) because recall at k
    over 5 candidates is not comparable with recall at k over 10.
    """
    return (*(f"R{n_candidates}@{k}" for k in ks), "MRR", "P@1", "MAP")


def rerank_metrics(
    scores: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[np.ndarray] | np.ndarray,
    ks: Sequence[int] = (1, 2, 5),
) -> dict[str, float]:
    """Average the re-rank metrics over contexts, skipping contexts with no positive (Douban convention).

    Ties count against the positives: a positive ranks after every negative with an equal score;
    tied positives take consecutive ranks. Never broken by candidate order or by another score.

    Args:
        scores: (n_contexts, n_candidates) float, or a sequence of (n_candidates,) arrays, higher
            is better (negate Hamming distances). Every context has the same n_candidates.
        labels: same shape as ``scores``, values in {0, 1}.
        ks: cut-offs for the recall keys.

    Returns:
        ``{"R{n}@{k}" for k in ks, "MRR", "P@1", "MAP"}`` as fractions in [0, 1] (``R10@1`` for
        10 candidates), plus int ``contexts`` (evaluated) and ``skipped`` (no positive).

    Raises:
        ValueError: inconsistent shapes or candidate counts, non-binary labels, NaN scores, a bad
            k, or no context with a positive.
    """
    ks = [_check_k(k) for k in ks]
    scores, labels = _check_arrays(_stack_contexts(scores, "scores"), _stack_contexts(labels, "labels"), ndim=2)
    n_contexts, n_candidates = labels.shape
    has_positive = labels.any(axis=1)
    if not has_positive.any():
        raise ValueError(f"none of the {n_contexts} contexts has a positive candidate")
    hits = _ranked_hits(scores[has_positive], labels[has_positive])  # (n_evaluated, n_candidates)
    recall_keys = rerank_keys(n_candidates, ks)[: len(ks)]
    result: dict[str, float] = {
        key: float(_recall_rows(hits, k).mean()) for key, k in zip(recall_keys, ks, strict=True)
    }
    result["MRR"] = float(_reciprocal_rank_rows(hits).mean())
    result["P@1"] = float(hits[:, 0].mean())
    result["MAP"] = float(_average_precision_rows(hits).mean())
    result["contexts"] = int(hits.shape[0])
    result["skipped"] = int(n_contexts - hits.shape[0])
    if result["skipped"]:
        logger.info("skipped %d of %d contexts without a positive", result["skipped"], n_contexts)
    return result
