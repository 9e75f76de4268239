"""``load_inference_model``: a saved model whose dense towers run on torch or on ONNX Runtime.

On ONNX the model keeps its torch config and tokenizer; only the encoder calls change: ``OnnxDualEncoder``
stands for a ``DualEncoder`` and ``OnnxHdrModel`` for an ``HdrModel``, with the same inference methods, so
evaluation, bundles, the retriever and ``HdrCache`` take either; ``OnnxHashHeads`` stands for a hashing model's
``HashHeads`` (a ``VectorHasher``) when the export holds head graphs (an export made before them leaves the
heads in torch). A session is created once per graph file and thread count per process (``session``), with
explicit intra-op threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashbert.config.inference import RUNTIMES, InferenceConfig
from hashbert.io import ArtefactError, artefact_fingerprint, read_json, verify_checksums
from hashbert.models.dual_encoder import dot_rerank_scores, encode_sorted
from hashbert.models.modes import resolve_device
from hashbert.models.onnx.export import MANIFEST, ONNX_DIR, dense_model, source_fingerprint

logger = logging.getLogger(__name__)

_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def session(path: str | Path, threads: int = 0):
    """The process's one ``onnxruntime.InferenceSession`` of ``path`` with ``threads`` intra-op threads (0: one
    per CPU core), created on first use."""
    import onnxruntime as ort

    threads = threads or os.cpu_count() or 1
    key = (os.path.realpath(path), threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            _SESSIONS[key] = ort.InferenceSession(key[0], options, providers=["CPUExecutionProvider"])
        return _SESSIONS[key]


class OnnxGraph:
    """One exported graph: keyword arrays in (names as exported), its outputs as a list of arrays out."""

    def __init__(self, path: Path, threads: int) -> None:
        self.path, self.session = path, session(path, threads)

    def __call__(self, **inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, inputs)


def exported_graphs(model_dir: str | Path, model: Any, runtime: str, precision: str) -> dict[str, Path] | None:
    """Graph name -> verified file of ``<model_dir>/onnx`` for ``runtime``, or None to run on torch.

    int8 replaces every graph that has an int8 version (all of them, for an export made with ``--quantize int8``).

    Raises:
        ValueError: ``runtime="onnx"`` without an export, or int8 asked of an fp32-only export.
        ArtefactError: damaged ONNX files, or (``onnx``) graphs made from other weights than the model's.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    directory = Path(model_dir) / ONNX_DIR
    if runtime == "torch" or (runtime == "auto" and not (directory / MANIFEST).is_file()):
        return None
    if not (directory / MANIFEST).is_file():
        raise ValueError(f"{model_dir}: no ONNX export; run: hashbert export onnx --model {model_dir}")
    root = verify_checksums(directory, required=(MANIFEST,))
    manifest = read_json(root / MANIFEST)
    heads = manifest.get("heads_fingerprint")
    if manifest.get("source_fingerprint") != source_fingerprint(model, model_dir) or (
        heads and heads != artefact_fingerprint(model_dir)
    ):
        message = f"{directory}: the ONNX graphs were made from other weights; rerun hashbert export onnx"
        if runtime == "onnx":
            raise ArtefactError(message)
        logger.warning("%s (running on torch)", message)
        return None
    if precision == "int8" and not manifest.get("int8"):
        raise ValueError(f"{directory}: no int8 graphs; run: hashbert export onnx --model {model_dir} --quantize int8")
    names = {**manifest["fp32"], **(manifest.get("int8", {}) if precision == "int8" else {})}
    return {name: root / file for name, file in names.items()}


def load_inference_model(model_dir: str | Path, inference: InferenceConfig | None = None):
    """Load the model saved in ``model_dir`` (``registry.load_model``) with its towers on ``inference.runtime``.

    Args:
        inference: ``runtime`` torch, onnx or auto (onnx when ``<model_dir>/onnx`` holds an up-to-date export),
            ``onnx_precision`` fp32 or int8, ``onnx_threads`` (0: one per CPU core). Default: auto, fp32.
    """
    from hashbert.models.registry import load_model

    inference = inference or InferenceConfig()
    runtime, precision, threads = inference.runtime, inference.onnx_precision, inference.onnx_threads
    model = load_model(model_dir)
    dense = dense_model(model)
    supported = hasattr(dense, "aggregator") or hasattr(dense, "context_encoder")
    if not supported:
        if runtime == "onnx":
            raise ValueError(f"{model_dir}: only DR-BERT and HDR towers (and their hashing models) run on onnx")
        return on_device(model, inference.device)
    graphs = exported_graphs(model_dir, model, runtime, precision)
    if graphs is None:
        return on_device(model, inference.device)
    return with_onnx_towers(model, graphs, threads)


def on_device(model: Any, device: str) -> Any:
    """A torch model (an ``nn.Module``: DR-BERT, Hash-BERT, HDR, cross-encoders) moved to ``device`` (``auto``:
    cuda when available); the plain-class models (LSH/ITQ codes, HDR hashing) stay where they are (the CPU)."""
    return model.to(resolve_device(device)) if isinstance(model, torch.nn.Module) else model


def with_onnx_towers(model: Any, graphs: dict[str, Path], threads: int = 0) -> Any:
    """``model`` with its dense encoder replaced by the ONNX one of ``graphs``."""
    from hashbert.models.onnx.hdr import OnnxHdrModel

    dense = dense_model(model)
    onnx = OnnxHdrModel(dense, graphs, threads) if hasattr(dense, "aggregator") else OnnxDualEncoder(
        dense, graphs, threads)
    if dense is model:
        return onnx
    # head graphs exist only for trained heads; LSH, or an export made before head graphs, keeps its own hasher
    heads = OnnxHashHeads(model.n_bits, graphs, threads) if "context_head" in graphs else None
    if hasattr(model, "dual_encoder"):  # HashBert (an nn.Module): a new one around the heads
        return type(model)(model.config, onnx, heads or model.heads, model.scoring)
    model.hdr = onnx  # HdrHash, a plain class
    model.hasher = heads or model.hasher
    return model


class OnnxHashHeads:
    """``HashHeads``' inference (a ``VectorHasher``: ``context_hash_vectors``, ``response_hash_vectors``) on ONNX.

    Args:
        n_bits: code length.
        graphs: ``context_head`` and ``response_head`` graph files (fp32 whatever the towers' precision).
        threads: intra-op threads.
    """

    def __init__(self, n_bits: int, graphs: dict[str, Path], threads: int = 0) -> None:
        self.n_bits = n_bits
        self.context_graph = OnnxGraph(graphs["context_head"], threads)
        self.response_graph = OnnxGraph(graphs["response_head"], threads)

    def _outputs(self, graph: OnnxGraph, vectors: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        out = np.empty((len(vectors), self.n_bits), dtype=np.float32)
        for start in range(0, len(vectors), batch_size):
            rows = np.ascontiguousarray(vectors[start : start + batch_size], dtype=np.float32)  # (b, dim)
            out[start : start + batch_size] = graph(vectors=rows)[0]
        return out

    def context_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) float32 dense context vectors -> (n, n_bits) float32 continuous outputs (signs = codes)."""
        return self._outputs(self.context_graph, vectors)

    def response_hash_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) float32 dense response vectors -> (n, n_bits) float32 continuous outputs (signs = codes)."""
        return self._outputs(self.response_graph, vectors)


class OnnxDualEncoder:
    """A ``DualEncoder``'s inference API (``encode_contexts``, ``encode_responses``, ``rerank_scores``) on ONNX.

    Args:
        dual: the loaded DR-BERT (its config, tokenizer and text rules are used; its weights are not).
        graphs: ``context`` and ``response`` graph files.
        threads: intra-op threads.
    """

    runtime, training = "onnx", False

    def __init__(self, dual, graphs: dict[str, Path], threads: int = 0) -> None:
        self.config, self.tokenizer, self.batcher, self.dim = dual.config, dual.tokenizer, dual.batcher, dual.dim
        self.context_graph = OnnxGraph(graphs["context"], threads)
        self.response_graph = OnnxGraph(graphs["response"], threads)

    @staticmethod
    def _runner(graph: OnnxGraph):
        return lambda tokens: graph(**{k: v.numpy() for k, v in tokens.items()})[0]

    def encode_contexts(self, contexts: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False):
        """Contexts (each a sequence of turns) -> (N, H) float32."""
        run = self._runner(self.context_graph)
        return encode_sorted(contexts, self.batcher.contexts, run, self.dim, batch_size, progress, "contexts")

    def encode_responses(self, responses: Sequence[str], batch_size: int = 128, progress: bool = False):
        """Responses -> (N, H) float32."""
        run = self._runner(self.response_graph)
        return encode_sorted(responses, self.batcher.responses, run, self.dim, batch_size, progress, "responses")

    def rerank_scores(self, groups: Sequence, batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
        """Dot-product score of every candidate of every group, as ``DualEncoder.rerank_scores``."""
        return dot_rerank_scores(self, groups, batch_size, progress)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")
