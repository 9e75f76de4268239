"""Hashing heads on a frozen HDR model: the recipes' losses, and a tiny real run of each recipe that saves a
model which loads and scores."""

from __future__ import annotations

import json

import pytest

from hashbert.config import (
    DataConfig,
    EncoderConfig,
    HashConfig,
    HdrConfig,
    HdrHashTrainConfig,
    TrainConfig,
)
from hashbert.data import read_rerank_groups
from hashbert.losses.bpr import BprLoss
from hashbert.losses.hash_bert import HashBertLoss
from hashbert.losses.vae import VaeLoss
from hashbert.models.hdr.model import HdrModel
from hashbert.models.registry import load_model
from hashbert.training.hdr_hash import recipe_loss, train_hdr_hash


def test_recipes_pick_their_losses():
    assert isinstance(recipe_loss(HdrHashTrainConfig(hdr="unused", recipe="bpr")), BprLoss)
    similarity = recipe_loss(HdrHashTrainConfig(hdr="unused", recipe="similarity"))
    assert isinstance(similarity, HashBertLoss)
    assert similarity.config.quantization_weight == similarity.config.reconstruction_weight == 0
    assert isinstance(recipe_loss(HdrHashTrainConfig(hdr="unused", recipe="vae")), VaeLoss)
    with pytest.raises(ValueError, match="recipe"):
        HdrHashTrainConfig(hdr="unused", recipe="vq")


@pytest.fixture(scope="module")
def tiny_hdr(_base_dual_encoder, tmp_path_factory):
    """A small untrained trs-mv HDR model saved once, and a vector cache shared by the recipes."""
    config = HdrConfig(
        encoder=EncoderConfig(max_response_length=16, max_context_turns=4), aggregator="trs-mv", utterance_length=16,
        vectors_per_utterance=3, layers=1, heads=4, ffn_dim=128,
    )
    dual = _base_dual_encoder
    root = tmp_path_factory.mktemp("tiny_hdr")
    HdrModel(config, dual.context_encoder, dual.response_encoder, dual.tokenizer).save(root / "hdr")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["bpr", "similarity", "vae"])
def test_each_recipe_trains_saves_and_scores(tiny_hdr, small_corpus, tmp_path, recipe):
    data = DataConfig(train=str(small_corpus / "train.txt"), valid=str(small_corpus / "valid.txt"), max_train_pairs=48,
                      max_valid_groups=5)
    train = TrainConfig(lr=1e-3, batch_size=16, epochs=3, warmup_ratio=0.0, save_every=0, progress=False)
    relax = "scaled_tanh" if recipe == "bpr" else "tanh"
    summary = train_hdr_hash(
        HdrHashTrainConfig(hdr=str(tiny_hdr / "hdr"), recipe=recipe, cache_dir=str(tiny_hdr / "cache")),
        HashConfig(n_bits=64, hidden=64, relax=relax), data, train, tmp_path / "run",
    )
    assert summary["pairs"] == 48 and summary["state"]["step"] == 9 and summary["state"]["validations"]
    parts = summary["loss_parts"]
    assert parts[-1] and all(v == v for v in parts[-1].values())  # recorded, finite
    model = load_model(tmp_path / "run" / "model")
    assert model.config.recipe == recipe and model.config.decoders == (recipe == "vae")
    scores = model.rerank_scores(read_rerank_groups(small_corpus / "test.txt")[:3])
    assert len(scores) == 3 and all(len(s) == 10 for s in scores)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["recipe"]["recipe"] == recipe
