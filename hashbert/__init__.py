"""hashbert: fast, compact retrieval-based dialogue.

Public names are imported lazily so that ``import hashbert`` (and ``hashbert --help``) stays instant
and the index/codes modules remain importable without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "BinaryFlatIndex": "hashbert.index.binary",
    "BinaryIVFIndex": "hashbert.index.binary",
    "CrossEncoder": "hashbert.models.cross.cross_encoder",
    "DualEncoder": "hashbert.models.dual_encoder",
    "FloatIndex": "hashbert.index.dense",
    "HashBert": "hashbert.models.hashing.hash_bert",
    "HdrCache": "hashbert.models.hdr.cache",
    "HdrModel": "hashbert.models.hdr.model",
    "NumpyBinaryIndex": "hashbert.index.reference",
    "RetrieveThenRerank": "hashbert.retrieve_rerank",
    "TextEncoder": "hashbert.models.encoder",
    "TwoStageSearcher": "hashbert.index.two_stage",
    "load_model": "hashbert.models.registry",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'hashbert' has no attribute {name!r}")
