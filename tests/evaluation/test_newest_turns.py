"""``evaluate rerank --newest-turns N``: every context scored by its newest N turns only (a history ablation)."""

from __future__ import annotations

import pytest

from hashbert.cli import main
from hashbert.data import RerankGroup, read_rerank_groups
from hashbert.data.response_selection import write_response_selection
from hashbert.evaluation.rerank import evaluate_rerank_models, newest_turn_groups


def test_contexts_keep_their_newest_turns_and_speakers():
    group = RerankGroup(("a", "b", "c"), ("x", "y"), (0, 1), line_no=7, speakers=(0, 1, 0))
    (cut,) = newest_turn_groups([group], 2)
    assert cut == RerankGroup(("b", "c"), ("x", "y"), (0, 1), line_no=7, speakers=(1, 0))
    assert newest_turn_groups([group], 5) == [group]  # a short context is kept whole
    unknown = RerankGroup(("a", "b"), ("x",), (1,), line_no=1)
    assert newest_turn_groups([unknown], 1)[0].speakers is None
    with pytest.raises(ValueError, match="n_turns must be >= 1"):
        newest_turn_groups([group], 0)


def test_scores_as_the_file_with_its_contexts_cut(small_corpus, tmp_path):
    """A real encoder on --newest-turns 1 gives exactly what it gives on a file holding only the newest turns."""
    test = small_corpus / "test.txt"
    groups = read_rerank_groups(test)
    assert max(len(g.context) for g in groups) > 1  # else the option changes nothing here
    cut = tmp_path / "newest.txt"
    write_response_selection(
        cut, ((label, g.context[-1:], c) for g in groups for c, label in zip(g.candidates, g.labels, strict=True))
    )
    ((_, on_cut),) = evaluate_rerank_models(str(cut), None, zero_shot=True)
    ((_, newest),) = evaluate_rerank_models(str(test), None, zero_shot=True, newest_turns=1)
    ((_, whole),) = evaluate_rerank_models(str(test), None, zero_shot=True)
    for metric in ("R10@1", "R10@2", "MRR"):
        assert newest[metric] == pytest.approx(on_cut[metric], abs=1e-9)
    assert newest["MRR"] != whole["MRR"]


def test_cli_flag(small_corpus, capsys):
    test = str(small_corpus / "test.txt")
    assert main(["evaluate", "rerank", "--test", test, "--zero-shot", "--newest-turns", "2", "--no-progress"]) == 0
    assert "R10@1" in capsys.readouterr().out
    assert main(["evaluate", "rerank", "--test", test, "--zero-shot", "--newest-turns", "-1"]) == 2
