"""hashbert: fast, compact retrieval-based dialogue.

Public names are imported lazily so that ``import hashbert`` (and ``hashbert --help``) stays instant
and the index/codes modules remain importable without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "CrossEncoder": "hashbert.models.cross_encoder",
    "DualEncoder": "hashbert.models.dual_encoder",
    "RetrieveThenRerank": "hashbert.retrieve_rerank",
    "TextEncoder": "hashbert.models.encoder",
    "load_model": "hashbert.models.registry",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'hashbert' has no attribute {name!r}")
