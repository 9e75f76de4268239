"""Imports flow one way: data -> models -> losses -> training; evaluation and index never import training."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hashbert"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


FORBIDDEN = {
    "data": ("hashbert.models", "hashbert.losses", "hashbert.training", "hashbert.evaluation", "hashbert.serving"),
    "models": ("hashbert.training", "hashbert.evaluation", "hashbert.serving"),
    "losses": ("hashbert.training", "hashbert.evaluation", "hashbert.serving"),
    "evaluation": ("hashbert.training", "hashbert.serving"),
    "index": ("hashbert.models", "hashbert.training", "hashbert.evaluation", "hashbert.serving", "torch"),
}


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_flow_one_way(folder):
    for path in sorted((PACKAGE / folder).glob("*.py")):
        for module in _imported_modules(path):
            for banned in FORBIDDEN[folder]:
                assert not (module == banned or module.startswith(banned + ".")), f"{path.name} imports {module}"


def test_nothing_imports_cli():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "cli.py":
            assert "hashbert.cli" not in _imported_modules(path), path


def test_data_codes_and_index_import_without_torch():
    code = "import sys, hashbert.data, hashbert.codes, hashbert.index, hashbert.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
