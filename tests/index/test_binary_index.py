"""faiss binary indexes return the same top-k as the NumPy reference (tie-aware), on structured codes."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.codes import MISSING_DISTANCE
from hashbert.index.binary import BinaryFlatIndex, BinaryIVFIndex
from hashbert.index.reference import NumpyBinaryIndex


def reference(db: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    index = NumpyBinaryIndex(db.shape[1] * 8)
    index.add(db)
    return index.search(queries, k)


@pytest.mark.parametrize("n_bits", [64, 128, 256, 512])
@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("threads", [1, 2])
def test_flat_matches_reference(n_bits, k, threads, make_codes, assert_same_topk):
    db, queries = make_codes(2000, 30, n_bits, seed=n_bits + k)
    index = BinaryFlatIndex(n_bits, threads=threads)
    index.add(db)
    got = index.search(queries, k)
    assert_same_topk(reference(db, queries, k), got, queries, db)
    assert index.nbytes == db.nbytes and len(index) == len(db)


def test_flat_orders_ties_by_id(codes_256):
    db, queries = codes_256
    index = BinaryFlatIndex(256)
    index.add(db)
    distances, ids = index.search(queries, 100)
    order = np.lexsort((ids, distances), axis=-1)
    np.testing.assert_array_equal(order, np.broadcast_to(np.arange(100), order.shape))


def test_flat_collapsed_codes_all_tied(assert_same_topk):
    db = np.tile(np.arange(8, dtype=np.uint8), (300, 1))
    db[::7, 0] ^= 1  # a few codes one bit away
    queries = db[:3].copy()
    index = BinaryFlatIndex(64)
    index.add(db)
    assert_same_topk(reference(db, queries, 50), index.search(queries, 50), queries, db)


def test_flat_codes_view_and_padding(codes_256):
    db, queries = codes_256
    index = BinaryFlatIndex(256)
    np.testing.assert_array_equal(index.codes, np.empty((0, 32), np.uint8))
    index.add(db[:5])
    np.testing.assert_array_equal(index.codes, db[:5])
    distances, ids = index.search(queries[:2], 8)
    assert (ids[:, 5:] == -1).all() and (distances[:, 5:] == MISSING_DISTANCE).all()


def test_flat_with_explicit_ids(codes_256, assert_same_topk):
    db, queries = codes_256
    ids = np.random.default_rng(0).permutation(10 * len(db))[: len(db)].astype(np.int64)
    index = BinaryFlatIndex(256)
    index.add(db[:1000], ids=ids[:1000])
    index.add(db[1000:], ids=ids[1000:])
    distances, got_ids = index.search(queries, 20)
    positions = index.positions_of(got_ids)
    np.testing.assert_array_equal(ids[positions], got_ids)
    assert_same_topk(reference(db, queries, 20), (distances, positions), queries, db)
    with pytest.raises(ValueError, match="unique"):
        index.add(db[:1], ids=ids[:1])
    with pytest.raises(ValueError, match="explicit ids"):
        index.add(db[:1])


def test_ivf_full_probe_is_exact(codes_256, assert_same_topk):
    db, queries = codes_256
    index = BinaryIVFIndex(256, nlist=20, nprobe=20, threads=2)
    index.add(db)
    assert_same_topk(reference(db, queries, 50), index.search(queries, 50), queries, db)


def test_ivf_partial_probe_is_approximate_but_close(codes_256):
    db, queries = codes_256
    index = BinaryIVFIndex(256, nlist=20, nprobe=4)
    index.add(db)
    distances, _ = index.search(queries, 10)
    ref_d, _ = reference(db, queries, 10)
    assert (distances >= ref_d).all()  # never closer than exact
    assert (distances[:, 0] == ref_d[:, 0]).mean() >= 0.8


def test_ivf_retrains_after_add_and_defaults(codes_256, assert_same_topk):
    db, queries = codes_256
    index = BinaryIVFIndex(256, nprobe=10_000)
    assert index.search(queries, 5)[1].max() == -1  # empty: padded, nothing to train
    index.add(db[:1000])
    index.search(queries, 5)
    index.add(db[1000:])
    assert index.nlist_used == min(round(4 * np.sqrt(len(db))), len(db) // 39)
    assert_same_topk(reference(db, queries, 30), index.search(queries, 30), queries, db)
    assert index.nbytes > db.nbytes


def test_ivf_rejects_bad_parameters():
    with pytest.raises(ValueError, match="nprobe"):
        BinaryIVFIndex(64, nprobe=0)
    with pytest.raises(ValueError, match="nlist"):
        BinaryIVFIndex(64, nlist=0)
    with pytest.raises(ValueError, match="threads"):
        BinaryFlatIndex(64, threads=0)
