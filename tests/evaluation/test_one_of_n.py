"""ConveRT's 1-of-N re-rank protocol: each positive against N-1 other test responses (R100@1 for N = 100)."""

from __future__ import annotations

import pytest

from hashbert.cli import main
from hashbert.data import RerankGroup, read_rerank_groups
from hashbert.evaluation.rerank import evaluate_rerank_models, one_of_n_groups


def _groups(n_groups: int, duplicate_every: int = 0) -> list[RerankGroup]:
    """Groups of 3 candidates, positive second; with ``duplicate_every``, some groups share their positive text."""
    groups = []
    for k in range(n_groups):
        positive = f"reply {k - k % duplicate_every if duplicate_every else k}"
        groups.append(RerankGroup((f"context {k}",), ("neg a", positive, "neg b"), (0, 1, 0), line_no=1 + 3 * k))
    return groups


def test_each_positive_meets_other_test_responses_only():
    groups = _groups(330, duplicate_every=3)  # 110 distinct positives
    wide = one_of_n_groups(groups, 100, seed=0)
    positives = {g.candidates[1] for g in groups}
    for old, new in zip(groups, wide, strict=True):
        assert new.context == old.context and new.candidates[0] == old.candidates[1]
        assert new.labels == (1,) + (0,) * 99 and len(set(new.candidates)) == 100
        assert set(new.candidates[1:]) <= positives - {old.candidates[1]}  # never its own text, never "neg a"


def test_draws_are_seeded():
    groups = _groups(120)
    assert one_of_n_groups(groups, 100, seed=1) == one_of_n_groups(groups, 100, seed=1)
    assert one_of_n_groups(groups, 100, seed=1) != one_of_n_groups(groups, 100, seed=2)


def test_too_few_test_responses_or_positives_are_refused():
    with pytest.raises(ValueError, match="needs 100 distinct test responses, the file has 50"):
        one_of_n_groups(_groups(50), 100, seed=0)
    two = RerankGroup(("c",), ("a", "b"), (1, 1), line_no=1)
    with pytest.raises(ValueError, match="exactly one positive"):
        one_of_n_groups([two, *_groups(10)], 5, seed=0)


def test_zero_shot_encoder_is_scored_one_of_n(small_corpus):
    test = small_corpus / "test.txt"
    n_groups = len(read_rerank_groups(test))
    rows = evaluate_rerank_models(str(test), None, zero_shot=True, one_of_n=8, seed=3)
    (_, metrics), = rows
    assert metrics["contexts"] == n_groups and {"R8@1", "R8@2", "R8@5", "MRR"} <= metrics.keys()
    assert "R10@1" not in metrics and 1 / 8 < metrics["R8@1"] <= 1.0  # well above chance for a real encoder


def test_cli_flag(small_corpus, capsys):
    test = str(small_corpus / "test.txt")
    assert main(["evaluate", "rerank", "--test", test, "--zero-shot", "--one-of-n", "6", "--no-progress"]) == 0
    assert "R6@1" in capsys.readouterr().out
    assert main(["evaluate", "rerank", "--test", test, "--zero-shot", "--one-of-n", "1"]) == 2
