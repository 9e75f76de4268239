"""FloatIndex against a NumPy inner-product brute force, on both the BLAS and the direct faiss paths."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.index.dense import BLAS_MIN_QUERIES, FloatIndex


@pytest.mark.parametrize("n_queries", [1, BLAS_MIN_QUERIES, 64])
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_numpy(n_queries, threads):
    rng = np.random.default_rng(n_queries)
    vectors = rng.standard_normal((3000, 48)).astype(np.float32)
    queries = rng.standard_normal((n_queries, 48)).astype(np.float32)
    index = FloatIndex(48, threads=threads)
    index.add(vectors)
    scores, ids = index.search(queries, 20)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and scores.shape == (n_queries, 20)
    exact = queries.astype(np.float64) @ vectors.T.astype(np.float64)
    ref_ids = np.argsort(-exact, axis=1)[:, :20]
    np.testing.assert_allclose(scores, np.take_along_axis(exact, ref_ids, axis=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(ids, ref_ids)  # random floats: no ties


def test_ties_by_id_padding_and_vectors():
    index = FloatIndex(4)
    vectors = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], np.float32)
    index.add(vectors)
    scores, ids = index.search(np.array([[1, 0, 0, 0]], np.float32), 5)
    np.testing.assert_array_equal(ids, [[0, 2, 1, -1, -1]])
    assert scores[0, 0] == scores[0, 1] == 1 and np.isneginf(scores[0, 3:]).all()
    np.testing.assert_array_equal(index.vectors, vectors)
    assert index.nbytes == vectors.nbytes


def test_rejects_bad_input():
    index = FloatIndex(4)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        index.add(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.full((1, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="dim"):
        FloatIndex(0)
