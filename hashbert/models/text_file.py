"""Encode a text file (one text per line) with any saved model into a ``.npy`` of float32 vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from hashbert.config.inference import InferenceConfig
from hashbert.data import read_response_pool
from hashbert.io import atomic_write
from hashbert.models.onnx.runtime import load_inference_model


def encode_text_file(
    model_dir: str | Path, input_path: str | Path, out_path: str | Path, side: Literal["response", "context"],
    batch_size: int = 128, progress: bool = False, inference: InferenceConfig | None = None,
) -> tuple[int, int]:
    """Encode each line of ``input_path`` (contexts: turns separated by tabs) and save the vectors atomically.

    ``inference`` says whether torch or ONNX Runtime runs the towers (default: onnx when exported).

    Returns:
        (rows, dim) of the saved float32 array; row i is line i.
    """
    model = load_inference_model(model_dir, inference)
    texts = read_response_pool(input_path)
    if side == "response":
        vectors = model.encode_responses(texts, batch_size, progress=progress)
    else:
        vectors = model.encode_contexts([t.split("\t") for t in texts], batch_size, progress=progress)
    with atomic_write(out_path) as handle:
        np.save(handle, vectors, allow_pickle=False)
    return vectors.shape
