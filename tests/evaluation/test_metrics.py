"""Re-rank metrics on tiny hand-made score tables with known answers, ties included."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashbert.evaluation.metrics import (
    average_precision,
    mrr,
    pessimistic_order,
    positive_ranks,
    precision_at_1,
    recall_at_k,
    rerank_metrics,
)

DESCENDING = np.arange(10, 0, -1, dtype=np.float64)  # candidate i has rank i + 1


def labels_at(*indices: int, n: int = 10) -> np.ndarray:
    labels = np.zeros(n, dtype=np.int64)
    labels[list(indices)] = 1
    return labels


def all_metrics(scores, labels) -> dict[str, float]:
    return {
        "R@1": recall_at_k(scores, labels, 1),
        "R@2": recall_at_k(scores, labels, 2),
        "R@5": recall_at_k(scores, labels, 5),
        "MRR": mrr(scores, labels),
        "P@1": precision_at_1(scores, labels),
        "AP": average_precision(scores, labels),
    }


def reference_ranks(scores, labels) -> list[int]:
    """Brute force: a positive's rank = #higher scores + #equal negatives + its place among equal positives."""
    ranks = []
    for score in sorted({s for s, y in zip(scores, labels, strict=True) if y}, reverse=True):
        higher = sum(s > score for s in scores)
        equal_negatives = sum(s == score and not y for s, y in zip(scores, labels, strict=True))
        equal_positives = sum(s == score and y for s, y in zip(scores, labels, strict=True))
        ranks.extend(higher + equal_negatives + j for j in range(1, equal_positives + 1))
    return ranks


# --- single positive, distinct scores -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "expected"),
    [
        (1, {"R@1": 1.0, "R@2": 1.0, "R@5": 1.0, "MRR": 1.0, "P@1": 1.0, "AP": 1.0}),
        (3, {"R@1": 0.0, "R@2": 0.0, "R@5": 1.0, "MRR": 1 / 3, "P@1": 0.0, "AP": 1 / 3}),
        (10, {"R@1": 0.0, "R@2": 0.0, "R@5": 0.0, "MRR": 0.1, "P@1": 0.0, "AP": 0.1}),
    ],
)
def test_single_positive(rank, expected):
    labels = labels_at(rank - 1)
    assert positive_ranks(DESCENDING, labels).tolist() == [rank]
    assert all_metrics(DESCENDING, labels) == pytest.approx(expected)


# --- several positives ---------------------------------------------------------------------------


def test_three_positives_at_ranks_1_3_10():
    labels = labels_at(0, 2, 9)
    # R@1 = 1/3, R@2 = 1/3, R@5 = 2/3 (ranks 1 and 3), MRR = 1/1, P@1 = 1,
    # AP = (1/1 + 2/3 + 3/10) / 3 = 0.655555...
    assert positive_ranks(DESCENDING, labels).tolist() == [1, 3, 10]
    expected = {"R@1": 1 / 3, "R@2": 1 / 3, "R@5": 2 / 3, "MRR": 1.0, "P@1": 1.0, "AP": (1 + 2 / 3 + 3 / 10) / 3}
    assert all_metrics(DESCENDING, labels) == pytest.approx(expected)


def test_two_positives_at_ranks_2_4():
    labels = labels_at(1, 3)
    # R@1 = 0, R@2 = 1/2, R@5 = 1, MRR = 1/2, P@1 = 0, AP = (1/2 + 2/4) / 2 = 1/2
    expected = {"R@1": 0.0, "R@2": 0.5, "R@5": 1.0, "MRR": 0.5, "P@1": 0.0, "AP": 0.5}
    assert all_metrics(DESCENDING, labels) == pytest.approx(expected)


# --- ties count against the positives ------------------------------------------------------------


def test_all_tied_single_positive_ranks_last():
    scores = np.full(10, 3.0)
    labels = labels_at(0)  # positive first in candidate order: must not help
    assert positive_ranks(scores, labels).tolist() == [10]
    expected = {"R@1": 0.0, "R@2": 0.0, "R@5": 0.0, "MRR": 0.1, "P@1": 0.0, "AP": 0.1}
    assert all_metrics(scores, labels) == pytest.approx(expected)


def test_all_tied_two_positives_rank_9_and_10():
    scores = np.zeros(10)
    labels = labels_at(0, 1)
    assert positive_ranks(scores, labels).tolist() == [9, 10]
    # MRR = 1/9, AP = (1/9 + 2/10) / 2
    expected = {"R@1": 0.0, "R@2": 0.0, "R@5": 0.0, "MRR": 1 / 9, "P@1": 0.0, "AP": (1 / 9 + 2 / 10) / 2}
    assert all_metrics(scores, labels) == pytest.approx(expected)


def test_positive_tied_with_two_negatives_at_top_ranks_third():
    scores = np.array([5.0, 5.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0, -2.0])
    labels = labels_at(0)
    assert positive_ranks(scores, labels).tolist() == [3]
    expected = {"R@1": 0.0, "R@2": 0.0, "R@5": 1.0, "MRR": 1 / 3, "P@1": 0.0, "AP": 1 / 3}
    assert all_metrics(scores, labels) == pytest.approx(expected)


def test_tie_below_a_higher_negative():
    # one negative above (6), the positive ties two negatives at 5: rank 1 + 2 + 1 = 4
    scores = np.array([5.0, 6.0, 5.0, 5.0, 4.0, 3.0])
    assert positive_ranks(scores, labels_at(0, n=6)).tolist() == [4]


def test_negated_hamming_distances_tie():
    distances = np.array([3, 1, 1, 2, 1])  # positive at distance 1, tied with two negatives
    assert positive_ranks(-distances, labels_at(1, n=5)).tolist() == [3]


def test_positive_first_or_last_gives_the_same_metrics():
    scores = np.array([2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    first = labels_at(0, 3)
    last = labels_at(2, 6)  # same scores for the positives, placed after the tied negatives
    assert all_metrics(scores, first) == all_metrics(scores, last)


def test_reordering_candidates_never_changes_any_metric():
    rng = np.random.default_rng(0)
    for _ in range(50):
        scores = rng.integers(0, 3, size=10).astype(np.float64)  # coarse scores: many ties
        labels = (rng.random(10) < 0.3).astype(np.int64)
        labels[rng.integers(10)] = 1
        expected = all_metrics(scores, labels)
        for _ in range(5):
            perm = rng.permutation(10)
            assert all_metrics(scores[perm], labels[perm]) == expected


def test_positive_ranks_match_brute_force_reference():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        scores = rng.integers(-2, 3, size=n).astype(np.float64)
        labels = (rng.random(n) < 0.4).astype(np.int64)
        labels[rng.integers(n)] = 1
        assert positive_ranks(scores, labels).tolist() == reference_ranks(scores.tolist(), labels.tolist())


def test_pessimistic_order_puts_negatives_first_within_a_tie():
    scores = np.array([1.0, 1.0, 2.0, 1.0])
    labels = np.array([1, 0, 0, 0])
    order = pessimistic_order(scores, labels)
    assert order[0] == 2 and order[-1] == 0


def test_accepts_int_scores_and_bool_labels():
    assert mrr([3, 2, 1], [False, True, False]) == pytest.approx(0.5)


def test_k_beyond_the_candidates_counts_all():
    assert recall_at_k(DESCENDING, labels_at(9), 20) == 1.0


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        (np.zeros(10), np.zeros(9)),  # shape mismatch
        (np.zeros((2, 5)), np.ones((2, 5))),  # not one context
        (np.zeros(3), np.array([0, 2, 0])),  # non-binary labels
        (np.zeros(3), np.array([0.0, 0.5, 1.0])),
        (np.zeros(3), np.array([0, -1, 1])),
        (np.array([0.0, np.nan, 1.0]), np.array([0, 1, 0])),  # NaN score
        (np.zeros(3), np.zeros(3)),  # no positive
        (np.zeros(0), np.zeros(0)),  # no candidate
    ],
)
@pytest.mark.parametrize(
    "metric", [mrr, precision_at_1, average_precision, positive_ranks, lambda s, y: recall_at_k(s, y, 1)]
)
def test_bad_input_raises(metric, scores, labels):
    with pytest.raises(ValueError):
        metric(scores, labels)


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "1"])
def test_bad_k_raises(k):
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(DESCENDING, labels_at(0), k)


# --- rerank_metrics --------------------------------------------------------------------------------


def test_rerank_metrics_keys_counts_and_averages():
    scores = np.stack([DESCENDING, DESCENDING, np.full(10, 1.0), DESCENDING])
    labels = np.stack([labels_at(0), labels_at(2), labels_at(4), np.zeros(10, dtype=np.int64)])
    result = rerank_metrics(scores, labels)
    assert list(result) == ["R10@1", "R10@2", "R10@5", "MRR", "P@1", "MAP", "contexts", "skipped"]
    assert result["contexts"] == 3 and result["skipped"] == 1
    assert isinstance(result["contexts"], int) and isinstance(result["skipped"], int)
    # ranks 1, 3, 10 (all tied): R@1 = 1/3, R@2 = 1/3, R@5 = 2/3, MRR = MAP = (1 + 1/3 + 1/10) / 3
    assert result["R10@1"] == pytest.approx(1 / 3)
    assert result["R10@2"] == pytest.approx(1 / 3)
    assert result["R10@5"] == pytest.approx(2 / 3)
    assert result["P@1"] == pytest.approx(1 / 3)
    assert result["MRR"] == pytest.approx((1 + 1 / 3 + 1 / 10) / 3)
    assert result["MAP"] == pytest.approx((1 + 1 / 3 + 1 / 10) / 3)


def test_rerank_metrics_equals_mean_of_per_context_metrics():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 4, size=(300, 10)).astype(np.float64)
    labels = (rng.random((300, 10)) < 0.15).astype(np.int64)
    result = rerank_metrics(list(scores), list(labels), ks=(1, 3))
    kept = [i for i in range(300) if labels[i].any()]
    assert result["skipped"] == 300 - len(kept)
    for key, metric in [
        ("R10@3", lambda s, y: recall_at_k(s, y, 3)),
        ("MRR", mrr),
        ("P@1", precision_at_1),
        ("MAP", average_precision),
    ]:
        assert result[key] == pytest.approx(np.mean([metric(scores[i], labels[i]) for i in kept]))
    assert "R10@2" not in result


def test_rerank_metrics_names_keys_by_candidate_count():
    result = rerank_metrics([np.array([1.0, 0.0])], [np.array([1, 0])], ks=(1,))
    assert result["R2@1"] == 1.0


def test_rerank_metrics_all_skipped_raises():
    with pytest.raises(ValueError, match="no(ne of the)? .*positive"):
        rerank_metrics(np.zeros((3, 10)), np.zeros((3, 10)))


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        ([np.zeros(10), np.zeros(9)], [labels_at(0), labels_at(0, n=9)]),  # mixed candidate counts
        (np.zeros((2, 10)), np.ones((3, 10))),  # context count mismatch
        (np.zeros(10), labels_at(0)),  # a single 1-D context
        ([], []),
        (np.full((1, 10), np.nan), labels_at(0)[None]),
        (np.zeros((1, 10)), np.full((1, 10), 2)),
    ],
)
def test_rerank_metrics_bad_input_raises(scores, labels):
    with pytest.raises(ValueError):
        rerank_metrics(scores, labels)


def test_rerank_metrics_ignores_tie_order_across_contexts():
    scores = np.tile(np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), (2, 1))
    first = np.stack([labels_at(0), labels_at(0)])
    second = np.stack([labels_at(1), labels_at(1)])
    assert rerank_metrics(scores, first) == rerank_metrics(scores, second)
    assert rerank_metrics(scores, first)["R10@1"] == 0.0


def test_permutations_of_a_tied_block_agree():
    scores = np.array([1.0, 1.0, 1.0, 0.0])
    labels = np.array([1, 1, 0, 0])
    results = {tuple(all_metrics(scores[list(p)], labels[list(p)]).values()) for p in itertools.permutations(range(4))}
    assert len(results) == 1
