"""``train dual --teacher``: a trained DR-BERT's in-batch scores pull the run's. The KL term vanishes when the
teacher ranks each batch as the student does and grows when it ranks otherwise; the command line trains with it
beside BM25 negatives and records it, and a resumed run refuses another teacher."""

from __future__ import annotations

import json

import pytest
import torch

from hashbert.data import read_training_pairs
from hashbert.data.sampling import seeded_subsample
from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.training.dual import dual_loss
from hashbert.training.hard_negatives import IndexedPair
from hashbert.training.teacher import TeacherScores, indexed_collate


def test_dual_loss_adds_the_teachers_kl_term(dual_encoder, small_corpus, tmp_path):
    pairs = seeded_subsample(read_training_pairs(small_corpus / "train.txt", max_context_turns=4), 8, seed=0)
    temperature = dual_encoder.config.temperature
    teacher = TeacherScores(str(dual_encoder.save(tmp_path / "teacher")), pairs, {}, {"test": 1}, tmp_path / "cache",
                            2.0, temperature, torch.device("cpu"), progress=False)
    assert teacher.contexts.shape == (8, dual_encoder.dim)
    batch = indexed_collate(lambda items: dual_encoder.collate([item.pair for item in items]))(
        [IndexedPair(i, pair) for i, pair in enumerate(pairs)])
    assert batch["pair_index"].tolist() == list(range(8))
    loss = InBatchSoftmaxLoss(temperature)
    dual_encoder.eval()  # no dropout: the same batch gives the same scores
    with torch.no_grad():
        plain = float(dual_loss(dual_encoder, loss)(batch))
        teacher.contexts, teacher.responses = dual_encoder(batch["context"], batch["response"])  # its own ranking
        same = float(dual_loss(dual_encoder, loss, teacher)(batch))
        teacher.contexts = teacher.contexts.roll(1, 0)  # context i ranks as context i-1 does
        other = float(dual_loss(dual_encoder, loss, teacher)(batch))
    assert same == pytest.approx(plain, abs=1e-4) and other > plain + 0.1


@pytest.mark.slow
def test_cli_trains_dual_with_a_teacher_beside_bm25_negatives(dual_encoder, small_corpus, tmp_path, capsys):
    from hashbert.cli import main

    teacher = dual_encoder.save(tmp_path / "teacher")
    args = ["train", "dual", "--train", str(small_corpus / "train.txt"), "--out", str(tmp_path / "run"),
            "--max-train-pairs", "16", "--batch-size", "8", "--no-progress", "--max-context-length", "48",
            "--max-response-length", "16", "--max-context-turns", "4", "--hard-negatives", "bm25",
            "--max-steps", "1", "--save-every", "1"]
    assert main([*args, "--teacher", str(teacher)]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["distill"] == {"teacher": str(teacher), "distill_weight": 1.0}
    assert run["negatives"]["hard_negatives"] == "bm25"
    assert len(list((tmp_path / "run" / "cache").glob("[!.]*/contexts.npy"))) == 1  # the teacher's vectors
    capsys.readouterr()
    assert main([*args, "--teacher", str(teacher), "--distill-weight", "0.5"]) == 2
    assert "distill" in capsys.readouterr().err  # the checkpoint was made with another weight
