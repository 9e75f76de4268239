"""Trainer: batching, schedule, a real (tiny) training run that lowers the loss, and exact resume."""

from __future__ import annotations

import copy

import pytest
import torch

from hashbert.config import TrainConfig
from hashbert.data import read_training_pairs
from hashbert.losses.in_batch import InBatchSoftmaxLoss
from hashbert.training.checkpoint import latest_checkpoint
from hashbert.training.schedules import warmup_linear
from hashbert.training.trainer import Trainer, batch_order


def test_batch_order_seeded_complete_batches():
    a = batch_order(100, 32, seed=1, epoch=0)
    assert a == batch_order(100, 32, seed=1, epoch=0) != batch_order(100, 32, seed=1, epoch=1)
    assert [len(b) for b in a] == [32, 32, 32]
    assert len({i for b in a for i in b}) == 96


def test_batch_order_no_duplicate_keys_in_a_batch():
    keys = ["lol" if i % 3 == 0 else f"r{i}" for i in range(90)]
    batches = batch_order(90, 8, seed=0, epoch=0, key=keys.__getitem__)
    for batch in batches:
        assert len({keys[i] for i in batch}) == len(batch)
    assert len(batches) >= 3


def test_warmup_linear_shape():
    values = [warmup_linear(s, total_steps=10, warmup_steps=2) for s in range(10)]
    assert values[0] == pytest.approx(0.5) and values[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[1:], values[2:], strict=False)) and values[-1] > 0


def _trainer(model, pairs, out, **overrides):
    config = TrainConfig(
        **{"batch_size": 8, "lr": 5e-5, "max_steps": 4, "save_every": 0, "progress": False, **overrides}
    )
    loss = InBatchSoftmaxLoss(0.05)
    return Trainer(
        model, lambda b: loss(*model(**b)), pairs, model.collate, config, out, dedupe_key=lambda p: p.response
    )


@pytest.fixture(scope="module")
def pairs(small_corpus):
    return read_training_pairs(small_corpus / "train.txt")[:64]


@pytest.mark.slow
def test_real_training_lowers_loss(dual_encoder, pairs, tmp_path):
    fixed = pairs[:8]
    loss = InBatchSoftmaxLoss(0.05)

    def batch_loss():
        with torch.no_grad():
            dual_encoder.eval()
            return float(loss(*dual_encoder(**dual_encoder.collate(fixed))))

    before = batch_loss()
    # the same 8 pairs, several epochs: the loss on them must fall
    _trainer(dual_encoder, fixed, tmp_path, max_steps=0, epochs=6, lr=1e-4).fit()
    assert batch_loss() < before * 0.8


@pytest.mark.slow
def test_resume_after_interruption_is_exact(dual_encoder, pairs, tmp_path):
    reference = copy.deepcopy(dual_encoder)
    _trainer(reference, pairs, tmp_path / "straight").fit()

    interrupted = _trainer(dual_encoder, pairs, tmp_path / "resumed")
    state = interrupted.fit(stop_after=2)
    assert state.step == 2 and latest_checkpoint(tmp_path / "resumed").name == "step-0000002"
    # a new process would build everything afresh: new model copy, new trainer, same output dir
    fresh = copy.deepcopy(dual_encoder)
    with torch.no_grad():  # scramble the weights: the checkpoint must restore them
        for p in fresh.parameters():
            p.mul_(0.5)
    final = _trainer(fresh, pairs, tmp_path / "resumed").fit()
    assert final.step == 4
    for (name, a), b in zip(reference.state_dict().items(), fresh.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_resume_with_other_settings_refused(dual_encoder, pairs, tmp_path):
    _trainer(dual_encoder, pairs, tmp_path, max_steps=1).fit()
    with pytest.raises(ValueError, match="other lr"):
        _trainer(dual_encoder, pairs, tmp_path, max_steps=2, lr=1e-3).fit()


def test_too_few_examples_for_a_batch(dual_encoder, pairs, tmp_path):
    with pytest.raises(ValueError, match="no full batch"):
        _trainer(dual_encoder, pairs[:3], tmp_path)
