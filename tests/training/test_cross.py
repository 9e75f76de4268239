"""Cross-encoder training: labelled pairs with k negatives, and the BCE loss falls on a tiny real slice."""

from __future__ import annotations

import pytest
import torch

from hashbert.config import CrossEncoderConfig, DataConfig, NegativeSamplingConfig, TrainConfig
from hashbert.data import ContextResponse, read_training_pairs
from hashbert.losses.pointwise import PointwiseBceLoss
from hashbert.models.cross.cross_encoder import CrossEncoder
from hashbert.training.cross import labelled_pairs, train_cross_encoder
from hashbert.training.trainer import Trainer


def test_labelled_pairs_bring_k_negatives_per_context():
    pairs = [ContextResponse((f"c{i}",), f"r{i}", (0,), 1) for i in range(5)]
    examples = labelled_pairs(pairs, negatives=3, seed=0)
    assert len(examples) == 5 * 4
    for i, pair in enumerate(pairs):
        group = examples[4 * i : 4 * i + 4]
        assert group[0] == (pair, 1)
        assert all(p.context == pair.context and p.response != pair.response and label == 0 for p, label in group[1:])
        assert all(p.context_speakers == (0,) and p.response_speaker == 1 for p, _ in group[1:])
    with pytest.raises(ValueError, match="two distinct"):
        labelled_pairs([pairs[0], pairs[0]], 1, 0)


def test_bm25_negatives_follow_the_random_ones_and_are_bm25s_top_eligible_turns(small_corpus):
    """The cross-encoder's BM25 negatives: drawn from each context's top-5 eligible training turns by BM25 (checked
    against a brute-force scoring of the whole pool with bm25s), placed after the random ones."""
    import bm25s

    from hashbert.data.bm25 import context_query, near_copy_key
    from hashbert.training.cross import bm25_negatives
    from hashbert.training.hard_negatives import TrainingPool

    train = str(small_corpus / "train.txt")
    pairs = read_training_pairs(train)[:12]
    sampling = NegativeSamplingConfig(negatives=1, bm25_negatives=2, bm25_depth=5)
    mined = bm25_negatives(pairs, sampling, DataConfig(train=train), seed=0)
    pool = TrainingPool.from_file(train)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(pool.texts, stopwords="en", show_progress=False), show_progress=False)
    for pair, texts in zip(pairs, mined, strict=True):
        allowed = pool.eligible(pair)
        scores = retriever.get_scores(bm25s.tokenize([context_query(pair.context)], stopwords="en",
                                                     return_ids=False, show_progress=False)[0])
        eligible = sorted((j for j in range(len(pool.texts)) if allowed(j)
                           and near_copy_key(pool.texts[j]) != near_copy_key(pair.response)), key=lambda j: -scores[j])
        fifth = scores[eligible[4]]
        assert len(set(texts)) == 2 and all(allowed(pool.id_of(t)) and scores[pool.id_of(t)] >= fifth for t in texts)
    examples = labelled_pairs(pairs, 1, 0, mined)
    assert len(examples) == 12 * 4
    assert [p.response for p, label in examples[2:4]] == mined[0] and examples[1][1] == examples[2][1] == 0


@pytest.mark.slow
def test_bce_loss_falls_on_a_real_slice(small_corpus, tmp_path):
    torch.manual_seed(0)
    model = CrossEncoder.from_base(
        CrossEncoderConfig.from_flat(max_length=48, max_response_length=12, max_context_turns=2)
    )
    examples = labelled_pairs(read_training_pairs(small_corpus / "train.txt", max_context_turns=2)[:8], 1, 0)
    loss = PointwiseBceLoss()
    batch = model.collate(examples)

    def mean_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(loss(model(**batch["inputs"]), batch["labels"]))

    before = mean_loss()
    config = TrainConfig(lr=3e-4, batch_size=8, epochs=4, warmup_ratio=0.0, save_every=0, progress=False, device="cpu")
    Trainer(model, lambda b: loss(model(**b["inputs"]), b["labels"]), examples, model.collate, config, tmp_path).fit()
    assert mean_loss() < before - 0.05


@pytest.mark.slow
def test_train_cross_encoder_end_to_end_with_speakers(small_corpus, tmp_path):
    summary = train_cross_encoder(
        CrossEncoderConfig.from_flat(max_length=40, max_response_length=8, max_context_turns=2, speakers=True),
        NegativeSamplingConfig(negatives=1), DataConfig(train=str(small_corpus / "train.txt"), max_train_pairs=8),
        TrainConfig(batch_size=8, max_steps=2, save_every=0, progress=False, device="cpu"), tmp_path / "run",
    )
    assert summary["contexts"] == 8 and summary["pairs"] == 16
    assert summary["speakers_file"].endswith("train.speakers")  # chitchat's sidecar set the speakers
    assert CrossEncoder.load(tmp_path / "run" / "model").config.speakers
