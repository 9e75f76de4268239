"""The full-rank table on tiny real runs: its rows, the vector cache, hash models, judges and cross re-ranking."""

from __future__ import annotations

import pytest

from hashbert.evaluation.full_rank_table import FullRankSettings, run_full_rank


@pytest.mark.slow
def test_tiny_real_full_rank(dual_encoder, small_corpus, tmp_path):
    dual_encoder.save(tmp_path / "model")
    pool = tmp_path / "pool.txt"  # 600 real training turns keep the test quick; the test golds are added
    pool.write_text("".join((small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines(True)[:600]))
    settings = FullRankSettings(
        model=str(tmp_path / "model"), pool=str(pool), test=str(small_corpus / "test.txt"),
        train=str(small_corpus / "train.txt"), bits=(64,), candidates=100, itq_contexts=100, timed_contexts=1,
        cache_dir=str(tmp_path / "cache"),
    )
    rows = dict(run_full_rank(settings))
    assert list(rows) == ["DR-BERT (float)", "LSH(64)", "LSH(64) + re-rank@100", "ITQ(64)", "ITQ(64) + re-rank@100"]
    float_row = rows["DR-BERT (float)"]
    assert float_row["Recall@100"] > rows["LSH(64)"]["Recall@100"] - 0.05
    assert float_row["bytes/response"] == 384 * 4 and rows["LSH(64)"]["bytes/response"] == 8
    # the zero-shot encoder already finds golds far above chance among the pool
    assert float_row["MRR"] > 10 / float_row["pool"]
    again = dict(run_full_rank(settings))  # vectors now come from the cache: identical metrics
    assert again["ITQ(64)"]["Recall@10"] == rows["ITQ(64)"]["Recall@10"]


@pytest.mark.slow
def test_full_rank_hash_models_use_their_own_encoder_when_embedded(dual_encoder, small_corpus, tmp_path):
    """A Hash-BERT row hashes the DR-BERT's vectors; a BPR-style model (embedded, changed encoder) its own."""
    import torch

    from hashbert.config import HashBertConfig, HashConfig
    from hashbert.models.hashing.hash_bert import HashBert, referencing
    from hashbert.models.hashing.tower_heads import HashHeads

    dual_dir = dual_encoder.save(tmp_path / "model")
    torch.manual_seed(0)
    hash_config = HashConfig(n_bits=64, hidden=0)
    heads = HashHeads(hash_config, dual_encoder.dim, decoders=False)
    HashBert(referencing(HashBertConfig(hash=hash_config, in_dim=dual_encoder.dim, decoders=False), dual_dir),
             dual_encoder, heads).save(tmp_path / "heads")
    with torch.no_grad():
        for param in dual_encoder.response_encoder.parameters():
            param.mul_(0.0)  # a collapsed response tower: every response the same vector
    embedded = HashBertConfig(
        hash=hash_config, in_dim=dual_encoder.dim, decoders=False, recipe="bpr", encoder_embedded=True
    )
    HashBert(embedded, dual_encoder, heads).save(tmp_path / "bpr")
    pool = tmp_path / "pool.txt"
    pool.write_text("".join((small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines(True)[:300]))
    rows = dict(run_full_rank(FullRankSettings(
        model=str(dual_dir), pool=str(pool), test=str(small_corpus / "test.txt"), bits=(), candidates=50,
        hash_models=(str(tmp_path / "heads"), str(tmp_path / "bpr")), hash_names=("heads-a",), timed_contexts=1,
        cache_dir=str(tmp_path / "cache"),
    )))
    assert list(rows) == ["DR-BERT (float)", "heads-a", "heads-a + re-rank@50", "BPR(64)", "BPR(64) + re-rank@50"]
    # identical codes for every response: the gold ties with the whole pool and ranks last (pessimistic)
    assert rows["BPR(64)"]["Recall@100"] == 0.0 and rows["heads-a"]["Recall@100"] > 0.0


@pytest.mark.slow
def test_tiny_real_full_rank_with_judges_and_cross_rerank(dual_encoder, small_corpus, tmp_path):
    import torch

    from hashbert.config import CrossEncoderConfig, LanguageModelConfig
    from hashbert.models.cross.causal_lm import new_gpt2, save_causal_lm
    from hashbert.models.cross.cross_encoder import CrossEncoder

    torch.manual_seed(0)
    dual_encoder.save(tmp_path / "model")
    dual_encoder.save(tmp_path / "judge")  # a separate directory: the judge is never the retriever itself
    lm_config = LanguageModelConfig.from_flat(layers=1, max_length=48, max_response_length=8)
    save_causal_lm(*new_gpt2(lm_config), tmp_path / "lm", lm_config)
    CrossEncoder.from_base(CrossEncoderConfig.from_flat(max_length=40, max_response_length=8)).save(tmp_path / "cross")
    pool = tmp_path / "pool.txt"
    pool.write_text("".join((small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines(True)[:300]))
    settings = FullRankSettings(
        model=str(tmp_path / "model"), pool=str(pool), test=str(small_corpus / "test.txt"), bits=(64,), candidates=100,
        timed_contexts=1, cache_dir=str(tmp_path / "cache"), relevance_judge=str(tmp_path / "judge"),
        lm=str(tmp_path / "lm"), judge_queries=2, cross_encoder=str(tmp_path / "cross"), cross_depths=(5, 10),
        cross_queries=2,
    )
    rows = dict(run_full_rank(settings))
    for name in ("DR-BERT (float)", "LSH(64)", "LSH(64) + re-rank@100"):
        assert 50 <= rows[name]["Relevance-100"] <= 100 and rows[name]["PPL-100"] > 1
        assert rows[name]["judged queries"] == 2
    # the judge is the retriever's twin, so the float top-100 is the most relevant to it
    assert rows["DR-BERT (float)"]["Relevance-100"] >= rows["LSH(64)"]["Relevance-100"]
    assert set(rows["LSH(64) + BERT re-rank@10"]) == {"Recall@1", "Recall@10", "MRR", "added ms/query", "queries"}
    with pytest.raises(ValueError, match="retriever under test"):
        run_full_rank(FullRankSettings(**{**settings.__dict__, "relevance_judge": str(tmp_path / "model")}))


def test_more_hash_names_than_hash_models_is_refused():
    with pytest.raises(ValueError, match="2 --hash-name for 1 --hash-model"):
        FullRankSettings(model="m", pool="p", test="t", hash_models=("a",), hash_names=("x", "y"))
