"""The interface every hashbert index shares, plus the id/text store and the on-disk format.

An index stores rows (packed binary codes or float vectors) in insertion order. Each row has an id:
its position by default, or an int64 id given to ``add``. Each row may carry its response text, so
``texts_of(ids)`` maps search results back to responses.

Saved format: a directory, replaced atomically (written to a temporary sibling, then renamed), with

* ``header.json``: ``{"format": "hashbert-index", "format_version": 1, "type", "kind", "count",
  "width", "params", "has_ids", "has_texts", "hashbert_version"}`` (``width`` = n_bits or dim);
* ``data.npy``: the packed codes (n, n_bits/8) uint8 or the vectors (n, dim) float32
  (``np.save``, no pickles); faiss structures are rebuilt from it on load;
* ``ids.npy`` (int64, only for explicit ids) and ``texts.jsonl`` (one JSON string per line, UTF-8);
* ``checksums.json``: SHA-256 of every other file (``hashbert.io``).

``load`` verifies the checksums first, so a truncated or altered file raises ``ArtefactError``.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hashbert import __version__
from hashbert.io import (
    CHECKSUM_FILE,
    ArtefactError,
    atomic_directory,
    atomic_write,
    read_json,
    verify_checksums,
    write_checksums,
)

logger = logging.getLogger(__name__)

FORMAT = "hashbert-index"
FORMAT_VERSION = 1
_HEADER, _DATA, _IDS, _TEXTS = "header.json", "data.npy", "ids.npy", "texts.jsonl"


class SearchIndex(ABC):
    """Exact or approximate top-k search over stored rows; faiss-like, with ids and response texts.

    Subclasses implement ``_check_rows``, ``_add_rows``, ``_search_rows``, ``_rows``, ``nbytes``,
    ``_params`` and ``_empty``; this class validates input, keeps ids and texts, and saves/loads.
    """

    kind: ClassVar[str]  # "binary" or "float"; artefacts of one kind load into any class of that kind

    def __init__(self, width: int) -> None:
        self.width = width  # n_bits for binary indexes, dim for float ones
        self._count = 0
        self._ids: np.ndarray | None = None  # (n,) int64 when ids are not 0..n-1
        self._texts: list[str] | None = None
        self._id_order: np.ndarray | None = None  # argsort of _ids, built on demand

    # ---- interface ------------------------------------------------------------------------------
    def add(self, data: np.ndarray, ids: np.ndarray | None = None, texts: list[str] | None = None) -> None:
        """Append rows.

        Args:
            data: (n, n_bits/8) uint8 packed codes (binary indexes) or (n, dim) float vectors.
            ids: optional (n,) non-negative int64 ids, unique over the index; default = positions.
            texts: optional n response texts; either every add passes texts or none does.
        """
        data = self._check_rows(data, "data")
        new_ids = self._extended_ids(len(data), ids)
        new_texts = self._extended_texts(len(data), texts)
        self._add_rows(data)
        self._count += len(data)
        self._ids, self._texts, self._id_order = new_ids, new_texts, None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query.

        Args:
            queries: (nq, n_bits/8) uint8 codes or (nq, dim) float vectors, as stored.
            k: results per query (>= 1); missing results have id -1.

        Returns:
            scores: (nq, k) int32 Hamming distances ascending (binary) or float32 inner products
            descending (float); ids: (nq, k) int64. Equal scores are ordered by ascending id.
        """
        queries = self._check_rows(queries, "queries")
        if not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        scores, positions = self._search_rows(queries, int(k))
        ids = self.ids_of(positions)
        return sort_results(scores, ids, descending=self.kind == "float")

    def __len__(self) -> int:
        return self._count

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes of memory held for the stored codes or vectors (ids and texts excluded)."""

    # ---- ids and texts --------------------------------------------------------------------------
    @property
    def ids(self) -> np.ndarray:
        """(n,) int64 id of every row, in insertion order."""
        return np.arange(self._count, dtype=np.int64) if self._ids is None else self._ids

    def ids_of(self, positions: np.ndarray) -> np.ndarray:
        """Map row positions (-1 = missing) to ids (-1 kept)."""
        positions = np.asarray(positions, dtype=np.int64)
        if self._ids is None:
            return positions
        return np.where(positions >= 0, self._ids[np.maximum(positions, 0)], -1)

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Map ids (-1 = missing) to row positions (-1 kept); unknown ids raise ``ValueError``."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._ids is None:
            if (ids >= self._count).any() or (ids < -1).any():
                raise ValueError(f"unknown ids, e.g. {ids[(ids >= self._count) | (ids < -1)][0]}")
            return ids
        if self._id_order is None:
            self._id_order = np.argsort(self._ids, kind="stable")
        slot = np.searchsorted(self._ids, ids, sorter=self._id_order).clip(0, self._count - 1)
        positions = self._id_order[slot] if self._count else np.full_like(ids, -1)
        found = (self._ids[positions] == ids) if self._count else np.zeros(ids.shape, bool)
        if ((ids != -1) & ~found).any():
            raise ValueError(f"unknown ids, e.g. {ids[(ids != -1) & ~found][0]}")
        return np.where(ids == -1, -1, positions)

    def texts_of(self, ids: np.ndarray) -> list[list[str | None]]:
        """Response texts of (nq, k) result ids; ``None`` for missing results (-1)."""
        if self._texts is None:
            raise ValueError("this index stores no texts; pass texts= to add()")
        positions = self.positions_of(ids)
        return [[self._texts[p] if p >= 0 else None for p in row] for row in np.atleast_2d(positions)]

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the index directory atomically (see the module docstring for the format)."""
        path = Path(path)
        if path.exists() and not (path / _HEADER).is_file():
            raise ValueError(f"{path} exists and is not a hashbert index; refusing to replace it")
        with atomic_directory(path, kind="index") as tmp:
            self._write_files(tmp)

    @classmethod
    def load(cls, path: str | Path, **params: Any) -> SearchIndex:
        """Read an index saved by any index class of the same kind; ``params`` override saved ones.

        Raises:
            ArtefactError: missing, truncated or altered files, or an unknown format or version.
        """
        path = verify_checksums(path, required=(_HEADER, _DATA))  # the saved version, read once
        header = read_json(path / _HEADER)
        _check_header(header, path, cls.kind)
        listed = read_json(path / CHECKSUM_FILE)
        needed = [_HEADER, _DATA] + [_IDS] * header["has_ids"] + [_TEXTS] * header["has_texts"]
        if missing := [name for name in needed if name not in listed]:
            raise ArtefactError(f"{path}: {missing} not covered by {CHECKSUM_FILE}")
        rows = _load_npy(path / _DATA)
        ids = _load_npy(path / _IDS) if header["has_ids"] else None
        texts = _read_texts(path / _TEXTS) if header["has_texts"] else None
        try:
            index = cls._empty(header["width"], {**header["params"], **params})
            index.add(rows, ids=ids, texts=texts)
        except (TypeError, ValueError) as err:
            raise ArtefactError(f"{path}: stored rows do not form a valid index ({err})") from err
        if len(index) != header["count"]:
            raise ArtefactError(f"{path}: header says {header['count']} rows, found {len(index)}")
        return index

    def _write_files(self, directory: Path) -> None:
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "type": type(self).__name__,
            "kind": self.kind,
            "count": self._count,
            "width": self.width,
            "params": self._params(),
            "has_ids": self._ids is not None,
            "has_texts": self._texts is not None,
            "hashbert_version": __version__,
        }
        names = [_HEADER, _DATA]
        with atomic_write(directory / _HEADER, "w") as handle:
            json.dump(header, handle, indent=2, sort_keys=True)
        with atomic_write(directory / _DATA) as handle:
            np.save(handle, self._rows(), allow_pickle=False)
        if self._ids is not None:
            with atomic_write(directory / _IDS) as handle:
                np.save(handle, self._ids, allow_pickle=False)
            names.append(_IDS)
        if self._texts is not None:
            with atomic_write(directory / _TEXTS, "w") as handle:
                handle.writelines(json.dumps(text, ensure_ascii=False) + "\n" for text in self._texts)
            names.append(_TEXTS)
        write_checksums(directory, names)

    # ---- for subclasses -------------------------------------------------------------------------
    @abstractmethod
    def _check_rows(self, data: np.ndarray, name: str) -> np.ndarray:
        """Validate and convert rows or queries to the stored dtype/shape, raising ``ValueError``."""

    @abstractmethod
    def _add_rows(self, data: np.ndarray) -> None:
        """Store validated rows."""

    @abstractmethod
    def _search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, row positions), both (nq, k), padded with -1 positions."""

    @abstractmethod
    def _rows(self) -> np.ndarray:
        """All stored rows, in insertion order (may be a view; used for saving and re-ranking)."""

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments other than the width."""

    @classmethod
    @abstractmethod
    def _empty(cls, width: int, params: dict[str, Any]) -> SearchIndex:
        """An empty index of this width built from saved constructor params."""

    def _extended_ids(self, n: int, ids: np.ndarray | None) -> np.ndarray | None:
        if ids is None:
            if self._ids is not None:
                raise ValueError("this index has explicit ids; pass ids= to every add()")
            return None
        ids = np.asarray(ids)
        if ids.shape != (n,) or ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be ({n},) integers, got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
        merged = np.concatenate([self.ids, ids])
        if (ids < 0).any() or len(np.unique(merged)) != len(merged):
            raise ValueError("ids must be non-negative and unique over the index")
        return merged

    def _extended_texts(self, n: int, texts: list[str] | None) -> list[str] | None:
        if (texts is None) != (self._texts is None) and self._count:
            raise ValueError("pass texts= to every add() or to none")
        if texts is None:
            return None
        if len(texts) != n or not all(isinstance(text, str) for text in texts):
            raise ValueError(f"texts must be {n} strings, got {len(texts)} items")
        return (self._texts or []) + list(texts)


class BinarySearchIndex(SearchIndex):
    """A ``SearchIndex`` over packed binary codes: rows and queries are (n, n_bits/8) uint8."""

    kind = "binary"

    def __init__(self, n_bits: int) -> None:
        if not isinstance(n_bits, int | np.integer) or n_bits <= 0 or n_bits % 8:
            raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits!r}")
        super().__init__(int(n_bits))

    @property
    def n_bits(self) -> int:
        return self.width

    @property
    def code_size(self) -> int:
        """Bytes per code."""
        return self.width // 8

    @property
    def codes(self) -> np.ndarray:
        """(n, n_bits/8) uint8 stored codes in insertion order; may be a view, valid until the next ``add``."""
        return self._rows()

    def _check_rows(self, data: np.ndarray, name: str) -> np.ndarray:
        data = np.asarray(data)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != self.code_size:
            raise ValueError(
                f"{name} must be packed codes of shape (n, {self.code_size}) uint8 (see hashbert.codes.pack_codes), "
                f"got {data.dtype} {data.shape}"
            )
        return np.ascontiguousarray(data)


def resolve_threads(threads: int | None) -> int:
    """Thread count for a faiss index: ``None`` means ``os.cpu_count()``."""
    if threads is None:
        return os.cpu_count() or 1
    if not isinstance(threads, int | np.integer) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)


def query_threads(threads: int, n_queries: int) -> int:
    """Threads worth starting for a faiss search that parallelises over queries: at most one per query.

    Extra OpenMP threads would only wait at faiss's per-block barriers; on a busy machine a spinning
    idle thread turned a 2 ms single-query search into ~190 ms (measured, 1M x 256 bits, 2 cores).
    """
    return max(1, min(threads, n_queries))


def sort_results(scores: np.ndarray, ids: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Order each row of results by score (ascending, or descending) then by ascending id.

    Padded entries (id -1) carry the worst score, so they stay last.
    """
    primary = -scores.astype(np.float64) if descending else scores
    order = np.lexsort((ids, primary), axis=-1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _check_header(header: Any, path: Path, kind: str) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtefactError(f"{path}: not a hashbert index ({_HEADER} lacks format={FORMAT!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(
            f"{path}: index format version {header.get('format_version')!r} is not supported "
            f"(this hashbert reads version {FORMAT_VERSION})"
        )
    if header.get("kind") != kind:
        raise ArtefactError(f"{path}: holds a {header.get('kind')!r} index ({header.get('type')}), not {kind!r}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ArtefactError(f"{path}: unreadable array ({err})") from err


def _read_texts(path: Path) -> list[str]:
    try:
        texts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtefactError(f"{path}: not valid JSON lines ({err})") from err
    if not all(isinstance(text, str) for text in texts):
        raise ArtefactError(f"{path}: every line must be a JSON string")
    return texts
