"""``MilvusBinaryIndex``: packed binary codes in a Milvus 2.3 collection, searched by Hamming distance on the server.

The same interface as the faiss indexes (``add``, ``search``, ``ids``, ``texts_of``, ``len``, ``save``/``load``)
over a collection that outlives the process: ``id`` INT64 (primary key), ``code`` BINARY_VECTOR (n_bits) with a
``HAMMING`` index (``BIN_FLAT``: exact; ``BIN_IVF_FLAT``: ``nlist`` lists, ``nprobe`` probed per query) and
``text`` VARCHAR (the response, "" when none was given). A row's id is its position: ``add`` without ids
continues 0..n-1, which is what bundles write and what a re-rank store aligned with the rows needs.

``save(path)`` writes no rows: a header naming the server, the collection and the search parameters (the token
is never written; ``load`` reads it from ``HASHBERT_MILVUS_TOKEN``), so a bundle's ``index/`` can point at Milvus.
Requests use Session consistency: a search sees every insert made through the same index object at once (Strong
consistency would make every search wait ~200 ms for the server's time tick), other clients' within seconds.
Ties: Milvus returns any of the rows at the k-th distance; results are then ordered by distance and id, as
``BinaryFlatIndex`` orders them.

Needs ``pymilvus>=2.3,<2.4`` (``pip install 'hashbert[milvus]'``); the server is a separate process (``milvus``
2.3.x standalone, ``scripts/setup_env.sh dev`` installs one into ``.venv-milvus``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hashbert import __version__
from hashbert.codes import MISSING_DISTANCE, MISSING_ID
from hashbert.index.base import _HEADER, FORMAT, FORMAT_VERSION, BinarySearchIndex, _check_header, sort_results
from hashbert.index.milvus_client import MARK, _pymilvus, connect
from hashbert.io import ArtefactError, atomic_directory, atomic_write, read_json, verify_checksums, write_checksums

logger = logging.getLogger(__name__)

INDEX_TYPES = ("BIN_FLAT", "BIN_IVF_FLAT")
MAX_TOP_K = 16384  # Milvus's limit on k (and on the ids of one query expression we send)
_MAX_TEXT_BYTES = 65535


class MilvusBinaryIndex(BinarySearchIndex):
    """Exact (``BIN_FLAT``) or IVF (``BIN_IVF_FLAT``) Hamming search over a Milvus collection.

    Args:
        n_bits: code length in bits (a multiple of 8); ``None`` reads it from an existing collection.
        uri: the server, e.g. ``http://127.0.0.1:19530``.
        collection: collection name; created (empty, indexed, loaded) when missing.
        token: ``user:password`` or an API key; default ``$HASHBERT_MILVUS_TOKEN`` (empty: none).
        index_type: ``BIN_FLAT`` or ``BIN_IVF_FLAT`` (used when the collection is created).
        nlist: IVF lists per segment (``BIN_IVF_FLAT`` only).
        nprobe: IVF lists probed per query (clipped to nlist by Milvus).
        batch_size: rows per insert request.
        timeout: seconds to wait for the server on connect and on each request.
        show_progress: a progress bar over the insert batches of ``add``.

    Raises:
        ValueError: the server cannot be reached, or the collection's dimension, metric or fields do not match.
    """

    def __init__(
        self, n_bits: int | None, uri: str, collection: str, token: str | None = None, index_type: str = "BIN_FLAT",
        nlist: int = 1024, nprobe: int = 16, batch_size: int = 10000, timeout: float = 10.0,
        show_progress: bool = False,
    ) -> None:
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        for name, value in (("nlist", nlist), ("nprobe", nprobe), ("batch_size", batch_size)):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.uri, self.collection_name, self.index_type = uri, collection, index_type
        self.nlist, self.nprobe, self.batch_size, self.timeout = int(nlist), int(nprobe), int(batch_size), timeout
        self.show_progress = show_progress
        self._alias = connect(uri, token, timeout)
        self._collection = self._open_or_create(n_bits)
        super().__init__(self._dim_of(self._collection))
        self._check_collection()
        self._collection.load(timeout=self.timeout)  # the server keeps it loaded; again is cheap
        self._count = self._server_count()
        self._codes_cache: np.ndarray | None = None

    # ---- the collection ------------------------------------------------------------------------------
    def _open_or_create(self, n_bits: int | None) -> Any:
        pymilvus = _pymilvus()
        name = self.collection_name
        if pymilvus.utility.has_collection(name, using=self._alias, timeout=self.timeout):
            collection = pymilvus.Collection(name, using=self._alias)
            dim = self._dim_of(collection)
            if n_bits is not None and dim != n_bits:
                raise ValueError(f"Milvus collection {name!r} holds {dim}-bit codes, not {n_bits}-bit ones")
            return collection
        if n_bits is None:
            raise ValueError(f"Milvus collection {name!r} does not exist at {self.uri}")
        if not isinstance(n_bits, int | np.integer) or n_bits <= 0 or n_bits % 8:
            raise ValueError(f"n_bits must be a positive multiple of 8, got {n_bits!r}")
        return self._create(int(n_bits))

    def _create(self, n_bits: int) -> Any:
        pymilvus = _pymilvus()
        DataType, FieldSchema = pymilvus.DataType, pymilvus.FieldSchema  # noqa: N806 (pymilvus's names)
        fields = [
            FieldSchema("id", DataType.INT64, is_primary=True, auto_id=False),
            FieldSchema("code", DataType.BINARY_VECTOR, dim=n_bits),
            FieldSchema("text", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES),
        ]
        schema = pymilvus.CollectionSchema(fields, description=MARK)
        collection = pymilvus.Collection(
            self.collection_name, schema, using=self._alias, consistency_level="Session", timeout=self.timeout
        )
        params = {"nlist": self.nlist} if self.index_type == "BIN_IVF_FLAT" else {}
        collection.create_index("code", {"index_type": self.index_type, "metric_type": "HAMMING", "params": params})
        collection.load(timeout=self.timeout)
        logger.info("created Milvus collection %r (%d bits, %s)", self.collection_name, n_bits, self.index_type)
        return collection

    @staticmethod
    def _dim_of(collection: Any) -> int:
        vectors = [f for f in collection.schema.fields if f.dtype.name == "BINARY_VECTOR"]
        if len(vectors) != 1:
            raise ValueError(f"Milvus collection {collection.name!r} has no single BINARY_VECTOR field")
        return int(vectors[0].params["dim"])

    def _check_collection(self) -> None:
        """Refuse a collection whose fields or metric are not the ones this class writes and searches."""
        name, fields = self.collection_name, {f.name: f.dtype.name for f in self._collection.schema.fields}
        want = {"id": "INT64", "code": "BINARY_VECTOR", "text": "VARCHAR"}
        if fields != want:
            raise ValueError(f"Milvus collection {name!r} has fields {fields}, expected {want}")
        indexes = [index.params for index in self._collection.indexes]
        metric = indexes[0].get("metric_type") if indexes else None
        if metric != "HAMMING":
            raise ValueError(f"Milvus collection {name!r} is indexed with metric {metric!r}, expected 'HAMMING'")
        self.index_type = indexes[0].get("index_type", self.index_type)

    def _server_count(self) -> int:
        rows = self._collection.query(expr="", output_fields=["count(*)"], timeout=self.timeout)
        return int(rows[0]["count(*)"])

    def close(self) -> None:
        """Drop this index's connection (the collection stays on the server)."""
        _pymilvus().connections.disconnect(self._alias)

    def drop(self) -> None:
        """Delete the collection from the server and empty this index."""
        self._collection.drop(timeout=self.timeout)
        self._count, self._codes_cache = 0, None

    @property
    def nbytes(self) -> int:
        """Bytes of the codes the server holds (its id and text columns and its own overhead not counted)."""
        return self._count * self.code_size

    # ---- rows --------------------------------------------------------------------------------------
    def add(self, data: np.ndarray, ids: np.ndarray | None = None, texts: list[str] | None = None) -> None:
        """Insert rows in batches of ``batch_size``; searches see them at once, ``flush`` (or ``save``) seals them.

        Args:
            data: (n, n_bits/8) uint8 packed codes.
            ids: optional (n,) non-negative int64 ids not in the collection; default len(self)..len(self)+n-1.
            texts: optional n response texts (each at most 65,535 UTF-8 bytes).
        """
        data = self._check_rows(data, "data")
        n = len(data)
        ids = np.arange(self._count, self._count + n, dtype=np.int64) if ids is None else self._new_ids(ids, n)
        texts = [""] * n if texts is None else self._checked_texts(texts, n)
        with tqdm(total=n, disable=not self.show_progress, unit="code", desc="milvus insert", leave=False) as bar:
            for start in range(0, n, self.batch_size):
                stop = min(n, start + self.batch_size)
                rows = [ids[start:stop].tolist(), [row.tobytes() for row in data[start:stop]], texts[start:stop]]
                self._collection.insert(rows, timeout=self.timeout)
                self._count += stop - start
                bar.update(stop - start)
        self._codes_cache = None

    def flush(self) -> None:
        """Seal the inserted rows into segments on the server's storage (and let their index be built)."""
        self._collection.flush(timeout=max(self.timeout, 120.0))

    def wait_for_index(self, timeout: float = 600.0) -> None:
        """Block until every row is in a sealed (IVF: indexed) segment that the query node serves.

        Until then (index building, then the hand-off of the sealed segments) Milvus searches the rows brute
        force, so an IVF index would measure as exact.
        """
        utility, sealed = _pymilvus().utility, 3  # common.proto SegmentState.Sealed
        utility.wait_for_index_building_complete(self.collection_name, timeout=timeout, using=self._alias)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            segments = utility.get_query_segment_info(self.collection_name, timeout=self.timeout, using=self._alias)
            # BIN_FLAT segments are served without an index name; IVF ones once their index is loaded
            served = [s for s in segments if s.state == sealed and (s.index_name or self.index_type == "BIN_FLAT")]
            if sum(segment.num_rows for segment in served) >= self._count:
                return
            time.sleep(0.5)
        raise TimeoutError(f"Milvus collection {self.collection_name!r}: segments not indexed after {timeout} s")

    def _new_ids(self, ids: np.ndarray, n: int) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.shape != (n,) or ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be ({n},) integers, got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64)
        if (ids < 0).any() or len(np.unique(ids)) != n:
            raise ValueError("ids must be non-negative and unique over the index")
        if self._count and self._fetch(ids, "id"):
            raise ValueError("ids must be non-negative and unique over the index")
        return ids

    @staticmethod
    def _checked_texts(texts: list[str], n: int) -> list[str]:
        if len(texts) != n or not all(isinstance(text, str) for text in texts):
            raise ValueError(f"texts must be {n} strings, got {len(texts)} items")
        if too_long := [i for i, text in enumerate(texts) if len(text.encode("utf-8")) > _MAX_TEXT_BYTES]:
            raise ValueError(f"text {too_long[0]} is longer than Milvus's {_MAX_TEXT_BYTES} bytes")
        return list(texts)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query (see ``SearchIndex.search``): (nq, k) int32 distances, (nq, k) int64 ids."""
        queries = self._check_rows(queries, "queries")
        if not isinstance(k, int | np.integer) or not 1 <= k <= MAX_TOP_K:
            raise ValueError(f"k must be an integer in [1, {MAX_TOP_K}] for Milvus, got {k!r}")
        k = int(k)
        distances = np.full((len(queries), k), MISSING_DISTANCE, dtype=np.int32)
        ids = np.full((len(queries), k), MISSING_ID, dtype=np.int64)
        if len(queries) == 0 or self._count == 0:
            return distances, ids
        params = {"metric_type": "HAMMING", "params": {"nprobe": self.nprobe}}
        results = self._collection.search(
            [row.tobytes() for row in queries], "code", params, limit=min(k, self._count),
            consistency_level="Session", timeout=self.timeout,
        )
        for row, hits in enumerate(results):
            found = len(hits.ids)
            ids[row, :found] = hits.ids
            distances[row, :found] = np.rint(hits.distances).astype(np.int32)
        return sort_results(distances, ids, descending=False)

    def __len__(self) -> int:
        return self._count

    # ---- ids, texts and codes ----------------------------------------------------------------------
    @property
    def ids(self) -> np.ndarray:
        """(n,) int64 ids of every row, ascending."""
        return np.array(sorted(int(row["id"]) for row in self._fetch_all(["id"])), dtype=np.int64)

    def ids_of(self, positions: np.ndarray) -> np.ndarray:
        """A row's position is its id."""
        return np.asarray(positions, dtype=np.int64)

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """A row's position is its id (-1 kept); valid as an offset into a re-rank store for ids 0..n-1."""
        ids = np.asarray(ids, dtype=np.int64)
        if ((ids < -1) | (ids >= self._count)).any():
            raise ValueError(f"ids outside 0..{self._count - 1} are not positions of this Milvus index")
        return ids

    def texts_of(self, ids: np.ndarray) -> list[list[str | None]]:
        """Response texts of (nq, k) result ids (one query to the server); ``None`` for missing results (-1)."""
        ids = np.atleast_2d(np.asarray(ids, dtype=np.int64))
        wanted = np.unique(ids[ids >= 0])
        texts = self._fetch(wanted, "text")
        if missing := [int(i) for i in wanted if int(i) not in texts]:
            raise ValueError(f"unknown ids, e.g. {missing[0]}")
        return [[texts[int(i)] if i >= 0 else None for i in row] for row in ids]

    @property
    def codes(self) -> np.ndarray:
        """(n, n_bits/8) uint8 codes, row i = id i, fetched from the server once (the codes re-rank reads them)."""
        if self._codes_cache is None:
            rows = sorted(self._fetch_all(["id", "code"]), key=lambda row: row["id"])
            if [row["id"] for row in rows] != list(range(len(rows))):
                raise ValueError(f"Milvus collection {self.collection_name!r}: ids are not 0..n-1, no codes by row")
            codes = np.frombuffer(b"".join(_code_bytes(row["code"]) for row in rows), dtype=np.uint8)
            self._codes_cache = codes.reshape(len(rows), self.code_size)
        return self._codes_cache

    def _rows(self) -> np.ndarray:
        return self.codes

    def _fetch(self, ids: np.ndarray, field: str) -> dict[int, Any]:
        """{id: value of ``field``} for the ids present (queries of at most MAX_TOP_K ids each)."""
        found: dict[int, Any] = {}
        for start in range(0, len(ids), MAX_TOP_K):
            chunk = ",".join(str(int(i)) for i in ids[start : start + MAX_TOP_K])
            rows = self._collection.query(
                expr=f"id in [{chunk}]", output_fields=[field], consistency_level="Session", timeout=self.timeout
            )
            found.update({int(row["id"]): row[field] for row in rows})
        return found

    def _fetch_all(self, fields: list[str]) -> list[dict[str, Any]]:
        iterator = self._collection.query_iterator(
            batch_size=MAX_TOP_K, expr="id >= 0", output_fields=fields, consistency_level="Session"
        )
        rows: list[dict[str, Any]] = []
        while batch := iterator.next():
            rows.extend(batch)
        iterator.close()
        return rows

    # ---- persistence: a header that points at the collection ---------------------------------------
    def _params(self) -> dict[str, Any]:
        return {
            "uri": self.uri, "collection": self.collection_name, "index_type": self.index_type, "nlist": self.nlist,
            "nprobe": self.nprobe,
        }

    def save(self, path: str | Path) -> None:
        """Flush, then write a directory whose header names the server and collection (no rows, never the token)."""
        path = Path(path)
        if path.exists() and not (path / _HEADER).is_file():
            raise ValueError(f"{path} exists and is not a hashbert index; refusing to replace it")
        self.flush()
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "type": type(self).__name__, "kind": self.kind,
            "count": self._count, "width": self.width, "params": self._params(), "has_ids": True,
            "has_texts": True, "hashbert_version": __version__,
        }
        with atomic_directory(path, kind="index") as tmp:
            with atomic_write(tmp / _HEADER, "w") as handle:
                json.dump(header, handle, indent=2, sort_keys=True)
            write_checksums(tmp, [_HEADER])

    @classmethod
    def load(cls, path: str | Path, **params: Any) -> MilvusBinaryIndex:
        """Connect to the collection a saved header names; ``params`` override its search parameters.

        Raises:
            ArtefactError: a damaged header, or a collection that no longer holds ``count`` rows.
            ValueError: the server cannot be reached or the collection does not match.
        """
        root = verify_checksums(path, required=(_HEADER,))
        header = read_json(root / _HEADER)
        _check_header(header, root, cls.kind)
        saved = header["params"]
        known = {key: params[key] for key in ("token", "nprobe", "timeout", "batch_size") if key in params}
        index = cls(header["width"], saved["uri"], saved["collection"], nprobe=saved["nprobe"], **known)
        if len(index) != header["count"]:
            raise ArtefactError(
                f"{path}: Milvus collection {saved['collection']!r} holds {len(index)} rows, not {header['count']}"
            )
        return index

    @classmethod
    def _empty(cls, width: int, params: dict[str, Any]) -> MilvusBinaryIndex:
        return cls(width, **params)

    def _add_rows(self, data: np.ndarray) -> None:  # ``add`` is overridden: rows go straight to the server
        raise NotImplementedError

    def _search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _code_bytes(value: Any) -> bytes:
    """pymilvus returns a binary vector as bytes or as a one-element list of bytes."""
    return value[0] if isinstance(value, list) else bytes(value)
