"""``export_onnx(model_dir)``: the towers of a saved model as ONNX graphs, an addition to the model directory.

What is exported is every tower a model runs at inference time:

* DR-BERT: ``context.onnx`` and ``response.onnx`` (one file when the towers are shared):
  ``input_ids, attention_mask (B, T) int64 -> vectors (B, H) float32``;
* HDR-BERT: ``utterance.onnx`` (``-> slots (U, k, H) float32, slot_mask (U, k) bool``), ``response.onnx``
  (``-> vectors (N, k', H), mask (N, k')``) and ``aggregator.onnx`` (``slots, slot_mask, turn_index (B, T)
  int64 -> vectors (B, k_out, H), mask (B, k_out)``);
* hashing models with trained heads (Hash-BERT, HDR + heads): their DR-BERT or HDR towers as above, and
  ``context_head.onnx`` and ``response_head.onnx``: ``vectors (B, H) float32 -> hash_vectors (B, n_bits)
  float32``, the heads' continuous outputs (``HashHeads.context_hash_vectors``), whose signs are the codes. The
  heads are graphs of their own, not appended to the towers: a tower's graph keeps one meaning (the dense
  vectors, which two-stage search re-ranks with), and a head call costs one more ``session.run`` on a (1, H)
  array. Random-hyperplane LSH is one NumPy product already and is not exported.

Batch and sequence axes are dynamic. The files go to ``<model_dir>/onnx/`` (written atomically with a
``manifest.json`` and ``checksums.json``); the safetensors weights stay the source of truth: the manifest
records the sha256 of the source weights' ``checksums.json`` (and, with head graphs, of the hashing model's own,
which covers its heads) and a loader refuses ONNX files made from other weights (``runtime.exported_graphs``).

int8 (``quantize="int8"``): onnxruntime's dynamic quantization of every graph's ``MatMul`` nodes whose second
input is a weight (the encoders' Q/K/V, attention output and feed-forward projections; the HDR aggregator's
key/value, query, output and feed-forward projections), with per-channel int8 weights and uint8 activations
quantized per call. Kept in fp32: the attention products (both inputs are activations, ``MatMulConstBOnly``), the
embedding tables, LayerNorms and the aggregator's merge layer (a ``Gemm``). Per-tensor weights moved vectors to
cosine 0.85-0.94 against fp32 in the issue's measurement, per-channel to 0.97-0.99. The head graphs stay fp32
under int8 (an int8 model runs them in fp32): a head's outputs are thresholded at zero, so its rounding flips code
bits directly, and its products are <1% of a turn's. The aggregator was fp32 at first (it sees every turn, so its
rounding reaches every context vector); quantized, it kept the test split's R10@1 of the 3-layer-encoder HDR
unchanged (61.69 both, int8 encoders) and took 18% off the aggregator graph at turn 10 (1.51 -> 1.23 ms, the two
graphs interleaved, on a loaded machine). Its key/value projections joined only once the graph was constant-folded
before quantizing (``quantize_int8``): 1.07 -> 0.83 ms for the graph at turn 10, interleaved.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hashbert import __version__
from hashbert.io import artefact_fingerprint, atomic_directory, write_checksums, write_json

logger = logging.getLogger(__name__)

ONNX_DIR, MANIFEST = "onnx", "manifest.json"
FORMAT_VERSION = 1
OPSET = 17
QUANTIZED_GRAPHS = ("context", "response", "utterance", "aggregator")
TOKENS = ("input_ids", "attention_mask")


class _HashOutputs(nn.Module):
    """One side of ``HashHeads`` as a module: dense vectors -> the head's continuous outputs (signs = codes)."""

    def __init__(self, heads: nn.Module, side: str) -> None:
        super().__init__()
        self.heads, self.side = heads, side

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.heads.float_outputs(self.side, vectors)


class _Outputs(nn.Module):
    """A bound method of a model as a module, so that ``torch.onnx.export`` traces that call alone."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *inputs):
        return getattr(self.model, self.method)(*inputs)


def dense_model(model: Any) -> Any:
    """The torch module whose towers are exported: the model itself, or a hashing model's dense encoder."""
    return getattr(model, "dual_encoder", None) or getattr(model, "hdr", None) or model


def hashing_heads(model: Any) -> nn.Module | None:
    """The trained ``HashHeads`` of a hashing model (Hash-BERT's ``heads``, an HDR hash model's ``hasher``), else
    None (dense models, LSH)."""
    from hashbert.models.hashing.tower_heads import HashHeads

    heads = getattr(model, "heads", None) or getattr(model, "hasher", None)
    return heads if isinstance(heads, HashHeads) else None


def source_fingerprint(model: Any, model_dir: str | Path) -> str:
    """sha256 of the ``checksums.json`` of the weights the ONNX graphs hold (the referenced encoder's for hashing
    models, as their config records it)."""
    config = getattr(model, "config", None)
    if getattr(config, "encoder_checksums_sha256", ""):
        return config.encoder_checksums_sha256
    return artefact_fingerprint(model_dir)


def _token_inputs(tokenizer, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two texts padded to ``length`` tokens (the trace's example; any length works afterwards)."""
    encoded = tokenizer(["a dummy utterance to trace the graph with, long enough", "short"], padding="max_length",
                        max_length=length, truncation=True, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def _graphs(model: Any) -> dict[str, tuple[nn.Module, tuple, tuple[str, ...], tuple[str, ...]]]:
    """name -> (module, example inputs, input names, output names) of every tower of ``model``."""
    heads = hashing_heads(model)
    graphs = _tower_graphs(dense_model(model).eval())
    if heads is not None:
        vectors = (torch.randn(2, heads.in_dim),)
        graphs |= {f"{side}_head": (_HashOutputs(heads.eval(), side), vectors, ("vectors",), ("hash_vectors",))
                   for side in ("context", "response")}
    return graphs


def _tower_graphs(dense: nn.Module) -> dict[str, tuple[nn.Module, tuple, tuple[str, ...], tuple[str, ...]]]:
    """``_graphs`` of the dense encoder: DR-BERT's towers, or HDR's utterance, response and aggregator graphs."""
    tokens = _token_inputs(dense.tokenizer, 16)
    if not hasattr(dense, "aggregator"):  # DR-BERT
        graphs = {"context": (dense.context_encoder, tokens, TOKENS, ("vectors",))}
        if dense.response_encoder is not dense.context_encoder:
            graphs["response"] = (dense.response_encoder, tokens, TOKENS, ("vectors",))
        return graphs
    k, dim = dense.config.slots, dense.dim
    slots, mask = torch.randn(3, k, dim), torch.ones(3, k, dtype=torch.bool)
    mask[2, 2:] = False
    turn_index = torch.tensor([[0, 1, 2], [0, 1, -1]])
    return {
        "utterance": (_Outputs(dense, "utterance_slots"), tokens, TOKENS, ("slots", "slot_mask")),
        "response": (_Outputs(dense, "response_slots"), tokens, TOKENS, ("vectors", "mask")),
        "aggregator": (dense.aggregator, (slots, mask, turn_index), ("slots", "slot_mask", "turn_index"),
                       ("vectors", "mask")),
    }


def _export_graph(module: nn.Module, inputs: tuple, names: tuple, outputs: tuple, path: Path) -> None:
    """Trace ``module`` on ``inputs`` into ``path`` with every input and output axis 0 and 1 dynamic (axis 0 alone
    for the heads, whose axis 1 is a vector's size).

    The encoders go through the TorchScript tracer (fast, and exact on BERT); the aggregator through
    ``torch.export`` (the tracer bakes the sequence length of ``nn.MultiheadAttention``'s reshapes into the
    graph). With gradients on, ``nn.TransformerEncoderLayer`` skips its fused inference kernel, which ONNX
    cannot express.
    """
    with torch.enable_grad():
        if "turn_index" in names:  # the aggregator: (U, k, H) slots, (U, k) mask, (B, T) turn rows
            utterances, batch = torch.export.Dim("utterances"), torch.export.Dim("batch")
            turns = torch.export.Dim("turns", max=512)
            shapes = {"slots": {0: utterances}, "slot_mask": {0: utterances}, "turn_index": {0: batch, 1: turns}}
            program = torch.onnx.export(module, inputs, input_names=list(names), output_names=list(outputs),
                                        dynamic_shapes=shapes, opset_version=18, dynamo=True, verbose=False)
            program.save(str(path))
            return
        dynamic = {0: "batch", 1: "length"} if names == TOKENS else {0: "batch"}
        axes = {name: dynamic for name in (*names, *outputs)}
        torch.onnx.export(module, inputs, str(path), input_names=list(names), output_names=list(outputs),
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def quantize_int8(source: Path, target: Path) -> list[str]:
    """Dynamic int8 quantization of ``source`` into ``target`` (see the module docstring); returns the op types."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    ops = ["MatMul"]
    # ONNX Runtime's pre-processing (constant folding, shape inference) first: the aggregator's key and value
    # weights are slices of nn.MultiheadAttention's packed in_proj_weight, computed by a Split in the exported
    # graph, and the quantizer only takes a MatMul whose weight is an initializer (they stayed fp32 without it).
    # The symbolic shape pass is skipped: it cannot follow the dynamic sequence axes of either export.
    folded = target.with_name(f"{target.stem}.folded.onnx")
    try:
        quant_pre_process(str(source), str(folded), skip_symbolic_shape=True)
        quantize_dynamic(str(folded), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=ops, extra_options={"MatMulConstBOnly": True})
    finally:
        folded.unlink(missing_ok=True)
    return ops


def export_onnx(model_dir: str | Path, quantize: str = "none") -> Path:
    """Export the towers of the model saved in ``model_dir`` into ``<model_dir>/onnx`` (atomic, checksummed).

    Args:
        model_dir: a saved ``dual_encoder``, ``hash_bert``, ``hdr`` or ``hdr_hash`` model.
        quantize: ``none`` (fp32 only) or ``int8`` (fp32 and int8 graphs of the encoders).

    Returns:
        The ``onnx`` directory.

    Raises:
        ValueError: another model type, a colbert HDR (several context vectors), or an unknown ``quantize``.
    """
    from hashbert.models.registry import load_model
    from hashbert.models.serialization import model_type_of

    if quantize not in ("none", "int8"):
        raise ValueError(f"quantize must be none or int8, got {quantize!r}")
    kind = model_type_of(model_dir)
    if kind not in ("dual_encoder", "hash_bert", "hdr", "hdr_hash"):
        raise ValueError(f"{model_dir}: ONNX export takes dual_encoder, hash_bert, hdr or hdr_hash models, not {kind}")
    model = load_model(model_dir)
    graphs, int8 = {}, {}
    with atomic_directory(Path(model_dir) / ONNX_DIR, kind="onnx") as tmp:
        for name, (module, inputs, names, outputs) in _graphs(model).items():
            graphs[name] = f"{name}.onnx"
            _export_graph(module, inputs, names, outputs, tmp / graphs[name])
            if quantize == "int8" and name in QUANTIZED_GRAPHS:
                int8[name] = f"{name}.int8.onnx"
                ops = quantize_int8(tmp / graphs[name], tmp / int8[name])
        if "response" not in graphs and "context" in graphs:  # shared DR-BERT towers: one graph
            graphs["response"] = graphs["context"]
            if int8:
                int8["response"] = int8["context"]
        manifest = {
            "format": FORMAT_VERSION, "hashbert_version": __version__, "model_type": kind, "opset": OPSET,
            "source_fingerprint": source_fingerprint(model, model_dir), "fp32": graphs, "int8": int8,
            "int8_quantized_ops": ops if int8 else [], "int8_weights": "per-channel QInt8" if int8 else "",
        }
        if "context_head" in graphs:  # the hashing model's own checksums cover its heads' weights
            manifest["heads_fingerprint"] = artefact_fingerprint(model_dir)
        write_json(tmp / MANIFEST, manifest)
        write_checksums(tmp, sorted({*graphs.values(), *int8.values(), MANIFEST}))
    logger.info("exported %s to %s (%s)", ", ".join(graphs), Path(model_dir) / ONNX_DIR, quantize)
    return Path(model_dir) / ONNX_DIR
