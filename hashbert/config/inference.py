"""How a saved model runs at inference time (torch or ONNX Runtime), and the ONNX export command."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from hashbert.config.fields import Config, option, required
from hashbert.config.training import check_device

Runtime = Literal["torch", "onnx", "auto"]
RUNTIMES: tuple[str, ...] = typing.get_args(Runtime)


@dataclass(frozen=True)
class InferenceConfig(Config):
    """Which engine runs a model's towers: torch, or ONNX Runtime over the graphs ``hashbert export onnx`` wrote."""

    runtime: Runtime = option(
        "auto", "torch; onnx: the model's exported graphs (refused when missing or made from other weights); "
        "auto: onnx when an up-to-date export exists, else torch",
    )
    onnx_precision: Literal["fp32", "int8"] = option(
        "fp32", "onnx: the fp32 graphs, or the int8 ones (export with --quantize int8)"
    )
    onnx_threads: int = option(0, "onnx: intra-op threads of each session (0: one per CPU core)", minimum=0)
    device: str = option(
        "auto", "torch: where the model's modules run: cpu, cuda, cuda:N, mps, or auto (cuda when available); "
        "ONNX Runtime runs on the CPU"
    )

    def validate(self) -> None:
        check_device(self.device)


@dataclass(frozen=True)
class ExportOnnxRun(Config):
    """Export a saved model's towers as ONNX graphs into <model>/onnx, for --runtime onnx.

    DR-BERT: the context and response towers; HDR: the utterance encoder, the response encoder and the
    aggregator; hashing models: their DR-BERT or HDR encoder and their trained hashing heads (two small graphs,
    fp32 in an int8 model too: their signs are the codes; LSH stays a NumPy product). Batch and sequence axes
    are dynamic. The directory is written atomically with a manifest recording the source weights' checksum
    (graphs of other weights are refused at load) and checksums of its own. With --quantize int8 the
    weight matrix products of every graph (the encoders' and the aggregator's) are also written as int8 graphs
    (onnxruntime dynamic quantization, per-channel weights); the attention products and embeddings stay fp32.
    """

    model: str = required("saved model directory (dual_encoder, hash_bert, hdr or hdr_hash)")
    quantize: Literal["none", "int8"] = option("none", "none: fp32 graphs; int8: fp32 and int8 graphs")
