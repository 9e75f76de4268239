"""``FastTokenizer`` (the Rust tokenizer called directly) gives the Hugging Face call's ids and masks on real text."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.data import read_rerank_groups
from hashbert.models.encoder import FastTokenizer


@pytest.mark.parametrize(("max_length", "side"), [(128, "left"), (48, "left"), (32, "right"), (8, "right")])
def test_fast_tokenizer_equals_the_hugging_face_call(dual_encoder, small_corpus, max_length, side):
    tokenizer = dual_encoder.tokenizer
    groups = read_rerank_groups(small_corpus / "test.txt")[:40]
    texts = [dual_encoder.batcher.join_context(g.context) for g in groups] + [c for g in groups for c in g.candidates]
    texts += ["", "ok", "so... 🙂 naïve café — très bien!!", "word " * 300]
    fast = FastTokenizer(tokenizer, max_length, side)
    for batch in (texts[:1], texts[-4:], texts):  # one text (a turn), odd ones, and a padded batch of all
        tokenizer.truncation_side = side
        expected = tokenizer(batch, max_length=max_length, truncation=True, padding=True, return_tensors="np")
        ours = fast(batch)
        for name in ("input_ids", "attention_mask"):
            assert ours[name].dtype == np.int64
            np.testing.assert_array_equal(ours[name], expected[name])
    assert fast(texts)["input_ids"].shape[1] == max_length  # the long texts are cut to max_length
    with pytest.raises(ValueError, match="nothing to tokenize"):
        fast([])
