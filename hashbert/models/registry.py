"""``load_model(directory)``: open any saved hashbert model by the ``type`` its config.json records."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from hashbert.io import ArtefactError
from hashbert.models.serialization import model_type_of

# type string -> "module:Class"; classes are imported only when a model of that type is loaded.
MODEL_TYPES = {
    "dual_encoder": "hashbert.models.dual_encoder:DualEncoder",
    "hash_bert": "hashbert.models.hash_bert:HashBert",
    "lsh": "hashbert.models.lsh:RandomHyperplaneLSH",
    "sign_hash": "hashbert.models.lsh:SignHash",
    "itq": "hashbert.models.lsh:ITQ",
    "hdr": "hashbert.models.hdr:HdrModel",
    "hdr_hash": "hashbert.models.hdr_hash:HdrHash",
    "cross_encoder": "hashbert.models.cross_encoder:CrossEncoder",
}


def load_model(directory: str | Path) -> Any:
    """Load the model saved in ``directory`` (checksums verified), whatever its type."""
    model_type = model_type_of(directory)
    if model_type not in MODEL_TYPES:
        raise ArtefactError(f"{directory}: unknown model type {model_type!r}; known types: {sorted(MODEL_TYPES)}")
    module_name, class_name = MODEL_TYPES[model_type].split(":")
    return getattr(importlib.import_module(module_name), class_name).load(directory)
