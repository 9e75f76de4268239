"""NumpyBinaryIndex against a plain full sort of all distances (ties: earliest row first)."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.codes import MISSING_DISTANCE, hamming_distance
from hashbert.index.reference import NumpyBinaryIndex


def full_sort_topk(queries: np.ndarray, db: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    dist = hamming_distance(queries, db)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # stable: equal distances keep row order
    return np.take_along_axis(dist, order, axis=1), order.astype(np.int64)


@pytest.mark.parametrize("n_bits", [64, 128, 256])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_matches_full_sort_exactly(n_bits, k, make_codes):
    db, queries = make_codes(1500, 30, n_bits, seed=n_bits)
    index = NumpyBinaryIndex(n_bits)
    index.add(db)
    distances, ids = index.search(queries, k)
    ref_d, ref_i = full_sort_topk(queries, db, k)
    np.testing.assert_array_equal(distances, ref_d)
    np.testing.assert_array_equal(ids, ref_i)


def test_all_codes_equal_ties_keep_smallest_ids():
    index = NumpyBinaryIndex(64)
    index.add(np.full((50, 8), 7, dtype=np.uint8))
    distances, ids = index.search(np.full((2, 8), 7, dtype=np.uint8), 5)
    assert (distances == 0).all()
    np.testing.assert_array_equal(ids, [[0, 1, 2, 3, 4]] * 2)


def test_pads_when_k_exceeds_size_and_when_empty():
    index = NumpyBinaryIndex(64)
    distances, ids = index.search(np.zeros((1, 8), np.uint8), 3)
    assert (ids == -1).all() and (distances == MISSING_DISTANCE).all()
    index.add(np.zeros((2, 8), np.uint8))
    distances, ids = index.search(np.zeros((1, 8), np.uint8), 3)
    np.testing.assert_array_equal(ids, [[0, 1, -1]])
    np.testing.assert_array_equal(distances, [[0, 0, MISSING_DISTANCE]])


def test_incremental_adds_and_nbytes(make_codes):
    db, queries = make_codes(600, 10, 128)
    once, twice = NumpyBinaryIndex(128), NumpyBinaryIndex(128)
    once.add(db)
    twice.add(db[:250])
    twice.add(db[250:])
    assert len(twice) == 600 and twice.nbytes == 600 * 16
    for left, right in zip(once.search(queries, 20), twice.search(queries, 20), strict=True):
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((3, 7), np.uint8), np.zeros((3, 8), np.int64), np.zeros(8, np.uint8)],
)
def test_rejects_wrong_shape_or_dtype(bad):
    with pytest.raises(ValueError, match="packed codes"):
        NumpyBinaryIndex(64).add(bad)


def test_rejects_bad_n_bits_and_k():
    with pytest.raises(ValueError, match="multiple of 8"):
        NumpyBinaryIndex(60)
    index = NumpyBinaryIndex(64)
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.zeros((1, 8), np.uint8), 0)
