"""Search indexes over binary codes and float vectors (NumPy, faiss and the Milvus client only, never torch).

Names are imported lazily so that ``hashbert.index.NumpyBinaryIndex`` works without importing faiss.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

_PUBLIC = {
    "SearchIndex": "hashbert.index.base",
    "BinarySearchIndex": "hashbert.index.base",
    "BinaryFlatIndex": "hashbert.index.binary",
    "BinaryIVFIndex": "hashbert.index.binary",
    "FloatIndex": "hashbert.index.dense",
    "NumpyBinaryIndex": "hashbert.index.reference",
    "TwoStageSearcher": "hashbert.index.two_stage",
    "MilvusBinaryIndex": "hashbert.index.milvus",
}

__all__ = ["load_index", *_PUBLIC]


def load_index(path: str | Path, **params: Any) -> Any:
    """Load a saved index as the class that saved it (see ``SearchIndex.load``)."""
    from hashbert.index.base import _HEADER
    from hashbert.io import read_json

    header = read_json(Path(path) / _HEADER)
    name = header.get("type") if isinstance(header, dict) else None
    if name not in _PUBLIC or name in ("SearchIndex", "BinarySearchIndex", "TwoStageSearcher"):
        from hashbert.io import ArtefactError

        raise ArtefactError(f"{path}: unknown index type {name!r}")
    return __getattr__(name).load(path, **params)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'hashbert.index' has no attribute {name!r}")
