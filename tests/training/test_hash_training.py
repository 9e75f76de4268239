"""Hash-BERT head training on real encoder vectors of a small real slice; the unfrozen and BPR paths on tiny ones."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hashbert.config import (
    BprConfig,
    DataConfig,
    EncoderConfig,
    HardNegativeConfig,
    HashConfig,
    HashEncoderConfig,
    HashLossConfig,
    TrainConfig,
)
from hashbert.data import RerankGroup, read_training_pairs
from hashbert.evaluation.hashing import VectorRerankEvaluator
from hashbert.models.hashing.hash_bert import HashBert
from hashbert.models.hashing.lsh import RandomHyperplaneLSH
from hashbert.models.hashing.scoring import index_groups
from hashbert.models.registry import load_model
from hashbert.training.hash_training import train_hash_heads

SMALL_ENCODER = {"max_context_length": 48, "max_response_length": 16, "max_context_turns": 4}


@pytest.fixture(scope="module")
def saved_dual(_base_dual_encoder, tmp_path_factory):
    return _base_dual_encoder.save(tmp_path_factory.mktemp("dual") / "model")


@pytest.fixture(scope="module")
def split(small_corpus, tmp_path_factory):
    """Heads train on the first 60 dialogues; 10-candidate groups are cut from the other 12 (held out)."""
    lines = (small_corpus / "train.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    root = tmp_path_factory.mktemp("split")
    (root / "train.txt").write_text("".join(lines[:60]), encoding="utf-8")
    (root / "heldout.txt").write_text("".join(lines[60:]), encoding="utf-8")
    pairs = read_training_pairs(root / "heldout.txt", "full", "raise")
    rng = np.random.default_rng(0)
    responses = sorted({p.response for p in pairs})
    groups = []
    for i in rng.choice(len(pairs), min(150, len(pairs)), replace=False):
        negatives = [r for r in rng.choice(responses, 12, replace=False) if r != pairs[i].response][:9]
        groups.append(RerankGroup(pairs[i].context, (pairs[i].response, *negatives), (1,) + (0,) * 9, 1))
    return root / "train.txt", groups


def _train(**overrides):
    return TrainConfig(**{"lr": 1e-3, "batch_size": 64, "epochs": 10, "save_every": 0, "progress": False,
                          "device": "cpu", "warmup_ratio": 0.05, **overrides})


@pytest.mark.slow
def test_trained_heads_beat_lsh_at_same_bits(saved_dual, split, tmp_path):
    train_file, groups = split
    encoder = HashEncoderConfig(dual_encoder=str(saved_dual), cache_dir=str(tmp_path / "cache"))
    summary = train_hash_heads(
        HashConfig(n_bits=64, hidden=0, init="itq", relax="ste"), HashLossConfig(quantization_weight=0.0), encoder,
        DataConfig(train=str(train_file)), _train(lr=1e-4), tmp_path / "run",
    )
    assert summary["pairs"] > 1000 and summary["loss_parts"][-1]["similarity"] < summary["loss_parts"][0]["similarity"]
    model = load_model(tmp_path / "run" / "model")
    index = index_groups(groups)
    vecs = model.dual_encoder.encode_contexts(index.contexts), model.dual_encoder.encode_responses(index.responses)
    evaluate = VectorRerankEvaluator(groups, *vecs)
    heads, lsh = evaluate(model.heads)["R10@1"], evaluate(RandomHyperplaneLSH(model.heads.in_dim, 64, seed=0))["R10@1"]
    assert heads > lsh, (heads, lsh)
    assert VectorRerankEvaluator(groups, *vecs, scoring="asymmetric")(model.heads)["R10@1"] >= heads - 0.05


@pytest.mark.slow
def test_unfrozen_top_layer_run_embeds_encoder(saved_dual, split, tmp_path):
    encoder = HashEncoderConfig(dual_encoder=str(saved_dual), unfreeze_layers=1)
    train_hash_heads(
        HashConfig(n_bits=64, hidden=32), HashLossConfig(), encoder,
        DataConfig(train=str(split[0]), max_train_pairs=24), _train(batch_size=8, max_steps=2, lr=1e-4), tmp_path,
    )
    model = HashBert.load(tmp_path / "model")
    assert model.config.encoder_embedded and (tmp_path / "model" / "dual_encoder").is_dir()
    assert model.encode_response_codes(["hello there"]).shape == (1, 8)


@pytest.mark.slow
def test_unfrozen_run_starts_from_the_frozen_runs_itq_heads(saved_dual, split, tmp_path):
    """--init itq with --unfreeze-layers fits ITQ on the starting encoder's cached vectors, as a frozen run does:
    after one step at a negligible learning rate both runs' heads are that ITQ's (and differ from a random start)."""
    data = DataConfig(train=str(split[0]), max_train_pairs=64)
    train, cache = _train(batch_size=8, max_steps=1, lr=1e-9), str(tmp_path / "cache")
    weights = {}
    for name, layers, init in (("frozen", 0, "itq"), ("joint", 1, "itq"), ("random", 1, "random")):
        encoder = HashEncoderConfig(dual_encoder=str(saved_dual), cache_dir=cache, unfreeze_layers=layers)
        config = HashConfig(n_bits=64, hidden=0, init=init)
        train_hash_heads(config, HashLossConfig(), encoder, data, train, tmp_path / name)
        weights[name] = HashBert.load(tmp_path / name / "model").heads.context_head.mlp[0].weight.detach()
    assert np.allclose(weights["joint"], weights["frozen"], atol=1e-5)
    assert not np.allclose(weights["random"], weights["frozen"], atol=1e-2)


@pytest.mark.slow
def test_bpr_tiny_run(split, tmp_path):
    from hashbert.training.bpr import train_bpr

    config = BprConfig(encoder=EncoderConfig(**SMALL_ENCODER), n_bits=64)
    data = DataConfig(train=str(split[0]), max_train_pairs=24)
    summary = train_bpr(config, data, _train(batch_size=8, max_steps=2, lr=1e-4), tmp_path)
    assert set(summary["loss_parts"][0]) == {"step_end", "candidate", "rerank"}
    model = HashBert.load(tmp_path / "model")
    assert model.config.recipe == "bpr" and model.config.hash.hidden == 0 and model.config.encoder_embedded
    groups = split[1][:3]
    assert len(model.rerank_scores(groups, scoring="asymmetric")) == 3


@pytest.mark.slow
def test_code_mined_negatives_reach_the_loss_and_re_mine(saved_dual, split, tmp_path, caplog):
    """--hard-negatives model: the heads' own Hamming top-k joins the softmax (the first step's similarity loss,
    same ITQ start and batch, can only rise), is re-mined every N steps, and is recorded in run.json."""
    encoder = HashEncoderConfig(dual_encoder=str(saved_dual), cache_dir=str(tmp_path / "cache"))
    data, heads = DataConfig(train=str(split[0]), max_train_pairs=200), HashConfig(n_bits=64, hidden=0, init="itq")
    loss, train = HashLossConfig(quantization_weight=0.0), _train(batch_size=32, max_steps=3, lr=1e-4)
    plain = train_hash_heads(heads, loss, encoder, data, train, tmp_path / "plain")
    negatives = HardNegativeConfig("model", hard_per_context=2, hard_depth=5, hard_refresh_every=2)
    with caplog.at_level(logging.INFO, logger="hashbert.training.hard_negatives"):
        hard = train_hash_heads(heads, loss, encoder, data, train, tmp_path / "hard", negatives)
    first = lambda summary: summary["loss_parts"][0]["similarity"]  # noqa: E731
    assert first(hard) > first(plain)
    assert sum("mined model negatives for 200 pairs" in r.message for r in caplog.records) == 2  # steps 0 and 2
    assert hard["negatives"]["hard_negatives"] == "model" and plain["negatives"]["hard_negatives"] == "none"
    with pytest.raises(ValueError, match="heads' own codes"):
        train_hash_heads(heads, loss, encoder, data, train, tmp_path / "bm25", HardNegativeConfig("bm25"))
    with pytest.raises(ValueError, match="frozen encoder"):
        unfrozen = HashEncoderConfig(dual_encoder=str(saved_dual), unfreeze_layers=1)
        train_hash_heads(heads, loss, unfrozen, data, train, tmp_path / "joint", negatives)
