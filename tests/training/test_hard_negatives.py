"""Hard-negative mining for DR-BERT on a real Chit-Chat slice: BM25's and the model's own top-k, the exclusion
rules, the seeded draws, the refresh schedule, and ``train_dual_encoder`` feeding them to the loss."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from hashbert.codes import hamming_distance
from hashbert.config import DataConfig, HardNegativeConfig, TrainConfig
from hashbert.data import iter_labelled_lines, read_training_pairs
from hashbert.data.bm25 import near_copy_key
from hashbert.data.sampling import seeded_subsample
from hashbert.training.dual import train_dual_encoder
from hashbert.training.hard_negatives import HardNegativeMiner, TrainingPool, negatives_fingerprint

TINY_RUN = {"batch_size": 8, "max_steps": 1, "save_every": 0, "progress": False, "device": "cpu", "threads": 2}


@pytest.fixture(scope="module")
def corpus(small_corpus):
    """(train path, 40 seeded pairs, the pool, each pair's own dialogue turns)."""
    train = str(small_corpus / "train.txt")
    pairs = seeded_subsample(read_training_pairs(train), 40, seed=0)
    dialogues = [(*line.context, line.response) for line in iter_labelled_lines(train)]
    own = [set().union(*(d for d in dialogues if all(t in d for t in (*p.context, p.response)))) for p in pairs]
    return train, pairs, TrainingPool(dialogues), own


def _check_rules(miner: HardNegativeMiner, own: list[set[str]], depth: int) -> None:
    for pair, ranked, own_turns in zip(miner.pairs, miner.ranked, own, strict=True):
        keys = [near_copy_key(text) for text in ranked]
        assert 1 <= len(ranked) <= depth and len(set(keys)) == len(keys)
        assert near_copy_key(pair.response) not in keys and not own_turns & set(ranked)


def test_bm25_mining_excludes_the_own_conversation_and_near_copies(corpus):
    _, pairs, pool, own = corpus
    miner = HardNegativeMiner(HardNegativeConfig("bm25", hard_per_context=2, hard_depth=5), pairs, pool, seed=0)
    miner.refresh(0, mine_with_model=None)
    _check_rules(miner, own, depth=5)
    assert sum(len(r) == 5 for r in miner.ranked) > 0.9 * len(pairs)  # a 2,000-turn pool fills most lists


def test_draws_are_distinct_and_seeded_by_pair_and_step(corpus):
    _, pairs, pool, _ = corpus
    miner = HardNegativeMiner(HardNegativeConfig("bm25", hard_per_context=3, hard_depth=6), pairs, pool, seed=0)
    miner.refresh(0, mine_with_model=None)
    draws = [miner.draw(i, step=4) for i in range(len(pairs))]
    assert all(len(set(d)) == 3 and set(d) <= set(r) for d, r in zip(draws, miner.ranked, strict=True))
    assert draws == [miner.draw(i, step=4) for i in range(len(pairs))]
    assert draws != [miner.draw(i, step=5) for i in range(len(pairs))]


def test_a_fraction_of_draws_are_random_eligible_turns_by_the_same_rules(corpus):
    _, pairs, pool, own = corpus
    config = HardNegativeConfig("bm25", hard_per_context=2, hard_depth=5, hard_fraction=0.5)
    miner = HardNegativeMiner(config, pairs, pool, seed=0)
    miner.refresh(0, mine_with_model=None)
    draws = [(i, step, miner.draw(i, step)) for i in range(len(pairs)) for step in range(5)]
    mined = [set(d) <= set(miner.ranked[i]) for i, _, d in draws]
    assert 0.3 < np.mean(mined) < 0.7  # about half the (pair, step) draws come from the mined lists
    for i, step, drawn in draws:
        keys = {near_copy_key(text) for text in drawn}
        assert len(keys) == 2 and near_copy_key(pairs[i].response) not in keys and not own[i] & set(drawn)
        assert miner.draw(i, step) == drawn  # seeded by (seed, pair, step)
    never = HardNegativeMiner(HardNegativeConfig("bm25", hard_per_context=2, hard_fraction=0.0), pairs, pool, 0)
    never.refresh(0, mine_with_model=None)
    assert np.mean([set(never.draw(i, 0)) <= set(never.ranked[i]) for i in range(len(pairs))]) < 0.1


def test_bm25_hits_are_cached_in_the_run_directory_and_read_back(corpus, tmp_path, caplog):
    _, pairs, pool, _ = corpus
    config = HardNegativeConfig("bm25", hard_per_context=2, hard_depth=5)
    first = HardNegativeMiner(config, pairs, pool, seed=0, out_dir=tmp_path)
    first.refresh(0, mine_with_model=None)
    assert len(list((tmp_path / "cache").glob("[!.]*/hits.npy"))) == 1
    again = HardNegativeMiner(config, pairs, pool, seed=0, out_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="hashbert.data.vector_cache"):
        again.refresh(0, mine_with_model=None)
    assert again.ranked == first.ranked and any("using the cached" in r.message for r in caplog.records)
    elsewhere = HardNegativeConfig("bm25", hard_per_context=2, hard_depth=5, hard_cache_dir=str(tmp_path / "hits"))
    HardNegativeMiner(elsewhere, pairs, pool, seed=0, out_dir=tmp_path).refresh(0, mine_with_model=None)
    assert len(list((tmp_path / "hits").glob("[!.]*/hits.npy"))) == 1
    assert negatives_fingerprint(elsewhere) == negatives_fingerprint(config)  # where hits live is no setting


def test_model_mining_takes_the_best_scoring_eligible_texts(corpus, dual_encoder):
    _, pairs, pool, own = corpus
    pairs, own = pairs[:12], own[:12]
    config = HardNegativeConfig("model", hard_depth=3, hard_pool_size=150)
    miner = HardNegativeMiner(config, pairs, pool, seed=0)
    miner.mine_with_model(dual_encoder)
    _check_rules(miner, own, depth=3)
    # brute force over the same seeded 150 pool texts: the best eligible text by dot product comes first
    texts = [pool.texts[j] for j in seeded_subsample(range(len(pool.texts)), 150, 0)]
    scores = dual_encoder.encode_contexts([p.context for p in pairs]) @ dual_encoder.encode_responses(texts).T
    for row, pair, own_turns, ranked in zip(scores, pairs, own, miner.ranked, strict=True):
        best = next(texts[j] for j in np.argsort(-row) if texts[j] not in own_turns
                    and near_copy_key(texts[j]) != near_copy_key(pair.response))
        assert ranked[0] == best


def test_model_mining_refreshes_every_n_steps(corpus):
    _, pairs, pool, _ = corpus
    miner = HardNegativeMiner(HardNegativeConfig("model", hard_refresh_every=3), pairs, pool, seed=0)
    mined_at = []
    for step in range(8):
        miner.refresh(step, lambda step=step: mined_at.append(step))
    assert mined_at == [0, 3, 6]


def test_code_mining_ranks_by_hamming_distance_over_the_coded_texts(corpus):
    """The heads' mining: the nearest eligible coded text by Hamming distance comes first; texts without a code
    (not in ``pool_ids``) are never drawn."""
    _, pairs, pool, own = corpus
    rng = np.random.default_rng(0)
    pool_ids = sorted(rng.choice(len(pool.texts), 300, replace=False).tolist())
    context_codes = rng.integers(0, 256, (len(pairs), 8), dtype=np.uint8)  # 64 bits
    pool_codes = rng.integers(0, 256, (len(pool_ids), 8), dtype=np.uint8)
    miner = HardNegativeMiner(HardNegativeConfig("model", hard_depth=4), pairs, pool, seed=0)
    miner.mine_with_codes(context_codes, pool_codes, pool_ids)
    _check_rules(miner, own, depth=4)
    coded = {pool.texts[j] for j in pool_ids}
    distances = hamming_distance(context_codes, pool_codes)
    for pair, own_turns, ranked, row in zip(pairs, own, miner.ranked, distances, strict=True):
        assert set(ranked) <= coded
        eligible = [j for j in range(len(pool_ids)) if pool.texts[pool_ids[j]] not in own_turns
                    and near_copy_key(pool.texts[pool_ids[j]]) != near_copy_key(pair.response)]
        nearest = min(row[j] for j in eligible)
        assert row[pool_ids.index(pool.id_of(ranked[0]))] == nearest


def _train(corpus_path: str, out, negatives: HardNegativeConfig, small_config, **overrides) -> dict:
    data = DataConfig(train=corpus_path, max_train_pairs=32)
    return train_dual_encoder(small_config, data, TrainConfig(**{**TINY_RUN, **overrides}), out, negatives)


def test_hard_negatives_reach_the_loss(corpus, small_config, tmp_path):
    train = corpus[0]
    plain = _train(train, tmp_path / "plain", HardNegativeConfig(), small_config)
    hard = _train(train, tmp_path / "bm25", HardNegativeConfig("bm25", hard_per_context=2), small_config)
    # same weights, same batch: two more candidates per context can only raise the first step's loss
    assert hard["state"]["losses"][0] > plain["state"]["losses"][0]
    saved = json.loads((tmp_path / "bm25" / "run.json").read_text())
    assert saved["negatives"]["hard_negatives"] == "bm25" and (tmp_path / "bm25" / "model").is_dir()


def test_model_negatives_train_and_re_mine(corpus, small_config, tmp_path, caplog):
    negatives = HardNegativeConfig("model", hard_refresh_every=1, hard_pool_size=100)
    with caplog.at_level(logging.INFO, logger="hashbert.training.hard_negatives"):
        summary = _train(corpus[0], tmp_path / "ance", negatives, small_config, max_steps=2)
    assert summary["total_steps"] == 2 and np.isfinite(summary["state"]["losses"]).all()
    assert sum("mined model negatives" in record.message for record in caplog.records) == 2  # steps 0 and 1


def test_denoising_drops_exactly_the_negatives_scored_near_the_positive(corpus, dual_encoder, tmp_path):
    """A denoised list is the plain BM25 list less the texts the denoiser scores at or above the positive minus the
    margin (order kept); a list emptied by it is completed at random like any short list."""
    _, pairs, pool, own = corpus
    pairs, own = pairs[:16], own[:16]
    dual_encoder.save(tmp_path / "denoiser")
    plain = HardNegativeMiner(HardNegativeConfig("bm25", hard_depth=6), pairs, pool, seed=0)
    plain.refresh(0, mine_with_model=None)
    config = HardNegativeConfig("bm25", hard_depth=6, hard_denoise_model=str(tmp_path / "denoiser"),
                                hard_denoise_margin=0.02)
    denoised = HardNegativeMiner(config, pairs, pool, seed=0)
    denoised.refresh(0, mine_with_model=None)
    _check_rules(denoised, own, depth=6)
    contexts = dual_encoder.encode_contexts([p.context for p in pairs])
    kept = dropped = 0
    for context, pair, before, after in zip(contexts, pairs, plain.ranked, denoised.ranked, strict=True):
        texts = [pair.response, *before]
        scores = dual_encoder.encode_responses(texts) @ context
        expected = [t for t, s in zip(before, scores[1:], strict=True) if s < scores[0] - 0.02]
        assert after == expected or (not expected and len(after) == 1 and after[0] not in before)
        kept, dropped = kept + len(expected), dropped + len(before) - len(expected)
    assert kept > 0 and dropped > 0  # the real encoder keeps some BM25 negatives and vets out others


def test_denoising_needs_mined_negatives():
    with pytest.raises(ValueError, match="--hard-denoise-model"):
        HardNegativeConfig(hard_denoise_model="runs/dr-bert/model")
