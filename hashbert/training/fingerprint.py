"""What a run's result depends on, recorded in each checkpoint so that a resume can refuse a change.

A resume continues the weights, optimiser, schedule, RNG and data order of the run that wrote the
checkpoint. With another corpus, subsample, model or loss setting the result would match neither run,
and ``run.json`` would record only the new settings; so a resume compares the fingerprint key by key
(nested dicts flattened to dotted keys such as ``model.encoder.max_context_length``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hashbert.config import DataConfig, config_to_dict
from hashbert.io import CHECKSUM_FILE, artefact_fingerprint, sha256_file

FILES = "files"


def run_fingerprint(
    data: DataConfig, inputs: Mapping[str, str | Path] | None = None, **configs: Any
) -> dict[str, Any]:
    """The JSON-able settings and inputs of a recipe's run, for ``Trainer(fingerprint=...)``.

    Args:
        data: the corpus settings; the SHA-256 of ``data.train`` and ``data.valid`` (when given) is included.
        inputs: name -> path of each other input the run reads (a trained model to start from, a speakers
            file); empty paths are left out. A directory counts by its ``checksums.json``.
        **configs: name -> config dataclass (``config_to_dict``) or JSON-able dict: the recipe's model and
            loss settings.

    Returns:
        ``{"files": {name: sha256}, "data": {...}, name: config dict, ...}``.
    """
    files = {"train": data.train, "valid": data.valid, **(inputs or {})}
    digests = {name: content_digest(path) for name, path in files.items() if path}
    return {FILES: digests, "data": config_to_dict(data), **{name: _as_dict(value) for name, value in configs.items()}}


def _as_dict(config: Any) -> Any:
    return config_to_dict(config) if dataclasses.is_dataclass(config) else config


def content_digest(path: str | Path) -> str:
    """SHA-256 of a file; of a directory's ``checksums.json``, or else of its files' names and digests."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    if (path / CHECKSUM_FILE).is_file():
        return artefact_fingerprint(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    listing = {str(p.relative_to(path)): sha256_file(p) for p in files}
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and other values are kept whole."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def compare_settings(
    saved: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[list[tuple[str, Any, Any]], list[str]]:
    """Changed settings between a checkpoint's fingerprint and this run's.

    ``current`` goes through JSON first (tuples become lists, as they are in the saved one).

    Returns:
        ``[(key, saved value, current value)]`` for each key both record with different values, and the
        keys that only one side records (a setting added or dropped by another hashbert version).
    """
    old, new = flatten(saved), flatten(json.loads(json.dumps(current)))
    changed = [(key, old[key], new[key]) for key in sorted(old.keys() & new.keys()) if old[key] != new[key]]
    return changed, sorted(old.keys() ^ new.keys())


def describe_changes(changed: list[tuple[str, Any, Any]]) -> str:
    """``key: old -> new, ...`` (file digests shortened to 12 hex digits)."""

    def shown(key: str, value: Any) -> str:
        if key.startswith(f"{FILES}.") and isinstance(value, str):
            return f"sha256 {value[:12]}"
        return repr(value)

    return ", ".join(f"{key}: {shown(key, old)} -> {shown(key, new)}" for key, old, new in changed)
