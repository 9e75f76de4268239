"""Cache of encoder outputs on disk, keyed by a fingerprint of the model, the data and the selection.

Encoding 20k contexts takes minutes on a CPU, training hashing heads on the vectors seconds, so the
vectors are computed once and reused. A cache entry is a directory ``<cache_dir>/<key>/`` holding one
``<name>.npy`` per array, ``fingerprint.json`` and ``checksums.json``; ``key`` is a sha256 of the
fingerprint, and the stored fingerprint is compared in full before reuse. The fingerprint holds the
sha256 of the model's ``checksums.json`` (any change of weights, config or tokenizer), the sha256 of
each data file, and every parameter of the pair selection (expansion, subsample size and seed, ...).
So a stale cache is never read: a changed input gives another key, and a damaged entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashbert.io import (
    ArtefactError,
    artefact_fingerprint,
    atomic_directory,
    read_json,
    sha256_file,
    verify_checksums,
    write_checksums,
    write_json,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def vector_fingerprint(model_dir: str | Path, data_files: Mapping[str, str | Path], params: Mapping[str, Any]) -> dict:
    """The identity of a set of encoded vectors.

    Args:
        model_dir: the saved model that encodes (its ``checksums.json`` is hashed).
        data_files: ``{role: path}`` of every file the texts come from (each is hashed).
        params: JSON-able selection parameters (expansion, max pairs, seed, which split, ...).

    Returns:
        A JSON-able dict; equal dicts mean the same vectors.
    """
    return {
        "format": FORMAT_VERSION,
        "model_checksums_sha256": artefact_fingerprint(model_dir),
        "data_sha256": {role: sha256_file(path) for role, path in sorted(data_files.items())},
        "params": json.loads(json.dumps(dict(params), sort_keys=True)),
    }


def fingerprint_key(fingerprint: Mapping[str, Any]) -> str:
    """First 20 hex digits of the sha256 of the fingerprint's canonical JSON."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:20]


def _read_entry(path: Path, fingerprint: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry if it exists, is intact and has exactly this fingerprint; else None."""
    if not (path / "fingerprint.json").is_file():
        return None
    try:
        path = verify_checksums(path, required=("fingerprint.json",))  # the saved version, read once
        if read_json(path / "fingerprint.json") != json.loads(json.dumps(fingerprint, sort_keys=True)):
            logger.warning("cache entry %s has another fingerprint; recomputing", path)
            return None
        return {p.stem: np.load(p, allow_pickle=False) for p in sorted(path.glob("*.npy"))}
    except (ArtefactError, ValueError, OSError) as err:
        logger.warning("cache entry %s is unreadable (%s); recomputing", path, err)
        return None


def cached_arrays(
    cache_dir: str | Path, fingerprint: Mapping[str, Any], compute: Callable[[], Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``fingerprint``, computing (and caching) them when absent or stale.

    Args:
        cache_dir: root directory of the cache.
        fingerprint: from ``vector_fingerprint``.
        compute: ``() -> {name: array}``, called only on a miss; names become ``<name>.npy``.

    Returns:
        ``{name: array}``.
    """
    path = Path(cache_dir) / fingerprint_key(fingerprint)
    arrays = _read_entry(path, fingerprint)
    if arrays is not None:
        logger.info("using the cached arrays %s", path)
        return arrays
    arrays = {name: np.ascontiguousarray(a) for name, a in compute().items()}
    with atomic_directory(path, kind="vector-cache") as tmp:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        write_json(tmp / "fingerprint.json", dict(fingerprint))
        write_checksums(tmp, [f"{name}.npy" for name in arrays] + ["fingerprint.json"])
    logger.info("cached %s in %s", {k: v.shape for k, v in arrays.items()}, path)
    return arrays


def pair_vectors(
    model, model_dir: str | Path, pairs: Sequence, data_files: Mapping[str, str | Path], params: Mapping[str, Any],
    cache_dir: str | Path, batch_size: int = 64, progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense vectors of training pairs (each distinct text encoded once), through the cache.

    Args:
        model: a DualEncoder (``encode_contexts``/``encode_responses``), the one saved in ``model_dir``.
        pairs: ``ContextResponse``s, selected from ``data_files`` as ``params`` describe.

    Returns:
        context_vecs: (n_pairs, dim) float32; response_vecs: (n_pairs, dim) float32, row i of each from pair i.
    """
    contexts = list(dict.fromkeys(p.context for p in pairs))
    responses = list(dict.fromkeys(p.response for p in pairs))

    def compute() -> dict[str, np.ndarray]:
        return {
            "contexts": model.encode_contexts(contexts, batch_size, progress),
            "responses": model.encode_responses(responses, batch_size * 2, progress),
        }

    fingerprint = vector_fingerprint(model_dir, data_files, {**params, "what": "pairs", "n_pairs": len(pairs)})
    arrays = cached_arrays(cache_dir, fingerprint, compute)
    ctx_row = {c: i for i, c in enumerate(contexts)}
    resp_row = {r: i for i, r in enumerate(responses)}
    return (
        arrays["contexts"][[ctx_row[p.context] for p in pairs]],
        arrays["responses"][[resp_row[p.response] for p in pairs]],
    )


def group_vectors(
    model, model_dir: str | Path, index, data_files: Mapping[str, str | Path], params: Mapping[str, Any],
    cache_dir: str | Path | None, batch_size: int = 64, progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense vectors of the distinct contexts and responses of a ``GroupIndex`` (rows as in the index).

    With ``cache_dir`` None nothing is cached. Returns (n_contexts, dim) and (n_responses, dim) float32.
    """

    def compute() -> dict[str, np.ndarray]:
        return {
            "contexts": model.encode_contexts(index.contexts, batch_size, progress),
            "responses": model.encode_responses(index.responses, batch_size * 2, progress),
        }

    if cache_dir is None:
        arrays = compute()
    else:
        params = {**params, "what": "groups", "n_contexts": len(index.contexts), "n_responses": len(index.responses)}
        arrays = cached_arrays(cache_dir, vector_fingerprint(model_dir, data_files, params), compute)
    return arrays["contexts"], arrays["responses"]
