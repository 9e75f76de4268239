"""CrossEncoder: save/load gives identical scores, SA-BERT's speaker embedding starts neutral, re-rank shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbert.config import CrossEncoderConfig
from hashbert.data import RerankGroup
from hashbert.models.cross.cross_encoder import CrossEncoder
from hashbert.models.registry import load_model

TINY = {"max_length": 40, "max_response_length": 12, "max_context_turns": 3}
CONTEXTS = [("hi, how are you?", "good, and you?"), ("what's your favourite food?",), ("do you like music",)]
RESPONSES = ["i am fine thanks", "pizza, always", "yes, mostly jazz"]


@pytest.fixture(scope="module")
def sa_bert():
    torch.manual_seed(0)
    model = CrossEncoder.from_base(CrossEncoderConfig.from_flat(speakers=True, **TINY))
    with torch.no_grad():
        model.speaker_embeddings.weight.normal_(0, 0.1)  # non-zero, so a lost speaker table would show
    return model.eval()


def test_save_load_gives_identical_scores(sa_bert, tmp_path):
    before = sa_bert.score_pairs(CONTEXTS, RESPONSES, [(0, 1), (1,), None])
    sa_bert.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, CrossEncoder) and loaded.config == sa_bert.config and loaded.row_name == "SA-BERT"
    np.testing.assert_array_equal(loaded.score_pairs(CONTEXTS, RESPONSES, [(0, 1), (1,), None]), before)


def test_speakers_change_sa_bert_scores(sa_bert):
    a = sa_bert.score_pairs(CONTEXTS[:1], RESPONSES[:1], [(0, 1)])
    b = sa_bert.score_pairs(CONTEXTS[:1], RESPONSES[:1], [(1, 0)])
    assert not np.allclose(a, b)


def test_zero_speaker_embedding_scores_as_bert():
    torch.manual_seed(0)
    bert = CrossEncoder.from_base(CrossEncoderConfig.from_flat(**TINY)).eval()
    sa = CrossEncoder.from_base(CrossEncoderConfig.from_flat(speakers=True, **TINY)).eval()
    sa.score_layer.load_state_dict(bert.score_layer.state_dict())
    np.testing.assert_allclose(sa.score_pairs(CONTEXTS, RESPONSES), bert.score_pairs(CONTEXTS, RESPONSES), atol=1e-5)


def test_rerank_scores_match_pair_scores(sa_bert):
    groups = [
        RerankGroup(CONTEXTS[0], tuple(RESPONSES), (1, 0, 0), 1, (0, 1)),
        RerankGroup(CONTEXTS[1], tuple(RESPONSES[:2]), (0, 1), 4),
    ]
    scores = sa_bert.rerank_scores(groups, batch_size=2)
    assert [s.shape for s in scores] == [(3,), (2,)]
    direct = sa_bert.score_pairs([CONTEXTS[0]] * 3, RESPONSES, [(0, 1)] * 3)
    np.testing.assert_allclose(scores[0], direct, atol=1e-5)


def test_mean_pooling_reads_every_real_token_and_cls_the_first():
    torch.manual_seed(0)
    model = CrossEncoder.from_base(CrossEncoderConfig.from_flat(pooling="mean", **TINY)).eval()
    batch = model.tokenize(CONTEXTS, RESPONSES)
    with torch.no_grad():
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        tokens = model.backbone(**inputs).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected_mean = model.score_layer((tokens * mask).sum(1) / mask.sum(1)).squeeze(-1)
        expected_cls = model.score_layer(tokens[:, 0]).squeeze(-1)
        assert torch.allclose(model(**batch), expected_mean, atol=1e-5)
        model.config = CrossEncoderConfig.from_flat(pooling="cls", **TINY)
        assert torch.allclose(model(**batch), expected_cls, atol=1e-5)
    with pytest.raises(ValueError, match="pooling"):
        CrossEncoderConfig.from_flat(pooling="max")


def test_segments_pooling_starts_as_scaled_cosine_of_the_two_sides():
    config = CrossEncoderConfig.from_flat(pooling="segments", segments_scale=10.0, segments_offset=0.25, **TINY)
    model = CrossEncoder.from_base(config).eval()
    batch = model.tokenize(CONTEXTS, RESPONSES)
    with torch.no_grad():
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        tokens = model.backbone(**inputs).last_hidden_state
        logits = model(**batch)
    for i in range(len(CONTEXTS)):
        # Reference by positions: [CLS] + context tokens come first, then the response and its [SEP].
        n_real = int(batch["attention_mask"][i].sum())
        n_context = n_real - int(batch["token_type_ids"][i].sum())
        context_mean = tokens[i, :n_context].mean(0)
        response_mean = tokens[i, n_context:n_real].mean(0)
        cosine = torch.nn.functional.cosine_similarity(context_mean, response_mean, dim=0)
        assert logits[i].item() == pytest.approx(10.0 * (cosine.item() - 0.25), abs=1e-4)
    # Padding does not leak into either side: a pair scored alone scores as it does in the batch.
    alone = model.score_pairs(CONTEXTS[1:2], RESPONSES[1:2])
    np.testing.assert_allclose(alone, logits[1:2].numpy(), atol=1e-4)


def test_a_config_saved_before_the_pooling_option_loads_as_cls(tmp_path):
    import json

    from hashbert.io import write_checksums

    model = CrossEncoder.from_base(CrossEncoderConfig.from_flat(pooling="cls", **TINY)).eval()
    model.save(tmp_path / "model")
    config_file = tmp_path / "model" / "config.json"
    saved = json.loads(config_file.read_text())
    saved["config"].pop("pooling")  # as written by the first release
    config_file.write_text(json.dumps(saved))
    listed = json.loads((tmp_path / "model" / "checksums.json").read_text())
    write_checksums(tmp_path / "model", list(listed))
    assert CrossEncoder.load(tmp_path / "model").config.pooling == "cls"
