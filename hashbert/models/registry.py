"""``load_model(directory)``: open any saved hashbert model by the ``type`` its config.json records."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from hashbert.io import ArtefactError
from hashbert.models.serialization import model_type_of, read_model_header

# type string -> "module:Class"; classes are imported only when a model of that type is loaded.
MODEL_TYPES = {
    "dual_encoder": "hashbert.models.dual_encoder:DualEncoder",
    "hash_bert": "hashbert.models.hashing.hash_bert:HashBert",
    "lsh": "hashbert.models.hashing.lsh:RandomHyperplaneLSH",
    "sign_hash": "hashbert.models.hashing.lsh:SignHash",
    "itq": "hashbert.models.hashing.lsh:ITQ",
    "hdr": "hashbert.models.hdr.model:HdrModel",
    "hdr_hash": "hashbert.models.hdr.hashing:HdrHash",
    "cross_encoder": "hashbert.models.cross.cross_encoder:CrossEncoder",
}


def load_model(directory: str | Path) -> Any:
    """Load the model saved in ``directory`` (checksums verified), whatever its type.

    Raises:
        ArtefactError: ``PATH: reason`` for anything wrong with the directory: not a model directory (a
            run directory names its ``model/``), damaged files, a config.json of the wrong shape, an
            unknown type, or a config its model class cannot be built from. Loaders that pass the
            saved config as keyword arguments (``cls(**config)``) signal a bad one with ``TypeError``,
            ``KeyError`` or their constructor's ``ValueError``, and ``safetensors`` a bad arrays file with
            its own ``SafetensorError``; those are reported here as what they are, with the path.
    """
    model_type = model_type_of(directory)
    if model_type not in MODEL_TYPES:
        read_model_header(directory)  # a damaged config.json is the likelier cause: verify before blaming the type
        raise ArtefactError(f"{directory}: unknown model type {model_type!r}; known types: {sorted(MODEL_TYPES)}")
    module_name, class_name = MODEL_TYPES[model_type].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls.load(directory)
    except SafetensorError as err:
        raise ArtefactError(f"{directory}: unreadable safetensors file ({err})") from err
    except ArtefactError:
        raise
    except (TypeError, KeyError, ValueError) as err:
        reason = f"config.json does not describe a loadable {model_type!r} model ({type(err).__name__}: {err})"
        raise ArtefactError(f"{directory}: {reason}") from err
