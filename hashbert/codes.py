"""Binary hash codes: the only place hashbert turns numbers into bits and counts them (NumPy only).

Conventions used everywhere in hashbert:

* **Signs.** ``binarize`` maps ``x >= 0`` to ``+1`` and ``x < 0`` to ``-1`` (zero is positive, as in
  ``torch.sign`` followed by "replace 0 with +1"; a code never contains 0).
* **Packing.** A code of ``n_bits`` signs is stored as ``n_bits / 8`` bytes (``uint8``) in NumPy
  ``packbits`` layout, the layout faiss ``IndexBinary*`` expects: bit ``j`` of the code is bit
  ``7 - j % 8`` (big-endian within the byte) of byte ``j // 8``, so bit 0 is the most significant bit
  of byte 0. A ``+1`` sign is stored as bit 1 and ``-1`` as bit 0.
* **Hamming distance** between two ±1 codes ``a, b`` of ``n_bits`` is ``(n_bits - a . b) / 2``.

References: Hash-BERT (arXiv 2012.09647) Sec. 3; BPR (ACL 2021) Sec. 3.2 for the asymmetric re-rank.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

# Pad values for missing results (k larger than the database); shared with hashbert.index.
MISSING_ID = -1
MISSING_DISTANCE = np.iinfo(np.int32).max

# Upper bound on the elements of one temporary block (keeps chunked work near 256 MB).
_BLOCK_ELEMENTS = 1 << 25

_POPCOUNT_TABLE = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # NumPy >= 2.0


def binarize(x: np.ndarray) -> np.ndarray:
    """Signs of continuous hash vectors: ``+1`` where ``x >= 0`` (zero counts as positive), else ``-1``.

    Args:
        x: (..., n_bits) real array.

    Returns:
        (..., n_bits) int8 array of ±1.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError("binarize: input contains NaN or infinity")
    return np.where(x >= 0, np.int8(1), np.int8(-1))


def pack_codes(signs_or_bits: np.ndarray) -> np.ndarray:
    """Pack codes 8 bits per byte, bit 0 in the most significant bit of byte 0 (``np.packbits`` layout).

    Args:
        signs_or_bits: (n, n_bits) array of ±1, of {0, 1}, or bool; ``+1``/``1``/``True`` become bit 1.
            ``n_bits`` must be a multiple of 8.

    Returns:
        (n, n_bits // 8) uint8 packed codes.
    """
    x = np.asarray(signs_or_bits)
    if x.ndim != 2:
        raise ValueError(f"pack_codes: expected a 2-D (n, n_bits) array, got shape {x.shape}")
    if x.shape[1] % 8 != 0:
        raise ValueError(f"pack_codes: n_bits must be a multiple of 8, got {x.shape[1]}")
    if x.dtype != np.bool_:
        if x.size and (x.min() < -1 or x.max() > 1 or (x.dtype.kind == "f" and not np.isin(x, (-1, 0, 1)).all())):
            raise ValueError("pack_codes: values must be ±1, {0, 1} or bool")
        if x.size and x.min() == -1 and (x == 0).any():
            raise ValueError("pack_codes: mixed -1 and 0 values; pass ±1 signs or {0, 1} bits, not both")
        x = x > 0
    return np.packbits(x, axis=1)


def unpack_bits(codes: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of ``pack_codes`` as bits.

    Args:
        codes: (..., n_bits // 8) uint8 packed codes.
        n_bits: code length in bits.

    Returns:
        (..., n_bits) uint8 array of {0, 1}.
    """
    codes = _check_codes(codes, n_bits, "unpack_bits", min_ndim=1)
    return np.unpackbits(codes, axis=-1)


def unpack_codes(codes: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of ``pack_codes`` as signs.

    Args:
        codes: (..., n_bits // 8) uint8 packed codes.
        n_bits: code length in bits.

    Returns:
        (..., n_bits) int8 array of ±1.
    """
    bits = unpack_bits(codes, n_bits).view(np.int8)
    return bits * np.int8(2) - np.int8(1)


def hamming_distance(a_codes: np.ndarray, b_codes: np.ndarray) -> np.ndarray:
    """All-pairs Hamming distances, computed in blocks of ``a_codes`` rows to bound memory.

    Args:
        a_codes: (na, n_bytes) uint8 packed codes.
        b_codes: (nb, n_bytes) uint8 packed codes.

    Returns:
        (na, nb) int32 distances.
    """
    a_words, b_words = _as_words(a_codes), _as_words(b_codes)
    if a_words.shape[1] != b_words.shape[1] or a_codes.shape[1] != b_codes.shape[1]:
        raise ValueError(f"hamming_distance: code sizes differ ({a_codes.shape[1]} vs {b_codes.shape[1]} bytes)")
    na, nb, n_words = len(a_words), len(b_words), a_words.shape[1]
    out = np.empty((na, nb), dtype=np.int32)
    rows = max(1, _BLOCK_ELEMENTS // max(1, nb * n_words))
    for start in range(0, na, rows):
        # xor: (rows, nb, n_words) words of differing bits
        xor = np.bitwise_xor(a_words[start : start + rows, None, :], b_words[None, :, :])
        out[start : start + rows] = _popcount(xor).sum(axis=-1, dtype=np.int32)
    return out


def hamming_topk(query_codes: np.ndarray, db_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest codes by Hamming distance; ties broken by the smaller database row.

    faiss ``IndexBinary*`` returns equal distances in arbitrary order (and may keep a different subset
    of the rows tied at the k-th distance), so compare results tie-aware, never row by row.

    Args:
        query_codes: (nq, n_bytes) uint8 packed codes.
        db_codes: (n, n_bytes) uint8 packed codes.
        k: number of neighbours; rows past ``n`` are padded with distance ``MISSING_DISTANCE``
            (int32 max) and id ``MISSING_ID`` (-1).

    Returns:
        distances: (nq, k) int32, ascending; ids: (nq, k) int64 database rows.
    """
    if k < 1:
        raise ValueError(f"hamming_topk: k must be >= 1, got {k}")
    nq, n = len(query_codes), len(db_codes)
    distances = np.full((nq, k), MISSING_DISTANCE, dtype=np.int32)
    ids = np.full((nq, k), MISSING_ID, dtype=np.int64)
    kk = min(k, n)
    if kk == 0 or nq == 0:
        return distances, ids
    rows = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, nq, rows):
        dist = hamming_distance(query_codes[start : start + rows], db_codes)  # (rows, n) int32
        # Unique sort key distance * n + row: argpartition on it gives the smallest rows among ties.
        key = dist.astype(np.int64) * n + np.arange(n, dtype=np.int64)
        top = np.argpartition(key, kk - 1, axis=1)[:, :kk] if kk < n else np.broadcast_to(np.arange(n), key.shape)
        top = np.take_along_axis(top, np.argsort(np.take_along_axis(key, top, axis=1), axis=1), axis=1)
        distances[start : start + rows, :kk] = np.take_along_axis(dist, top, axis=1)
        ids[start : start + rows, :kk] = top
    return distances, ids


def sign_dot(float_queries: np.ndarray, codes: np.ndarray, n_bits: int) -> np.ndarray:
    """Asymmetric score: float query vector dotted with the ±1 signs of packed codes (BPR re-rank).

    Scoring against {0, 1} bits instead ranks identically: ``q . s = 2 q . b - sum(q)`` and ``sum(q)``
    is constant per query. We use ±1 so that scores match the papers.

    Args:
        float_queries: (nq, n_bits) float query vectors.
        codes: (nc, n_bytes) uint8, scored against every query, or (nq, l, n_bytes) uint8, a
            separate list of l candidate codes per query.

    Returns:
        (nq, nc) or (nq, l) float32 scores.
    """
    queries = np.asarray(float_queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != n_bits:
        raise ValueError(f"sign_dot: float_queries must be (nq, {n_bits}), got shape {queries.shape}")
    codes = _check_codes(codes, n_bits, "sign_dot", min_ndim=2)
    if codes.ndim == 2:
        return queries @ unpack_codes(codes, n_bits).astype(np.float32).T
    if codes.ndim != 3 or len(codes) != len(queries):
        raise ValueError(f"sign_dot: per-query codes must be ({len(queries)}, l, n_bytes), got {codes.shape}")
    nq, n_cand = codes.shape[:2]
    out = np.empty((nq, n_cand), dtype=np.float32)
    rows = max(1, _BLOCK_ELEMENTS // max(1, n_cand * n_bits))
    for start in range(0, nq, rows):
        signs = unpack_codes(codes[start : start + rows], n_bits).astype(np.float32)  # (rows, l, n_bits)
        # einsum, not matmul: OpenBLAS goes multi-threaded on these gemv shapes (from 512 bits x 1000
        # candidates) and is then ~100x slower whenever the other core is busy.
        out[start : start + rows] = np.einsum("rlb,rb->rl", signs, queries[start : start + rows])
    return out


def _check_codes(codes: np.ndarray, n_bits: int, caller: str, min_ndim: int) -> np.ndarray:
    codes = np.asarray(codes)
    if n_bits <= 0 or n_bits % 8 != 0:
        raise ValueError(f"{caller}: n_bits must be a positive multiple of 8, got {n_bits}")
    if codes.dtype != np.uint8 or codes.ndim < min_ndim or codes.shape[-1] != n_bits // 8:
        raise ValueError(
            f"{caller}: expected uint8 codes of shape (..., {n_bits // 8}), got {codes.dtype} {codes.shape}"
        )
    return codes


def _as_words(codes: np.ndarray) -> np.ndarray:
    """View (n, n_bytes) uint8 codes as the widest unsigned words that divide n_bytes (fewer popcounts)."""
    codes = np.ascontiguousarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise ValueError(f"expected (n, n_bytes) uint8 codes, got {codes.dtype} {codes.shape}")
    if not _HAS_BITWISE_COUNT:
        return codes  # the lookup-table popcount works byte by byte
    for dtype in (np.uint64, np.uint32, np.uint16):
        if codes.shape[1] % np.dtype(dtype).itemsize == 0:
            return codes.view(dtype)
    return codes


def _popcount(words: np.ndarray) -> np.ndarray:
    """Bits set in each element (uint8 result)."""
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(words)
    return _POPCOUNT_TABLE[words]
