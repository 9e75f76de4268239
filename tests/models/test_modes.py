"""eval_mode: modules run in eval mode inside the block and get their own flags back after it, even on an error."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from hashbert.models.modes import eval_mode


def _modules() -> tuple[nn.Module, nn.Module]:
    training, evaluating = nn.Sequential(nn.Linear(2, 2), nn.Dropout()), nn.Sequential(nn.Dropout())
    training.train()
    evaluating.eval()
    return training, evaluating


def test_eval_inside_and_each_flag_restored_after():
    training, evaluating = _modules()
    with eval_mode(training, evaluating):
        assert not any(m.training for m in (*training.modules(), *evaluating.modules()))
    assert all(m.training for m in training.modules())
    assert not any(m.training for m in evaluating.modules())


def test_flags_restored_when_the_body_raises():
    training, evaluating = _modules()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(training, evaluating):
        assert not training.training
        raise RuntimeError("boom")
    assert all(m.training for m in training.modules())
    assert not evaluating.training


def test_a_model_method_leaves_the_training_mode_as_it_was():
    from hashbert.config import HashConfig
    from hashbert.models.hashing.tower_heads import HashHeads

    heads = HashHeads(HashConfig(n_bits=64, hidden=0), 4, decoders=False).train()
    assert heads.context_hash_vectors(np.zeros((3, 4), dtype=np.float32)).shape == (3, 64)
    assert heads.training and all(m.training for m in heads.modules())
