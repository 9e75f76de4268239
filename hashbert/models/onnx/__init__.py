"""Towers on ONNX Runtime: ``export_onnx`` writes them beside a model's weights, ``load_inference_model`` runs a
saved model on torch or on those graphs (``--runtime torch|onnx|auto``)."""

from hashbert.models.onnx.export import export_onnx
from hashbert.models.onnx.runtime import load_inference_model

__all__ = ["export_onnx", "load_inference_model"]
