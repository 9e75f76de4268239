"""TwoStageSearcher equals a brute-force re-rank of the same Hamming candidates."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.codes import unpack_codes
from hashbert.index.binary import BinaryFlatIndex
from hashbert.index.reference import NumpyBinaryIndex
from hashbert.index.two_stage import TwoStageSearcher


def brute_force_rerank(candidates, float_query, store, k):
    """Python loop: score each candidate, sort by (-score, distance, id)."""
    distances, ids = candidates
    rows = []
    for distance, row_id in zip(distances, ids, strict=True):
        if row_id < 0:
            continue
        target = store[row_id]
        signs = unpack_codes(target[None], len(target) * 8)[0] if target.dtype == np.uint8 else target
        rows.append((-float(np.dot(float_query.astype(np.float64), signs.astype(np.float64))), distance, row_id))
    rows.sort()
    return [-score for score, _, _ in rows[:k]], [row_id for _, _, row_id in rows[:k]]


def quantised(rng, shape):
    """Float vectors on a 1/4 grid: dot products are exact in float32 and ties happen."""
    return (np.round(rng.standard_normal(shape) * 4) / 4).astype(np.float32)


@pytest.mark.parametrize("index_cls", [BinaryFlatIndex, NumpyBinaryIndex])
@pytest.mark.parametrize("mode", ["own_codes", "rerank_codes", "rerank_vectors"])
def test_equals_brute_force_rerank(index_cls, mode, codes_256):
    db, queries = codes_256
    rng = np.random.default_rng(3)
    index = index_cls(256)
    index.add(db)
    store = {"own_codes": db, "rerank_codes": rng.integers(0, 256, (len(db), 8), dtype=np.uint8)}.get(mode)
    if mode == "rerank_vectors":
        store = quantised(rng, (len(db), 24))
    width = store.shape[1] * 8 if store.dtype == np.uint8 else store.shape[1]
    float_queries = quantised(rng, (len(queries), width))
    searcher = TwoStageSearcher(
        index,
        rerank_codes=store if mode == "rerank_codes" else None,
        rerank_vectors=store if mode == "rerank_vectors" else None,
        candidates=60,
    )
    scores, ids = searcher.search(queries, float_queries, 20)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and scores.shape == (len(queries), 20)
    candidates = index.search(queries, 60)
    for row in range(len(queries)):
        ref_scores, ref_ids = brute_force_rerank(
            (candidates[0][row], candidates[1][row]), float_queries[row], store, 20
        )
        np.testing.assert_array_equal(scores[row], ref_scores)
        np.testing.assert_array_equal(ids[row], ref_ids)


def test_ties_broken_by_distance_then_id():
    codes = np.array([[0b0000_0011], [0b0000_0001], [0b0000_0011], [0b1000_0000]], dtype=np.uint8)
    index = BinaryFlatIndex(8)
    index.add(codes)
    float_queries = np.zeros((1, 8), np.float32)  # every candidate scores 0
    scores, ids = TwoStageSearcher(index, candidates=4).search(np.zeros((1, 1), np.uint8), float_queries, 4)
    np.testing.assert_array_equal(ids, [[1, 3, 0, 2]])  # distances 1, 1, 2, 2
    assert (scores == 0).all()


def test_explicit_ids_and_padding(codes_256):
    db, queries = codes_256
    index = BinaryFlatIndex(256)
    index.add(db[:5], ids=np.array([50, 40, 30, 20, 10]))
    float_queries = np.ones((2, 256), np.float32)
    scores, ids = TwoStageSearcher(index, candidates=8).search(queries[:2], float_queries, 8)
    assert sorted(ids[0, :5]) == [10, 20, 30, 40, 50] and (ids[:, 5:] == -1).all()
    assert np.isneginf(scores[:, 5:]).all()
    signs = unpack_codes(db[:5], 256).sum(axis=1)
    expected = dict(zip([50, 40, 30, 20, 10], signs, strict=True))
    np.testing.assert_array_equal(scores[0, :5], [expected[i] for i in ids[0, :5]])


def test_rejects_bad_arguments(codes_256):
    db, queries = codes_256
    index = BinaryFlatIndex(256)
    index.add(db)
    with pytest.raises(ValueError, match="not both"):
        TwoStageSearcher(index, rerank_codes=db, rerank_vectors=np.zeros((len(db), 4)))
    with pytest.raises(ValueError, match="one row per index row"):
        TwoStageSearcher(index, rerank_codes=db[:10])
    searcher = TwoStageSearcher(index, candidates=10)
    with pytest.raises(ValueError, match="candidates=10"):
        searcher.search(queries, np.zeros((len(queries), 256)), 11)
    with pytest.raises(ValueError, match="256 columns"):
        searcher.search(queries, np.zeros((len(queries), 128)), 5)
