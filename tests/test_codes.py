"""hashbert.codes against bit-by-bit Python loops on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert import codes
from hashbert.codes import (
    MISSING_DISTANCE,
    binarize,
    hamming_distance,
    hamming_topk,
    pack_codes,
    sign_dot,
    unpack_bits,
    unpack_codes,
)


def pack_by_hand(signs: np.ndarray) -> np.ndarray:
    """Bit j of a code -> bit (7 - j % 8) of byte j // 8; +1 -> 1."""
    out = np.zeros((len(signs), signs.shape[1] // 8), dtype=np.uint8)
    for row in range(len(signs)):
        for j, sign in enumerate(signs[row]):
            if sign > 0:
                out[row, j // 8] |= 1 << (7 - j % 8)
    return out


def hamming_by_hand(a: np.ndarray, b: np.ndarray) -> int:
    return sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b, strict=True))


@pytest.fixture(params=[8, 24, 64, 96, 256])
def signs(request) -> np.ndarray:
    return np.random.default_rng(request.param).choice(np.array([-1, 1], np.int8), size=(13, request.param))


def test_binarize_zero_is_positive():
    np.testing.assert_array_equal(binarize(np.array([[-0.5, 0.0, -0.0, 2.0]])), [[-1, 1, 1, 1]])
    assert binarize(np.zeros((2, 3))).dtype == np.int8
    with pytest.raises(ValueError, match="NaN"):
        binarize(np.array([np.nan]))


def test_pack_matches_hand_packing_and_numpy_layout(signs):
    packed = pack_codes(signs)
    assert packed.dtype == np.uint8 and packed.shape == (13, signs.shape[1] // 8)
    np.testing.assert_array_equal(packed, pack_by_hand(signs))
    np.testing.assert_array_equal(packed, np.packbits(signs > 0, axis=1))


def test_bit_zero_is_msb_of_byte_zero():
    signs = -np.ones((1, 16), np.int8)
    signs[0, 0] = 1
    np.testing.assert_array_equal(pack_codes(signs), [[0b1000_0000, 0]])


def test_pack_accepts_signs_bits_and_bools(signs):
    bits = (signs > 0).astype(np.uint8)
    for variant in (bits, bits.astype(bool), signs.astype(np.float32), bits.astype(np.int64)):
        np.testing.assert_array_equal(pack_codes(variant), pack_codes(signs))


def test_round_trip(signs):
    packed = pack_codes(signs)
    np.testing.assert_array_equal(unpack_codes(packed, signs.shape[1]), signs)
    np.testing.assert_array_equal(unpack_bits(packed, signs.shape[1]), signs > 0)
    assert unpack_codes(packed, signs.shape[1]).dtype == np.int8
    assert unpack_codes(packed[None], signs.shape[1]).shape == (1, *signs.shape)  # leading axes kept


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones((2, 12), np.int8), "multiple of 8"),
        (np.ones(8, np.int8), "2-D"),
        (np.full((1, 8), 2), "values must be"),
        (np.full((1, 8), 0.5), "values must be"),
        (np.array([[-1, 0, 1, 1, 1, 1, 1, 1]]), "mixed"),
    ],
)
def test_pack_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        pack_codes(bad)


def test_unpack_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        unpack_codes(np.zeros((3, 4), np.uint8), 16)


@pytest.mark.parametrize("table_popcount", [False, True])
def test_hamming_distance_matches_hand_count(signs, table_popcount, monkeypatch):
    if table_popcount:
        monkeypatch.setattr(codes, "_HAS_BITWISE_COUNT", False)
    monkeypatch.setattr(codes, "_BLOCK_ELEMENTS", 16)  # force several blocks
    packed = pack_codes(signs)
    other = pack_codes(signs[::-1][:7])
    dist = hamming_distance(packed, other)
    assert dist.dtype == np.int32 and dist.shape == (13, 7)
    for i in range(13):
        for j in range(7):
            assert dist[i, j] == hamming_by_hand(packed[i], other[j])
    # Hamming distance = (n_bits - a . b) / 2 on ±1 codes
    dots = signs.astype(np.int32) @ signs[::-1][:7].T.astype(np.int32)
    np.testing.assert_array_equal(dist, (signs.shape[1] - dots) // 2)


def test_hamming_distance_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="code sizes differ"):
        hamming_distance(np.zeros((1, 8), np.uint8), np.zeros((1, 16), np.uint8))


@pytest.mark.parametrize("k", [1, 5, 40, 60])
def test_hamming_topk_ties_by_smaller_id(k, monkeypatch):
    monkeypatch.setattr(codes, "_BLOCK_ELEMENTS", 64)  # several query blocks
    rng = np.random.default_rng(k)
    db = rng.integers(0, 4, size=(40, 1), dtype=np.uint8)  # 8-bit codes with only 4 values: ties everywhere
    queries = rng.integers(0, 256, size=(9, 1), dtype=np.uint8)
    distances, ids = hamming_topk(queries, db, k)
    assert distances.shape == ids.shape == (9, k) and distances.dtype == np.int32 and ids.dtype == np.int64
    full = hamming_distance(queries, db)
    order = np.argsort(full, axis=1, kind="stable")  # stable: equal distances keep the smaller row first
    kk = min(k, 40)
    np.testing.assert_array_equal(ids[:, :kk], order[:, :kk])
    np.testing.assert_array_equal(distances[:, :kk], np.take_along_axis(full, order[:, :kk], axis=1))
    assert (ids[:, kk:] == -1).all() and (distances[:, kk:] == MISSING_DISTANCE).all()


def test_hamming_topk_empty_db_and_bad_k():
    distances, ids = hamming_topk(np.zeros((2, 1), np.uint8), np.zeros((0, 1), np.uint8), 3)
    assert (ids == -1).all() and (distances == MISSING_DISTANCE).all()
    with pytest.raises(ValueError, match="k must be"):
        hamming_topk(np.zeros((2, 1), np.uint8), np.zeros((3, 1), np.uint8), 0)


def test_sign_dot_all_pairs_and_per_query(signs):
    n_bits = signs.shape[1]
    packed = pack_codes(signs)
    queries = np.random.default_rng(0).standard_normal((3, n_bits)).astype(np.float32)
    expected = queries @ signs.T.astype(np.float32)
    np.testing.assert_allclose(sign_dot(queries, packed, n_bits), expected, rtol=1e-5, atol=1e-5)
    per_query = np.stack([packed[[0, 5]], packed[[1, 2]], packed[[12, 12]]])  # (3, 2, n_bytes)
    np.testing.assert_allclose(
        sign_dot(queries, per_query, n_bits),
        expected[[[0], [1], [2]], [[0, 5], [1, 2], [12, 12]]],
        rtol=1e-5,
        atol=1e-5,
    )


def test_sign_dot_ranks_like_zero_one_bits(signs):
    n_bits = signs.shape[1]
    query = np.random.default_rng(1).standard_normal((1, n_bits)).astype(np.float64)
    plus_minus = (query @ signs.T.astype(np.float64))[0]
    zero_one = (query @ (signs > 0).T.astype(np.float64))[0]
    np.testing.assert_allclose(plus_minus, 2 * zero_one - query.sum(), atol=1e-9)  # per-query affine map
    np.testing.assert_array_equal(np.argsort(-plus_minus, kind="stable"), np.argsort(-zero_one, kind="stable"))


def test_sign_dot_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="float_queries"):
        sign_dot(np.zeros((2, 8)), np.zeros((3, 2), np.uint8), 16)
    with pytest.raises(ValueError, match="per-query"):
        sign_dot(np.zeros((2, 16)), np.zeros((3, 4, 2), np.uint8), 16)
