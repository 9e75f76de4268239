"""Training-free and classic hashing baselines over dense vectors (NumPy only, no torch).

* ``RandomHyperplaneLSH``: signs of ``n_bits`` seeded Gaussian projections (Charikar 2002), fit-free.
* ``SignHash``: the sign of each dense coordinate (sentence-transformers' binary quantisation); ``n_bits = dim``.
* ``ITQ``: iterative quantisation (Gong & Lazebnik, CVPR 2011): PCA to ``n_bits``, then an orthogonal
  rotation learned to minimise ``||B - V R||^2``. When ``n_bits`` exceeds the dimension, PCA cannot
  give more directions: the bits are split into ``ceil(n_bits / dim)`` near-equal blocks, each block
  projects the centred vectors onto a seeded random orthonormal ``k``-frame of the whole space
  ("random rotation expansion") and learns its own ITQ rotation.

Each is a ``VectorHasher`` (``scoring``): ``context_hash_vectors``/``response_hash_vectors`` give the
continuous projections whose signs are the codes (and which the asymmetric score uses as the float
context). Saved as a directory: ``config.json`` + ``arrays.safetensors`` + ``checksums.json`` (no pickles).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from hashbert import __version__
from hashbert.io import ArtefactError, atomic_directory, read_json, verify_checksums, write_checksums, write_json

logger = logging.getLogger(__name__)

ARRAYS = "arrays.safetensors"


def _save_dir(directory: str | Path, model_type: str, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write config.json + arrays.safetensors + checksums.json atomically."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    with atomic_directory(directory, kind=model_type) as tmp:
        write_json(tmp / "config.json", {"type": model_type, "hashbert_version": __version__, "config": config})
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / ARRAYS))
        write_checksums(tmp, ["config.json", ARRAYS])
    logger.info("saved %s to %s", model_type, directory)
    return directory


def _load_dir(directory: str | Path, model_type: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Verify and read a directory written by ``_save_dir``."""
    from safetensors.numpy import load_file

    directory = verify_checksums(directory, required=("config.json", ARRAYS))  # the saved version, read once
    header = read_json(directory / "config.json")
    if header.get("type") != model_type:
        raise ArtefactError(f"{directory}: holds a {header.get('type')!r} model, expected {model_type!r}")
    return header["config"], load_file(str(directory / ARRAYS))


def random_orthogonal(n: int, seed: int | np.random.Generator) -> np.ndarray:
    """(n, n) float64 Haar-random orthogonal matrix (QR of a Gaussian with the sign fix)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class RandomHyperplaneLSH:
    """Signs of ``n_bits`` random Gaussian hyperplane projections (seeded; nothing to fit).

    Args:
        dim: dense vector size.
        n_bits: code length (multiple of 8).
        seed: seed of the hyperplanes.
    """

    model_type = "lsh"

    def __init__(self, dim: int, n_bits: int, seed: int = 0) -> None:
        if n_bits <= 0 or n_bits % 8:
            raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits}")
        self.dim, self.n_bits, self.seed = dim, n_bits, seed
        self.planes = np.random.default_rng(seed).standard_normal((dim, n_bits)).astype(np.float32)  # (dim, n_bits)

    def context_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) -> (n, n_bits) float32 projections."""
        return np.asarray(vectors, dtype=np.float32) @ self.planes

    response_hash_vectors = context_hash_vectors

    def save(self, directory: str | Path) -> Path:
        config = {"dim": self.dim, "n_bits": self.n_bits, "seed": self.seed}
        return _save_dir(directory, self.model_type, config, {"planes": self.planes})

    @classmethod
    def load(cls, directory: str | Path) -> RandomHyperplaneLSH:
        config, arrays = _load_dir(directory, cls.model_type)
        model = cls(**config)
        model.planes = arrays["planes"]
        return model


class SignHash:
    """The sign of every coordinate of the dense vector: ``n_bits = dim``, nothing learned."""

    model_type = "sign_hash"

    def __init__(self, dim: int) -> None:
        if dim % 8:
            raise ValueError(f"sign hashing needs dim to be a multiple of 8, got {dim}")
        self.dim = self.n_bits = dim

    def context_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) -> (n, dim) float32: the vectors themselves."""
        return np.asarray(vectors, dtype=np.float32)

    response_hash_vectors = context_hash_vectors

    def save(self, directory: str | Path) -> Path:
        return _save_dir(directory, self.model_type, {"dim": self.dim}, {})

    @classmethod
    def load(cls, directory: str | Path) -> SignHash:
        config, _ = _load_dir(directory, cls.model_type)
        return cls(**config)


def _block_sizes(n_bits: int, dim: int) -> list[int]:
    """Split ``n_bits`` into ``ceil(n_bits / dim)`` near-equal blocks of at most ``dim`` bits."""
    n_blocks = math.ceil(n_bits / dim)
    base, extra = divmod(n_bits, n_blocks)
    return [base + (i < extra) for i in range(n_blocks)]


def itq_rotation(v: np.ndarray, iterations: int, rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Learn the ITQ rotation of projected data.

    Args:
        v: (n, k) centred, projected data.
        iterations: alternations of B = sign(V R) and the orthogonal Procrustes step for R.
        rng: seeds the initial random rotation.

    Returns:
        r: (k, k) orthogonal rotation; losses: ``||B - V R||^2 / n`` before each update (falls).
    """
    r = random_orthogonal(v.shape[1], rng).astype(v.dtype)
    losses = []
    for _ in range(iterations):
        z = v @ r  # (n, k)
        b = np.where(z >= 0, 1.0, -1.0).astype(v.dtype)
        losses.append(float(((b - z) ** 2).sum() / len(v)))
        u, _, wt = np.linalg.svd(b.T @ v)  # Procrustes: R = argmin ||B - V R|| over orthogonal R
        r = (u @ wt).T.astype(v.dtype)
    return r, losses


class ITQ:
    """Iterative quantisation: per-side centring, PCA (or random-rotation expansion) and a learned rotation.

    Args:
        n_bits: code length (multiple of 8).
        iterations: ITQ alternations per block (50 in the paper).
        seed: seeds the random rotations and the row subsample.
        max_fit_rows: the PCA uses every row; the rotations a seeded subsample of this many (0: all).
    """

    model_type = "itq"

    def __init__(self, n_bits: int, iterations: int = 50, seed: int = 0, max_fit_rows: int = 8000) -> None:
        if n_bits <= 0 or n_bits % 8:
            raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits}")
        self.n_bits, self.iterations, self.seed, self.max_fit_rows = n_bits, iterations, seed, max_fit_rows
        self.context_mean = self.response_mean = self.projection = None
        self.quantization_losses: list[list[float]] = []

    def fit(self, context_vecs: np.ndarray, response_vecs: np.ndarray) -> ITQ:
        """Learn means, projection and rotation from (n, dim) context and (m, dim) response vectors."""
        self.context_mean = context_vecs.mean(axis=0, dtype=np.float64)
        self.response_mean = response_vecs.mean(axis=0, dtype=np.float64)
        x = np.concatenate([context_vecs - self.context_mean, response_vecs - self.response_mean])  # (n + m, dim)
        dim = x.shape[1]
        eigvals, eigvecs = np.linalg.eigh(x.T @ x / len(x))
        pca = eigvecs[:, np.argsort(eigvals)[::-1]]  # (dim, dim), columns by falling variance
        rng = np.random.default_rng(self.seed)
        if self.max_fit_rows and len(x) > self.max_fit_rows:  # the rotation needs n >> k rows, not all of them
            x = x[np.sort(rng.choice(len(x), self.max_fit_rows, replace=False))]
        x = x.astype(np.float32)
        blocks, self.quantization_losses = [], []
        for k in _block_sizes(self.n_bits, dim):
            frame = pca[:, :k] if k == self.n_bits else random_orthogonal(dim, rng)[:, :k]  # (dim, k)
            frame = frame.astype(np.float32)
            rotation, losses = itq_rotation(x @ frame, self.iterations, rng)
            blocks.append(frame @ rotation)
            self.quantization_losses.append(losses)
        self.projection = np.concatenate(blocks, axis=1).astype(np.float32)  # (dim, n_bits)
        first_last = [(b[0], b[-1]) for b in self.quantization_losses]
        logger.info("ITQ %d bits: quantisation loss %s", self.n_bits, first_last)
        return self

    def _project(self, vectors: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
        if self.projection is None or mean is None:
            raise ValueError("ITQ is not fitted: call fit() or load()")
        return ((np.asarray(vectors, dtype=np.float64) - mean) @ self.projection).astype(np.float32)

    def context_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) -> (n, n_bits) float32 rotated projections of the centred context vectors."""
        return self._project(vectors, self.context_mean)

    def response_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) -> (n, n_bits) float32 rotated projections of the centred response vectors."""
        return self._project(vectors, self.response_mean)

    def save(self, directory: str | Path) -> Path:
        config = {
            "n_bits": self.n_bits, "iterations": self.iterations, "seed": self.seed, "max_fit_rows": self.max_fit_rows
        }
        arrays = {
            "context_mean": self.context_mean, "response_mean": self.response_mean, "projection": self.projection
        }
        if any(v is None for v in arrays.values()):
            raise ValueError("ITQ is not fitted: nothing to save")
        return _save_dir(directory, self.model_type, config, arrays)

    @classmethod
    def load(cls, directory: str | Path) -> ITQ:
        config, arrays = _load_dir(directory, cls.model_type)
        model = cls(**config)
        model.context_mean, model.response_mean = arrays["context_mean"], arrays["response_mean"]
        model.projection = arrays["projection"]
        return model
