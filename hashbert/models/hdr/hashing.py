"""HdrHash: binary codes of HDR-BERT vectors, from trained hashing heads or random-hyperplane LSH.

The HDR model stays frozen and is **referenced** (absolute path + sha256 of its ``checksums.json``,
checked on load, as ``HashBert`` does for DR-BERT), never copied. The hasher is a ``VectorHasher``
(``hashing.scoring``): the ``HashHeads`` of Hash-BERT (trained by ``training.hdr_hash``) or
``RandomHyperplaneLSH``. Saved layout: ``config.json`` (type ``hdr_hash``, an ``HdrHashConfig``) +
``model.safetensors`` (the heads, or the LSH hyperplanes) + ``checksums.json``.

Scoring (higher = better; equal Hamming distances stay tied and count against the positives):

* single-vector HDR: ``hashing.scoring.hasher_scores`` (packed codes: ``-hamming``, or float context . ±1 code);
* colbert: every context and response vector is hashed, and MaxSim runs over the code similarity
  ``a . b = n_bits - 2 hamming(a, b)`` of ±1 codes (symmetric), or over float context outputs . ±1
  response codes (asymmetric).

References: HDR + DSH (ACM TOIS 2023) sec. 4; BPR (ACL 2021) sec. 3.2; Charikar (STOC 2002) for LSH.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hashbert.codes import binarize
from hashbert.config import HashConfig, HdrHashConfig, config_from_dict, config_to_dict
from hashbert.models.hashing.hash_bert import referencing, resolve_encoder_dir
from hashbert.models.hashing.lsh import RandomHyperplaneLSH
from hashbert.models.hashing.scoring import SCORING_MODES, VectorHasher, hasher_scores, index_groups
from hashbert.models.hashing.tower_heads import HashHeads
from hashbert.models.hdr.aggregators import MultiVectors, group_maxsim_scores
from hashbert.models.hdr.model import HdrModel
from hashbert.models.serialization import load_weights, read_model_config, save_model_dir

logger = logging.getLogger(__name__)

MODEL_TYPE = "hdr_hash"


class _Planes(nn.Module):
    """The LSH hyperplanes as a buffer, so they are saved and checked like any weights."""

    def __init__(self, planes: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("planes", torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)))


def hashed_maxsim_scores(
    hasher: VectorHasher, contexts: MultiVectors, responses: MultiVectors, index, scoring: str
) -> list[np.ndarray]:
    """MaxSim of multi-vector contexts and responses after hashing every vector (the colbert rows).

    Args:
        hasher: maps (n, H) dense vectors to (n, n_bits) continuous hash vectors.
        contexts, responses: the HDR vectors of ``index.contexts`` / ``index.responses``.
        index: a ``hashing.scoring.GroupIndex``.
        scoring: ``symmetric`` (±1 context codes: MaxSim over n_bits - 2 Hamming) or ``asymmetric``.

    Returns:
        One (n_candidates,) float64 array per group.
    """
    def hashed(fn, vectors: np.ndarray) -> np.ndarray:
        n, k, dim = vectors.shape
        return fn(vectors.reshape(n * k, dim)).reshape(n, k, -1).astype(np.float32)

    context_hash = hashed(hasher.context_hash_vectors, contexts.vectors)
    if scoring == "symmetric":
        context_hash = binarize(context_hash).astype(np.float32)
    response_codes = binarize(hashed(hasher.response_hash_vectors, responses.vectors)).astype(np.float32)
    return group_maxsim_scores(
        MultiVectors(context_hash, contexts.mask), MultiVectors(response_codes, responses.mask), index
    )


class HdrHash:
    """A frozen ``HdrModel`` and a hasher.

    Args:
        config: hasher kind and sizes, and the HDR reference.
        hdr: the HDR model whose vectors are hashed.
        hasher: ``HashHeads`` (``config.hasher == "heads"``) or ``RandomHyperplaneLSH``.
        scoring: default of ``rerank_scores``: ``symmetric`` (Hamming) or ``asymmetric``.
    """

    def __init__(self, config: HdrHashConfig, hdr: HdrModel, hasher: VectorHasher, scoring: str = "symmetric") -> None:
        if scoring not in SCORING_MODES:
            raise ValueError(f"scoring must be one of {SCORING_MODES}, got {scoring!r}")
        self.config, self.hdr, self.hasher, self.scoring = config, hdr, hasher, scoring
        self._last_vectors: tuple | None = None  # (texts, contexts, responses) of the last groups scored

    @property
    def n_bits(self) -> int:
        return self.config.hash.n_bits

    @property
    def row_name(self) -> str:
        """E.g. ``HDR-BERT-Trs-MV+LSH(256)`` or ``BPR-HDR-BERT-Trs(512)`` (the recipe when it is not bpr)."""
        if self.config.hasher == "lsh":
            return f"{self.hdr.row_name}+LSH({self.n_bits})"
        recipe = "" if self.config.recipe == "bpr" else f"-{self.config.recipe}"
        return f"BPR-{self.hdr.row_name}{recipe}({self.n_bits})"

    def save(self, directory: str | Path) -> Path:
        """Write the directory atomically; the HDR model is referenced by path and checksum."""
        module = self.hasher if isinstance(self.hasher, nn.Module) else _Planes(self.hasher.planes)
        return save_model_dir(directory, MODEL_TYPE, config_to_dict(self.config), module)

    @classmethod
    def load(cls, directory: str | Path, scoring: str = "symmetric") -> HdrHash:
        """Load a directory written by ``save``; its checksums and the referenced HDR model's are verified."""
        directory = Path(directory)
        config = config_from_dict(HdrHashConfig, read_model_config(directory, MODEL_TYPE))
        hdr = HdrModel.load(resolve_encoder_dir(config, directory))
        if config.hasher == "lsh":
            planes = _Planes(np.zeros((config.in_dim, config.hash.n_bits), dtype=np.float32))
            load_weights(planes, directory)
            hasher = RandomHyperplaneLSH(config.in_dim, config.hash.n_bits, config.lsh_seed)
            hasher.planes = planes.planes.numpy()
        else:
            hasher = HashHeads(config.hash, config.in_dim, config.decoders)
            load_weights(hasher, directory)
            hasher.eval()
        return cls(config, hdr, hasher, scoring)

    def rerank_scores(
        self, groups: Sequence, batch_size: int = 64, progress: bool = False, scoring: str | None = None
    ) -> list[np.ndarray]:
        """Per group, (n,) scores of its candidates from codes (see the module docstring); higher = better."""
        scoring = scoring or self.scoring
        if scoring not in SCORING_MODES:
            raise ValueError(f"scoring must be one of {SCORING_MODES}, got {scoring!r}")
        index = index_groups(groups)
        contexts, responses = self._vectors(index, batch_size, progress)
        if self.hdr.multi_vector:
            return hashed_maxsim_scores(self.hasher, contexts, responses, index, scoring)
        return hasher_scores(self.hasher, contexts.single(), responses.single(), index, scoring)


    def _vectors(self, index, batch_size: int, progress: bool) -> tuple[MultiVectors, MultiVectors]:
        """HDR vectors of the groups' texts; kept for the next call on the same texts (sym then asym rows)."""
        texts = (index.contexts, index.responses)
        if self._last_vectors is None or self._last_vectors[0] != texts:
            contexts = self.hdr.encode_context_vectors(index.contexts, batch_size, progress)
            responses = self.hdr.encode_response_vectors(index.responses, batch_size * 2, progress)
            self._last_vectors = (texts, contexts, responses)
        return self._last_vectors[1], self._last_vectors[2]


def save_hdr_lsh(hdr_dir: str | Path, n_bits: int, directory: str | Path, seed: int = 0) -> Path:
    """Save HDR-BERT + LSH(``n_bits``): seeded hyperplanes over the vectors of the HDR model in ``hdr_dir``."""
    hdr = HdrModel.load(hdr_dir)
    config = HdrHashConfig(hash=HashConfig(n_bits=n_bits), hasher="lsh", in_dim=hdr.dim, lsh_seed=seed)
    model = HdrHash(referencing(config, hdr_dir), hdr, RandomHyperplaneLSH(hdr.dim, n_bits, seed))
    return model.save(directory)


def heads_model(hdr: HdrModel, hdr_dir: str | Path, hash_config: HashConfig, decoders: bool, recipe: str) -> HdrHash:
    """A new ``HdrHash`` with untrained ``HashHeads`` over the HDR model saved in ``hdr_dir``."""
    if hdr.multi_vector:
        raise ValueError("hashing heads train on one vector per text: use a trs, trs-mv or gpt-mv HDR model")
    config = HdrHashConfig(hash=hash_config, hasher="heads", in_dim=hdr.dim, decoders=decoders, recipe=recipe)
    return HdrHash(referencing(config, hdr_dir), hdr, HashHeads(hash_config, hdr.dim, decoders))

