"""BERT-FP post-training: the 3-way labels on hand-made dialogues, a finite joint loss, a falling loss."""

from __future__ import annotations

import pytest
import torch

from hashbert.config import PostTrainConfig
from hashbert.losses.post_training import PostTrainingLoss
from hashbert.models.cross.post_training import NEXT, OTHER_DIALOGUE, SAME_DIALOGUE
from hashbert.training.post_training import relevance_examples

DIALOGUES = [("a0", "a1", "a2", "a3", "a4"), ("b0", "b1", "b2"), ("c0", "c1", "c2", "c3")]


def test_relevance_labels_are_right_on_hand_made_dialogues():
    examples = relevance_examples(DIALOGUES, 2000, max_context_turns=2, seed=0)
    owner = {turn: d for d, dialogue in enumerate(DIALOGUES) for turn in dialogue}
    for e in examples:
        d = owner[e.context[-1]]
        i = DIALOGUES[d].index(e.context[-1]) + 1  # the position the context precedes
        assert 1 <= len(e.context) <= 2 and e.context == DIALOGUES[d][max(0, i - 2) : i]
        if e.label == NEXT:
            assert e.candidate == DIALOGUES[d][i]
        elif e.label == SAME_DIALOGUE:
            assert owner[e.candidate] == d and e.candidate != DIALOGUES[d][i]
        else:
            assert e.label == OTHER_DIALOGUE and owner[e.candidate] != d
    shares = [sum(e.label == k for e in examples) / len(examples) for k in (NEXT, SAME_DIALOGUE, OTHER_DIALOGUE)]
    assert shares == pytest.approx([0.25, 0.25, 0.5], abs=0.04)


def test_relevance_needs_two_dialogues():
    with pytest.raises(ValueError, match="two dialogues"):
        relevance_examples([("x", "y"), ("z",)], 10, 2, 0)


@pytest.mark.slow
def test_post_training_model_gives_a_finite_loss_and_saves_an_encoder(tmp_path):
    from hashbert.config import CrossEncoderConfig, DualEncoderConfig, EncoderConfig
    from hashbert.models.cross.cross_encoder import CrossEncoder
    from hashbert.models.cross.post_training import PostTrainingModel
    from hashbert.models.dual_encoder import DualEncoder
    from hashbert.models.encoder import load_backbone, load_tokenizer, resolve_model_dir
    from hashbert.training.post_training import save_encoder_checkpoint

    model_dir = resolve_model_dir("all-MiniLM-L6-v2")
    config = PostTrainConfig.from_flat(max_length=32, max_response_length=8)
    model = PostTrainingModel(load_backbone(model_dir), load_tokenizer(model_dir), config)
    batch = model.collate(relevance_examples(DIALOGUES, 4, 2, 0))
    value = PostTrainingLoss()(*model(**batch))
    assert torch.isfinite(value)
    assert model.mlm_head.predictions.decoder.weight is model.backbone.get_input_embeddings().weight
    save_encoder_checkpoint(model.backbone, model.tokenizer, tmp_path / "encoder", {})
    cross = CrossEncoder.from_base(
        CrossEncoderConfig.from_flat(init=str(tmp_path / "encoder"), max_length=32, max_response_length=8)
    )
    assert cross.row_name == "BERT-FP"
    assert torch.equal(cross.backbone.get_input_embeddings().weight, model.backbone.get_input_embeddings().weight)
    dual = DualEncoder.from_base(DualEncoderConfig(encoder=EncoderConfig.from_flat(init=str(tmp_path / "encoder"))))
    words = dual.context_encoder.backbone.get_input_embeddings().weight
    assert torch.equal(words, model.backbone.get_input_embeddings().weight)


@pytest.mark.slow
def test_post_training_loss_falls_on_a_real_slice(small_corpus, tmp_path):
    from hashbert.config import TrainConfig
    from hashbert.data import read_training_pairs
    from hashbert.models.cross.post_training import PostTrainingModel
    from hashbert.models.encoder import load_backbone, load_tokenizer, resolve_model_dir
    from hashbert.training.trainer import Trainer

    torch.manual_seed(0)
    dialogues = [(*p.context, p.response) for p in read_training_pairs(small_corpus / "train.txt", "last")]
    examples = relevance_examples(dialogues, 16, 2, seed=0)
    model_dir = resolve_model_dir("all-MiniLM-L6-v2")
    config = PostTrainConfig.from_flat(max_length=48, max_response_length=12, max_context_turns=2)
    model = PostTrainingModel(load_backbone(model_dir), load_tokenizer(model_dir), config)
    loss = PostTrainingLoss()
    batch = model.collate(examples)  # one fixed masking, so before and after see the same targets

    def mean_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(loss(*model(**batch)))

    before = mean_loss()
    train = TrainConfig(lr=5e-4, batch_size=8, epochs=5, warmup_ratio=0.0, save_every=0, progress=False, device="cpu")
    Trainer(model, lambda b: loss(*model(**b)), examples, model.collate, train, tmp_path).fit()
    after = mean_loss()
    assert after < before - 0.5, (before, after)  # the MLM part starts near ln(30522) = 10.3
