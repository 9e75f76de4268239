"""The re-rank evaluator over groups as the reader gives them: R{n}@k labelled by the group size.

Before: a 5-candidate test file gave ``R5@k`` keys that the ``R10@k`` table columns printed blank with
no warning, and a CR-only file read as one group of one candidate scored MRR 100.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashbert.data import RerankGroup, read_rerank_groups, write_response_selection
from hashbert.evaluation.metrics import rerank_metrics
from hashbert.evaluation.report import METRIC_COLUMNS
from hashbert.evaluation.rerank import RerankEvaluator, rerank_columns


class LengthScorer:
    """Scores a candidate by its length: deterministic, with ties when lengths are equal."""

    def rerank_scores(self, groups, batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
        return [np.array([float(len(c)) for c in g.candidates]) for g in groups]


def make_groups(n_candidates: int, n_groups: int = 3) -> list[RerankGroup]:
    """Groups whose positive (the k-th candidate) is the longest in group k, so ranks vary by group."""
    groups = []
    for k in range(n_groups):
        candidates = tuple("x" * (i + 1) for i in range(n_candidates))
        labels = tuple(int(i == (n_candidates - 1 - k) % n_candidates) for i in range(n_candidates))
        groups.append(RerankGroup((f"context {k}",), candidates, labels, line_no=1 + k * n_candidates))
    return groups


def test_ten_candidates_keep_the_standard_keys_and_numbers() -> None:
    groups = make_groups(10)
    metrics = RerankEvaluator(groups)(LengthScorer())
    expected = rerank_metrics(LengthScorer().rerank_scores(groups), [np.asarray(g.labels) for g in groups])
    assert {k: metrics[k] for k in expected} == expected
    assert [k for k in metrics if k.startswith("R")] == ["R10@1", "R10@2", "R10@5"]
    assert RerankEvaluator(groups).primary_metric == "R10@1"
    assert RerankEvaluator(groups).columns == METRIC_COLUMNS


@pytest.mark.parametrize(("n", "recall_keys"), [(5, ["R5@1", "R5@2"]), (2, ["R2@1"]), (9, ["R9@1", "R9@2", "R9@5"])])
def test_other_sizes_report_r_n_at_k_below_n(n: int, recall_keys: list[str]) -> None:
    evaluator = RerankEvaluator(make_groups(n))
    metrics = evaluator(LengthScorer())
    assert [k for k in metrics if k.startswith("R")] == recall_keys  # R{n}@k for k >= n is always 1: left out
    assert evaluator.primary_metric == f"R{n}@1"
    assert evaluator.columns == (*recall_keys, "MRR", "P@1", "MAP")


def test_columns_of_result_rows_follow_their_group_size() -> None:
    rows = [(name, RerankEvaluator(make_groups(5))(LengthScorer())) for name in ("a", "b")]
    assert rerank_columns(rows) == ("R5@1", "R5@2", "MRR", "P@1", "MAP")
    assert rerank_columns([("a", RerankEvaluator(make_groups(10))(LengthScorer()))]) == METRIC_COLUMNS
    assert rerank_columns([]) == METRIC_COLUMNS
    with pytest.raises(ValueError, match="rows of different group sizes"):
        rerank_columns([rows[0], ("c", RerankEvaluator(make_groups(10))(LengthScorer()))])


def test_mixed_or_single_candidate_groups_are_refused_by_the_evaluator() -> None:
    with pytest.raises(ValueError, match=r"group at line 21 has 5 candidates, the first has 10"):
        RerankEvaluator(make_groups(10, 2) + [make_groups(5, 1)[0].__class__(("c",), ("a",) * 5, (1, 0, 0, 0, 0), 21)])
    with pytest.raises(ValueError, match="at least 2 candidates"):
        RerankEvaluator([RerankGroup(("c",), ("a",), (1,), 1)])


def test_a_cr_only_test_file_is_scored_as_its_groups(tmp_path: Path) -> None:
    path = tmp_path / "test.txt"
    rows = [(int(i == 0), [f"context {k}"], f"length {i}") for k in range(3) for i in range(10)]
    write_response_selection(path, rows)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    metrics = RerankEvaluator(read_rerank_groups(path))(LengthScorer())
    # All candidates tie; ties count against the positive, which ranks 10th: not one group of one at MRR 1.
    assert metrics["contexts"] == 3 and metrics["MRR"] == pytest.approx(0.1) and metrics["R10@1"] == 0.0
