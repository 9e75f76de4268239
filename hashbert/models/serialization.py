"""How every hashbert model directory is laid out, written and verified.

Layout: ``config.json`` (``type``, hashbert version, the model's config dataclass), ``model.safetensors``
(weights; never pickles), ``backbone/`` (the transformer's Hugging Face config and tokenizer, so the
directory loads without the original model package) and ``checksums.json`` over all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from safetensors.torch import load_model, save_model
from torch import nn

from hashbert import __version__
from hashbert.config import config_from_dict
from hashbert.io import ArtefactError, atomic_directory, read_json, verify_checksums, write_checksums, write_json

logger = logging.getLogger(__name__)

BACKBONE_DIR = "backbone"


def save_model_dir(
    directory: str | Path, model_type: str, config: dict[str, Any], module: nn.Module, tokenizer=None, backbone=None
) -> Path:
    """Write ``module`` and its config as a self-describing directory, atomically.

    Args:
        model_type: registry name (``"dual_encoder"``, ...), checked again on load.
        config: the model's config as a plain dict.
        tokenizer, backbone: saved under ``backbone/`` (config and tokenizer files, no weights).
    """
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        write_json(tmp / "config.json", {"type": model_type, "hashbert_version": __version__, "config": config})
        save_model(module, str(tmp / "model.safetensors"))
        if backbone is not None:
            backbone.config.save_pretrained(str(tmp / BACKBONE_DIR))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp / BACKBONE_DIR))
        names = [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()]
        write_checksums(tmp, names)
    logger.info("saved %s to %s", model_type, directory)
    return directory


def read_model_config(directory: str | Path, expected_type: str | None = None) -> dict[str, Any]:
    """Verify the checksums of a model directory and return its ``config`` dict."""
    directory = _model_dir(directory)
    verify_checksums(directory)
    header = read_json(directory / "config.json")
    if expected_type is not None and header.get("type") != expected_type:
        raise ArtefactError(f"{directory}: holds a {header.get('type')!r} model, expected {expected_type!r}")
    return header["config"]


def _model_dir(directory: str | Path) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtefactError(f"{directory}: not a model directory")
    return directory


def model_type_of(directory: str | Path) -> str:
    """The ``type`` recorded in a model directory's config.json."""
    return str(read_json(_model_dir(directory) / "config.json").get("type"))


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def load_backbone_model(
    directory: str | Path, model_type: str, config_type: type, build: Callable[[Any, Path], ModuleT],
    saved_before: dict[str, Any] | None = None,
) -> ModuleT:
    """The load path of every model saved with a ``backbone/``: verify the checksums, read the typed config,
    ``build(config, backbone_dir)`` the module (architecture and tokenizer only, no pretrained weights read),
    load its saved weights strictly; returned in eval mode.

    ``saved_before`` gives the values that fields missing from an older saved config had then (a field's
    default may have changed since), so old artefacts load as they were trained.
    """
    config = config_from_dict(config_type, {**(saved_before or {}), **read_model_config(directory, model_type)})
    model = build(config, Path(directory) / BACKBONE_DIR)
    load_weights(model, directory)
    return model.eval()


def load_weights(module: nn.Module, directory: str | Path) -> None:
    """Load ``model.safetensors`` into ``module``, strictly (every tensor must match)."""
    try:
        load_model(module, str(Path(directory) / "model.safetensors"), strict=True)
    except (RuntimeError, ValueError, OSError) as err:
        raise ArtefactError(f"{directory}: weights do not fit the model ({err})") from err
