"""Imports flow one way: data -> models -> losses -> training; evaluation and index never import training.

Every module of every subpackage is checked (``rglob``), and every import counts: top-level, inside a
function (lazy) or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hashbert"


def _module_name(path: Path, package_dir: Path = PACKAGE) -> str:
    """``hashbert/models/hdr/model.py`` -> ``hashbert.models.hdr.model`` (a package's ``__init__`` -> the package)."""
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, package_dir: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports; ``from a import b`` gives ``a`` and ``a.b`` (b may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path, package_dir).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: drop level - 1 packages from the file's own package
                base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _imports(path: Path, banned: str) -> bool:
    return any(module == banned or module.startswith(banned + ".") for module in _imported_modules(path))


def _files(folder: str) -> list[Path]:
    """Every module of ``hashbert/<folder>``, subpackages included."""
    return sorted((PACKAGE / folder).rglob("*.py"))


FORBIDDEN = {
    "data": ("hashbert.models", "hashbert.losses", "hashbert.training", "hashbert.evaluation", "hashbert.serving"),
    "models": ("hashbert.training", "hashbert.evaluation", "hashbert.serving"),
    "losses": ("hashbert.training", "hashbert.evaluation", "hashbert.serving"),
    "evaluation": ("hashbert.training", "hashbert.serving"),
    "index": ("hashbert.models", "hashbert.training", "hashbert.evaluation", "hashbert.serving", "torch"),
}


def test_the_walk_reaches_subpackages():
    names = {_module_name(path) for path in _files("models")}
    assert {"hashbert.models.hdr.model", "hashbert.models.hashing.head", "hashbert.models.cross"} <= names


def test_relative_and_from_imports_are_resolved(tmp_path):
    path = tmp_path / "hashbert" / "models" / "hdr" / "model.py"
    path.parent.mkdir(parents=True)
    path.write_text("from . import cache\nfrom ..hashing.lsh import ITQ\nfrom hashbert import cli\n", encoding="utf-8")
    modules = _imported_modules(path, tmp_path / "hashbert")
    assert {"hashbert.models.hdr.cache", "hashbert.models.hashing.lsh", "hashbert.cli"} <= modules


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_flow_one_way(folder):
    for path in _files(folder):
        for banned in FORBIDDEN[folder]:
            assert not _imports(path, banned), f"{path.relative_to(PACKAGE)} imports {banned}"


def test_models_never_import_training():
    offenders = [str(path.relative_to(PACKAGE)) for path in _files("models") if _imports(path, "hashbert.training")]
    assert not offenders


def test_nothing_imports_cli():
    paths = [path for path in PACKAGE.rglob("*.py") if path.name != "cli.py"]
    assert not [str(path.relative_to(PACKAGE)) for path in paths if _imports(path, "hashbert.cli")]


def test_hdr_model_does_not_import_its_cache():
    """The cache is built from the model (``HdrCache(model)``), never the other way round, not even lazily."""
    path = PACKAGE / "models" / "hdr" / "model.py"
    assert not _imports(path, "hashbert.models.hdr.cache")
    strings = [n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Constant)]
    assert not any(isinstance(s, str) and s.startswith("hashbert.models.hdr.cache") for s in strings)


def test_data_codes_and_index_import_without_torch():
    modules = "hashbert.data, hashbert.codes, hashbert.index, hashbert.config"
    code = f"import sys, {modules}; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vector_cache_imports_without_torch():
    code = "import sys, hashbert.data.vector_cache, hashbert.data.sampling; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
