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

from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from hashbert import __version__
from hashbert.config import config_from_dict
from hashbert.io import (
    CHECKSUM_FILE,
    ArtefactError,
    atomic_directory,
    read_json,
    resolve_artefact,
    verify_checksums,
    write_checksums,
    write_json,
)
from hashbert.models.encoder import check_tokenizer_fits

logger = logging.getLogger(__name__)

BACKBONE_DIR = "backbone"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# A checksum listing without these (emptied, or cut short) would otherwise switch verification off.
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE)


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
    with atomic_directory(directory, kind=model_type) as tmp:
        write_json(tmp / CONFIG_FILE, {"type": model_type, "hashbert_version": __version__, "config": config})
        save_model(module, str(tmp / WEIGHTS_FILE))
        if backbone is not None:
            backbone.config.save_pretrained(str(tmp / BACKBONE_DIR))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp / BACKBONE_DIR))
        names = [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()]
        write_checksums(tmp, names)
    logger.info("saved %s to %s", model_type, directory)
    return directory


def read_model_config(directory: str | Path, expected_type: str | None = None) -> dict[str, Any]:
    """Verify the checksums of a model directory and return its ``config`` dict (``ArtefactError`` otherwise)."""
    return read_model_header(directory, expected_type)[1]["config"]


def read_model_header(
    directory: str | Path, expected_type: str | None = None, verify: bool = True
) -> tuple[Path, dict[str, Any]]:
    """Checksums (config and weights required to be listed) verified, then config.json checked for shape.

    Args:
        directory: the model directory, as the user gave it (errors name it).
        expected_type: refuse a directory that holds another ``type`` of model.
        verify: ``False`` only to read the ``type`` cheaply; a malformed header is then verified anyway,
            since a damaged file explains it better than "wrong shape" does.

    Returns:
        ``(root, header)``: ``root`` is the saved version to read every other file from (one version even
        if a save replaces the directory meanwhile); ``header`` has a str ``type`` and a dict ``config``.
    """
    shown = _model_dir(directory)
    root = verify_checksums(shown, required=REQUIRED_FILES) if verify else resolve_artefact(shown)
    try:
        header = _checked_header(read_json(root / CONFIG_FILE, shown / CONFIG_FILE), shown / CONFIG_FILE)
    except ArtefactError:
        if not verify:
            verify_checksums(shown, required=REQUIRED_FILES)
        raise
    if expected_type is not None and header["type"] != expected_type:
        raise ArtefactError(f"{shown}: holds a {header['type']!r} model, expected {expected_type!r}")
    return root, header


def _checked_header(header: Any, where: Path) -> dict[str, Any]:
    """``header`` if it is ``{"type": str, "config": dict, ...}``; JSON of another shape is an ``ArtefactError``."""
    if not isinstance(header, dict):
        expected = 'expected a JSON object with "type" and "config"'
        raise ArtefactError(f"{where}: {expected}, got {type(header).__name__}")
    if not isinstance(header.get("type"), str):
        raise ArtefactError(f"{where}: \"type\" must be a model type string, got {header.get('type')!r:.60}")
    if not isinstance(header.get("config"), dict):
        raise ArtefactError(f"{where}: \"config\" must be a JSON object, got {header.get('config')!r:.60}")
    return header


def _model_dir(directory: str | Path) -> Path:
    """``directory`` as a Path if it can be a model directory; a run directory names the model inside it.

    Why: ``--model runs/x`` (the run, not ``runs/x/model``) is the common slip; "file not found" on
    ``runs/x/checksums.json`` would not say what to type instead.
    """
    directory = Path(directory)
    if not directory.is_dir():
        reason = "not a model directory" if directory.exists() else "no such model directory"
        raise ArtefactError(f"{directory}: {reason}")
    if (directory / CONFIG_FILE).is_file() or (directory / CHECKSUM_FILE).is_file():
        return directory
    inside = sorted(d for d in directory.iterdir() if (d / CONFIG_FILE).is_file() and (d / CHECKSUM_FILE).is_file())
    if len(inside) == 1:
        raise ArtefactError(f"{directory}: not a model directory; did you mean {inside[0]}?")
    if inside:
        raise ArtefactError(f"{directory}: not a model directory; did you mean one of {[str(d) for d in inside]}?")
    raise ArtefactError(f"{directory}: not a model directory (no {CONFIG_FILE})")


def model_type_of(directory: str | Path) -> str:
    """The ``type`` recorded in a model directory's config.json (checksums verified only if it is malformed)."""
    return read_model_header(directory, verify=False)[1]["type"]


def read_typed_config(
    directory: str | Path, model_type: str, config_type: type, saved_before: dict[str, Any] | None = None
) -> tuple[Path, Any]:
    """``(root, config)``: the verified saved version and its config built as ``config_type``.

    A config that does not fit its dataclass (an unknown key, a missing or wrongly typed field) is an
    ``ArtefactError`` naming the file, whatever ``config_from_dict`` raised for it.
    """
    root, header = read_model_header(directory, model_type)
    try:
        return root, config_from_dict(config_type, {**(saved_before or {}), **header["config"]})
    except (ValueError, TypeError, KeyError) as err:
        where = Path(directory) / CONFIG_FILE
        reason = f"config does not fit {config_type.__name__} ({type(err).__name__}: {err})"
        raise ArtefactError(f"{where}: {reason}") from err


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def load_backbone_model(
    directory: str | Path, model_type: str, config_type: type, build: Callable[[Any, Path], ModuleT],
    saved_before: dict[str, Any] | None = None,
) -> ModuleT:
    """The load path of every model saved with a ``backbone/``: verify the checksums, read the typed config,
    ``build(config, backbone_dir)`` the module (architecture and tokenizer only, no pretrained weights read),
    check the tokenizer fits the embedding, load its saved weights strictly; returned in eval mode.

    ``saved_before`` gives the values that fields missing from an older saved config had then (a field's
    default may have changed since), so old artefacts load as they were trained. Every file is read from
    one saved version (``root``); errors name ``directory`` as given.
    """
    root, config = read_typed_config(directory, model_type, config_type, saved_before)
    model = _build_from_files(build, config, root / BACKBONE_DIR, Path(directory) / BACKBONE_DIR)
    _check_tokenizer_fits(model, Path(directory))
    load_weights(model, root, shown=directory)
    return model.eval()


def _build_from_files(build: Callable[[Any, Path], ModuleT], config: Any, backbone_dir: Path, shown: Path) -> ModuleT:
    """``build(config, backbone_dir)``, any failure of it reported as an ``ArtefactError`` naming ``shown``.

    Why the broad ``except``: the build reads only the artefact's own files, and Hugging Face reports
    a bad one as ``OSError``, ``ValueError``, ``KeyError`` or, from ``tokenizers``, a bare ``Exception``.
    A missing package stays an ``ImportError``, and an ``ArtefactError`` of the build stays as it is.
    """
    try:
        return build(config, backbone_dir)
    except (ImportError, ArtefactError):
        raise
    except Exception as err:
        raise ArtefactError(f"{shown}: cannot build the model from its files ({type(err).__name__}: {err})") from err


def _check_tokenizer_fits(model: nn.Module, directory: Path) -> None:
    """Refuse a model whose tokenizer can emit ids past the rows of one of its transformers' embeddings."""
    from transformers import PreTrainedModel

    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            check_tokenizer_fits(tokenizer, module, directory)


def load_weights(module: nn.Module, directory: str | Path, shown: str | Path | None = None) -> None:
    """Load ``model.safetensors`` of ``directory`` into ``module``, strictly (every tensor must match).

    Any reading failure is an ``ArtefactError`` naming ``shown`` (default ``directory``): ``safetensors``
    raises its own ``SafetensorError`` (not an ``OSError``) for a file that is not safetensors at all,
    e.g. a pickle saved under that name.
    """
    shown = Path(directory if shown is None else shown)
    try:
        load_model(module, str(Path(directory) / WEIGHTS_FILE), strict=True)
    except SafetensorError as err:
        raise ArtefactError(f"{shown / WEIGHTS_FILE}: not a readable safetensors file ({err})") from err
    except (RuntimeError, ValueError, OSError) as err:
        raise ArtefactError(f"{shown}: weights do not fit the model ({err})") from err
