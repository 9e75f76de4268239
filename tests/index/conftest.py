"""Fixtures for index tests: structured (not uniform random) codes and a tie-aware top-k comparison."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hashbert.codes import MISSING_ID, binarize, hamming_distance, pack_codes


def structured_codes(n_db: int, n_queries: int, n_bits: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes the way a hashing model makes them: signs of a low-rank Gaussian projection of clustered vectors.

    Returns (db, queries) packed uint8; queries come from the same clusters, a few are exact copies of
    database rows, and the database holds exact duplicates, so distance ties are common.
    """
    rng = np.random.default_rng(seed)
    dim, rank, n_clusters = 48, 12, 16
    centres = rng.standard_normal((n_clusters, dim))
    projection = rng.standard_normal((dim, rank)) @ rng.standard_normal((rank, n_bits))  # rank-12 hyperplanes

    def sample(n: int) -> np.ndarray:
        vectors = centres[rng.integers(n_clusters, size=n)] + 0.6 * rng.standard_normal((n, dim))
        return pack_codes(binarize(vectors @ projection))

    db = sample(n_db)
    db[n_db // 2 : n_db // 2 + n_db // 20] = db[: n_db // 20]  # 5% exact duplicates
    queries = sample(n_queries)
    queries[: n_queries // 4] = db[rng.integers(n_db, size=n_queries // 4)]
    return db, queries


@pytest.fixture(scope="session")
def make_codes() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """The ``structured_codes`` factory (test modules must not import conftest)."""
    return structured_codes


@pytest.fixture(scope="session")
def codes_256() -> tuple[np.ndarray, np.ndarray]:
    """(db (3000, 32), queries (40, 32)) structured 256-bit codes."""
    return structured_codes(3000, 40, 256, seed=1)


@pytest.fixture()
def assert_same_topk() -> Callable[..., None]:
    """Tie-aware top-k check in the manner of faiss ``check_ref_knn_with_draws``.

    Per query: the sorted distances are equal; the ids strictly closer than the k-th distance are the
    same set; every returned id is unique and really at its reported distance.
    """

    def check(ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], queries, db) -> None:
        ref_d, ref_i = ref
        got_d, got_i = got
        assert got_d.dtype == np.int32 and got_i.dtype == np.int64 and got_d.shape == ref_d.shape
        np.testing.assert_array_equal(got_d, ref_d)
        for row in range(len(ref_d)):
            kth = ref_d[row, -1]
            assert set(ref_i[row][ref_d[row] < kth]) == set(got_i[row][got_d[row] < kth]), f"query {row}"
            valid = got_i[row] != MISSING_ID
            assert len(set(got_i[row][valid])) == valid.sum()
            true = hamming_distance(queries[row : row + 1], db[got_i[row][valid]])[0]
            np.testing.assert_array_equal(true, got_d[row][valid])

    return check
