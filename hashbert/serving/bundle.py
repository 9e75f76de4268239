"""A deployable index bundle: one directory that holds a model, its index of a response pool and what to trust.

Layout (written with ``atomic_directory(out, kind="bundle")``, so readers see one whole version)::

    manifest.json     a BundleManifest (model kind, n_bits, scoring, pool size, fingerprint, ...)
    model/            a self-contained copy of the model directory
    index/            BinaryFlatIndex of the response codes (hashing models) or FloatIndex of the response
                      vectors (DR-BERT, HDR); ids = positions (the responses file's line order), texts stored;
                      with a milvus ``store``, only a header naming the collection that holds codes and texts
    vectors.npy       optional (hashing models, ``float_vectors``): (pool_size, dim) float32 dense response
                      vectors, row i = index position i, read with mmap so a search touches only its candidates
    checksums.json    sha256 of manifest.json, vectors.npy and of model/ and index/ checksums.json (which cover
                      every file under them): one verified chain

``model/`` is self-contained: a Hash-BERT (or HDR hashing model) that references its frozen DR-BERT (HDR model)
by absolute path gets that model copied inside it (``dual_encoder/`` or ``hdr/``) and its config switched to the
embedded form, so ``load_model`` reads nothing outside the bundle. The copied model's own ``checksums.json`` is
byte-identical, so the fingerprint the heads recorded still verifies it on load. The manifest's
``model_fingerprint`` is the sha256 of the *source* model's ``checksums.json``.

Builds resume: responses are encoded in chunks of ``chunk_size`` into ``<out>.build/chunk-NNNNN.npy`` (dense
vectors, written atomically) beside a copy of the model; a rerun with the same model, responses file and chunk
size skips the finished chunks (anything else starts over). The work directory is removed once the bundle is out.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hashbert import __version__
from hashbert.config import config_from_dict, config_to_dict
from hashbert.config.inference import InferenceConfig
from hashbert.config.serving import BundleManifest, IndexStoreConfig
from hashbert.data import read_response_pool
from hashbert.io import (
    CHECKSUM_FILE,
    MARKER_FILE,
    ArtefactError,
    artefact_fingerprint,
    atomic_directory,
    atomic_write,
    read_json,
    resolve_artefact,
    sha256_file,
    verify_checksums,
    write_checksums,
    write_json,
)
from hashbert.serving.towers import Towers, load_towers

logger = logging.getLogger(__name__)

MANIFEST, VECTORS, MODEL_DIR, INDEX_DIR, KEY = "manifest.json", "vectors.npy", "model", "index", "key.json"
_EMBEDDED_NAME = {"hash_bert": "dual_encoder", "hdr_hash": "hdr"}  # where a referenced model is copied to
_CHAINED = (MANIFEST, f"{MODEL_DIR}/{CHECKSUM_FILE}", f"{INDEX_DIR}/{CHECKSUM_FILE}")


@dataclass(frozen=True)
class LoadedBundle:
    """A verified bundle in memory: its resolved version, manifest, model, index and optional vectors (mmap)."""

    root: Path
    manifest: BundleManifest
    towers: Towers
    index: Any
    vectors: np.ndarray | None


# ---------------------------------------------------------------------------------------------- the model copy


def copy_model(model_dir: str | Path, dest: Path) -> str:
    """Copy the model in ``model_dir`` to ``dest``, self-contained; return the source's fingerprint.

    The copy is verified against the source's checksums before anything is rewritten, so a damaged source
    is refused (``ArtefactError``) rather than re-blessed by new checksums.
    """
    source = resolve_artefact(model_dir)
    if not (source / CHECKSUM_FILE).is_file():
        raise ArtefactError(f"{model_dir}: not a saved hashbert model (no {CHECKSUM_FILE})")
    fingerprint = artefact_fingerprint(source)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".onnx.*"))  # onnx/ itself, not its versions
    verify_checksums(dest, required=("config.json",))
    header = read_json(dest / "config.json")
    config = header.get("config") if isinstance(header, dict) else None
    if isinstance(config, dict) and header.get("type") in _EMBEDDED_NAME and not config.get("encoder_embedded"):
        name = _EMBEDDED_NAME[header["type"]]
        if not config.get("encoder_path"):  # "" would resolve to the working directory and copy all of it
            raise ArtefactError(f"{model_dir}: the model names no encoder directory to copy (encoder_path is empty)")
        shutil.copytree(resolve_artefact(config["encoder_path"]), dest / name)
        header["config"] = {**config, "encoder_path": name, "encoder_embedded": True}
        write_json(dest / "config.json", header)
        files = [p.relative_to(dest).as_posix() for p in sorted(dest.rglob("*")) if p.is_file()]
        write_checksums(dest, [f for f in files if f not in (CHECKSUM_FILE, MARKER_FILE)])
    return fingerprint


# ---------------------------------------------------------------------------------------------- chunks


def _work_dir(out: Path, key: dict[str, Any], model_dir: str | Path) -> Path:
    """``<out>.build`` holding a model copy and finished chunks; reused only when ``key`` matches."""
    work = out.parent / f"{out.name}.build"
    if (work / KEY).is_file() and (work / MODEL_DIR).is_dir():
        try:
            if read_json(work / KEY) == key:
                logger.info("resuming the build in %s", work)
                return work
        except ArtefactError:
            pass
    if work.exists():
        logger.info("starting over: %s was left by a build of other inputs", work)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    copy_model(model_dir, work / MODEL_DIR)
    write_json(work / KEY, key)  # last: a work directory without it is never resumed
    return work


def _encode_chunk(towers: Towers, responses: Sequence[str]) -> np.ndarray:
    """One chunk of responses -> (n, dim) float32 dense vectors."""
    return np.ascontiguousarray(towers.response_vectors(responses), dtype=np.float32)


def _encode_chunks(towers: Towers, responses: list[str], work: Path, chunk_size: int, progress: bool) -> list[Path]:
    """Encode every chunk not already in ``work``; return the chunk files in order."""
    starts = range(0, len(responses), chunk_size)
    paths = [work / f"chunk-{i:05d}.npy" for i in range(len(starts))]
    done = sum(min(chunk_size, len(responses) - s) for s, p in zip(starts, paths, strict=True) if p.is_file())
    if done:
        logger.info("%d of %d responses already encoded in %s", done, len(responses), work)
    with tqdm(total=len(responses), initial=done, disable=not progress, unit="response", desc="encoding") as bar:
        for start, path in zip(starts, paths, strict=True):
            if path.is_file():
                continue
            vectors = _encode_chunk(towers, responses[start : start + chunk_size])
            with atomic_write(path) as handle:
                np.save(handle, vectors, allow_pickle=False)
            bar.update(len(vectors))
    return paths


def _chunk(path: Path, rows: int, dim: int) -> np.ndarray:
    vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    if vectors.shape != (rows, dim) or vectors.dtype != np.float32:
        raise ArtefactError(f"{path}: expected ({rows}, {dim}) float32, found {vectors.dtype} {vectors.shape}")
    return vectors


def _append_chunks(index, towers: Towers, paths: list[Path], responses: list[str], chunk_size: int) -> list:
    """Add each chunk's codes (or vectors) and texts to ``index``; return the chunks' vectors (mmap)."""
    blocks = []
    for i, path in enumerate(paths):
        texts = responses[i * chunk_size : (i + 1) * chunk_size]
        vectors = _chunk(path, len(texts), towers.dim)
        rows = np.array(vectors)  # in memory and writable (torch refuses read-only arrays)
        index.add(towers.response_codes(rows) if towers.n_bits else rows, texts=texts)
        blocks.append(vectors)
    return blocks


# ---------------------------------------------------------------------------------------------- writing


def _write_vectors(path: Path, blocks: list[np.ndarray], dim: int) -> None:
    """Stream ``blocks`` of (n_i, dim) rows into one .npy (no pickles), without holding them all in memory."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(sum(map(len, blocks)), dim))
    row = 0
    for block in blocks:
        for start in range(0, len(block), 65536):
            part = block[start : start + 65536]
            out[row : row + len(part)] = part
            row += len(part)
    out.flush()
    del out


def _write_bundle(out: Path, model_src: Path, index, blocks: list | None, facts: dict[str, Any]) -> BundleManifest:
    """Write the bundle atomically.

    Args:
        facts: ``model_kind``, ``dim``, ``n_bits``, ``model_fingerprint``, ``revision``, ``build_seconds`` (of
            earlier builds) and ``started`` (``time.perf_counter()`` when this build began).
    """
    facts = dict(facts)
    started = facts.pop("started")
    vector_bytes = facts["dim"] * 4 if blocks is not None else 0
    scoring = "hamming_vectors_rerank" if blocks is not None else "hamming_codes_rerank"
    with atomic_directory(out, kind="bundle") as tmp:
        shutil.copytree(model_src, tmp / MODEL_DIR)
        index.save(tmp / INDEX_DIR)
        if blocks is not None:
            _write_vectors(tmp / VECTORS, blocks, facts["dim"])
        facts["build_seconds"] += time.perf_counter() - started
        manifest = BundleManifest(
            **facts, scoring=scoring if facts["n_bits"] else "inner_product", pool_size=len(index),
            float_vectors=blocks is not None, hashbert_version=__version__,
            bytes_per_response=index.nbytes / max(1, len(index)) + vector_bytes, **_store_facts(index),
        )
        write_json(tmp / MANIFEST, config_to_dict(manifest))
        write_checksums(tmp, [*_CHAINED, *([VECTORS] if blocks is not None else [])])
    logger.info("wrote %s: %d responses, %s", out, manifest.pool_size, manifest.scoring)
    return manifest


def _new_index(towers: Towers, store: IndexStoreConfig | None = None, progress: bool = False):
    from hashbert.index import BinaryFlatIndex, FloatIndex

    if store is None or store.backend == "faiss":
        return BinaryFlatIndex(towers.n_bits) if towers.n_bits else FloatIndex(towers.dim)
    if not towers.n_bits:
        raise ValueError(f"--backend milvus holds binary codes: a {towers.kind} model has none (use a hashing model)")
    from hashbert.index.milvus import MilvusBinaryIndex
    from hashbert.index.milvus_client import recreate_collection

    token = store.milvus_token or None
    recreate_collection(store.milvus_uri, store.collection, token)
    return MilvusBinaryIndex(
        towers.n_bits, store.milvus_uri, store.collection, token, store.milvus_index, store.nlist, store.nprobe,
        show_progress=progress,
    )


def _store_facts(index) -> dict[str, Any]:
    """The manifest fields saying where the index lives (none for an index inside the bundle)."""
    if not hasattr(index, "collection_name"):
        return {}
    return {"index_backend": "milvus", "milvus_uri": index.uri, "milvus_collection": index.collection_name}


def _read_responses(responses_file: str | Path) -> list[str]:
    responses = read_response_pool(responses_file)
    if not responses:
        raise ValueError(f"{responses_file}: no responses (one per line)")
    return responses


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")


# ---------------------------------------------------------------------------------------------- public


def build_bundle(
    model_dir: str | Path, responses_file: str | Path, out: str | Path, *, float_vectors: bool = False,
    chunk_size: int = 2048, progress: bool = True, inference: InferenceConfig | None = None,
    store: IndexStoreConfig | None = None,
) -> BundleManifest:
    """Encode every response of ``responses_file`` with the model in ``model_dir`` and write the bundle ``out``.

    Args:
        model_dir: a saved dual_encoder, hash_bert, hdr (single-vector) or hdr_hash model.
        responses_file: one response per line (``write_response_pool``'s format); ids are line positions.
        out: the bundle directory (replaced atomically if it is a bundle already).
        float_vectors: hashing models: also store the dense response vectors (``vectors.npy``) for the re-rank.
        chunk_size: responses per saved chunk (the unit an interrupted build resumes from).
        progress: show a progress bar.
        inference: torch or ONNX Runtime for the encoding (default: onnx when the model has an export).
        store: where the index lives (default: a faiss index inside the bundle; milvus: a collection there).

    Raises:
        ValueError: an unservable model, ``float_vectors`` for a float model, an empty responses file.
        ArtefactError: a damaged model.
    """
    started, out = time.perf_counter(), Path(out)
    _check_chunk_size(chunk_size)
    responses = _read_responses(responses_file)
    from hashbert.models.serialization import model_type_of

    if float_vectors and (kind := model_type_of(model_dir)) in ("dual_encoder", "hdr"):
        raise ValueError(f"--float-vectors is for hashing models: a {kind} index holds the vectors already")
    source = resolve_artefact(model_dir)
    fingerprint = artefact_fingerprint(source) if (source / CHECKSUM_FILE).is_file() else ""
    key = {"model": fingerprint, "responses": sha256_file(responses_file), "chunk_size": chunk_size, "base": ""}
    work = _work_dir(out, key, model_dir)
    towers = load_towers(work / MODEL_DIR, inference)
    index = _new_index(towers, store, progress)  # first: an unreachable index server fails before the encoding
    paths = _encode_chunks(towers, responses, work, chunk_size, progress)
    blocks = _append_chunks(index, towers, paths, responses, chunk_size)
    facts = {
        "model_kind": towers.kind, "dim": towers.dim, "n_bits": towers.n_bits, "model_fingerprint": fingerprint,
        "revision": 1, "build_seconds": 0.0, "started": started,
    }
    manifest = _write_bundle(out, work / MODEL_DIR, index, blocks if float_vectors else None, facts)
    shutil.rmtree(work)
    return manifest


def add_to_bundle(
    bundle_dir: str | Path, responses_file: str | Path, *, chunk_size: int = 2048, progress: bool = True
) -> BundleManifest:
    """Encode only the responses of ``responses_file`` and append them to the bundle (ids continue).

    The bundle is rewritten atomically as a new version (``revision`` + 1); an interrupted add resumes like a
    build. Returns the new manifest.
    """
    started, bundle = time.perf_counter(), Path(bundle_dir)
    _check_chunk_size(chunk_size)
    root = verify_checksums(bundle, required=_CHAINED)
    manifest = _manifest_at(root, bundle)
    responses = _read_responses(responses_file)
    key = {
        "model": manifest.model_fingerprint, "responses": sha256_file(responses_file), "chunk_size": chunk_size,
        "base": artefact_fingerprint(root),
    }
    work = _work_dir(bundle, key, root / MODEL_DIR)
    towers = load_towers(work / MODEL_DIR)
    paths = _encode_chunks(towers, responses, work, chunk_size, progress)
    from hashbert.index import load_index

    index = load_index(root / INDEX_DIR)
    blocks = _append_chunks(index, towers, paths, responses, chunk_size)
    if manifest.float_vectors:
        blocks = [_chunk(root / VECTORS, manifest.pool_size, manifest.dim), *blocks]
    facts = {
        "model_kind": manifest.model_kind, "dim": manifest.dim, "n_bits": manifest.n_bits,
        "model_fingerprint": manifest.model_fingerprint, "revision": manifest.revision + 1,
        "build_seconds": manifest.build_seconds, "started": started,
    }
    new = _write_bundle(bundle, work / MODEL_DIR, index, blocks if manifest.float_vectors else None, facts)
    shutil.rmtree(work)
    return new


def read_manifest(bundle_dir: str | Path) -> BundleManifest:
    """The bundle's manifest, its checksum verified (the rest of the bundle is verified by ``load_bundle``)."""
    shown = Path(bundle_dir)
    root = resolve_artefact(shown)
    listing = read_json(root / CHECKSUM_FILE, shown / CHECKSUM_FILE)
    if not (root / MANIFEST).is_file():
        raise ArtefactError(f"{shown / MANIFEST}: file not found (not a bundle?)")
    if not isinstance(listing, dict) or listing.get(MANIFEST) != sha256_file(root / MANIFEST):
        raise ArtefactError(f"{shown / MANIFEST}: checksum mismatch, the file is truncated or was altered")
    return _manifest_at(root, shown)


def _manifest_at(root: Path, shown: Path) -> BundleManifest:
    try:
        return config_from_dict(BundleManifest, read_json(root / MANIFEST, shown / MANIFEST))
    except ArtefactError:
        raise
    except ValueError as err:
        raise ArtefactError(f"{shown / MANIFEST}: not a bundle manifest this hashbert reads ({err})") from err


def load_bundle(
    bundle_dir: str | Path, threads: int | None = None, inference: InferenceConfig | None = None
) -> LoadedBundle:
    """Verify every file of the bundle, then load its model (towers on ``inference.runtime``), index and (mmap)
    vectors.

    Raises:
        ArtefactError: a missing, truncated or altered file, or parts that do not fit together.
    """
    from hashbert.index import load_index

    shown = Path(bundle_dir)
    root = verify_checksums(shown, required=_CHAINED)
    manifest = _manifest_at(root, shown)
    if manifest.float_vectors and VECTORS not in read_json(root / CHECKSUM_FILE):
        raise ArtefactError(f"{shown / CHECKSUM_FILE}: does not list {VECTORS}")
    towers = load_towers(root / MODEL_DIR, inference)
    index = load_index(root / INDEX_DIR, threads=threads)
    vectors = _chunk(root / VECTORS, manifest.pool_size, manifest.dim) if manifest.float_vectors else None
    width = manifest.n_bits or manifest.dim
    if (towers.kind, towers.n_bits, len(index), index.width) != (manifest.model_kind, manifest.n_bits,
                                                                  manifest.pool_size, width):
        raise ArtefactError(f"{shown}: the model or index does not match {MANIFEST}")
    return LoadedBundle(root, manifest, towers, index, vectors)
