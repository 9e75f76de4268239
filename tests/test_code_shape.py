"""The code-shape limits of STYLE.md, enforced: short functions, modules under the ceiling, and prose
that says what code does rather than which ticket asked for it.

Each check lists every offender (``file:line:...``) so one run shows all there is to fix. The
checkers take source text, so the tests at the bottom can show them a known offender.
"""

from __future__ import annotations

import ast
import fnmatch
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
# "issue" + a number, in any case, joined by nothing, " ", "-", "_" or "#"; not after a letter ("tissue").
ISSUE_NUMBER = re.compile(r"(?<![a-z])issues?[-_ ]?#?\d+", re.IGNORECASE)
ISSUE_FILE_NAME = "test_*issue*"


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def long_functions(source: str, name: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``name:line:function:length`` of every function or method over ``limit`` lines.

    Length runs from the ``def`` line to the last line (decorators not counted), as ``ast`` reports it.
    """
    offenders = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                offenders.append(f"{name}:{node.lineno}:{node.name}:{length}")
    return offenders


def _prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment, docstring and test name: the places an issue number would hide."""
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        docstring = ast.get_docstring(node, clean=False)
        if docstring:
            found.append((node.body[0].lineno, docstring))
        if not isinstance(node, ast.Module) and node.name.lower().startswith("test"):
            found.append((node.lineno, node.name))
    return sorted(found)


def issue_mentions(source: str, name: str) -> list[str]:
    """``name:line: match`` for each issue number named in a comment, docstring or test name."""
    return [
        f"{name}:{line}: {match.group(0)!r}"
        for line, text in _prose(source)
        for match in ISSUE_NUMBER.finditer(text)
    ]


def test_no_function_over_the_line_limit():
    offenders = [
        offender
        for path in _python_files("hashbert")
        for offender in long_functions(path.read_text(encoding="utf-8"), _relative(path))
    ]
    assert not offenders, (
        f"functions over {MAX_FUNCTION_LINES} lines (file:line:name:length); split them:\n" + "\n".join(offenders)
    )


def test_no_module_over_the_line_limit():
    lengths = {
        _relative(path): len(path.read_text(encoding="utf-8").splitlines()) for path in _python_files("hashbert")
    }
    offenders = [f"{name}:{length}" for name, length in lengths.items() if length > MAX_MODULE_LINES]
    assert not offenders, (
        f"modules over {MAX_MODULE_LINES} lines (file:length); split them by idea:\n" + "\n".join(offenders)
    )


def test_no_issue_numbers_in_comments_docstrings_or_test_names():
    offenders = [
        offender
        for path in _python_files("hashbert", "tests", "benchmarks")
        for offender in issue_mentions(path.read_text(encoding="utf-8"), _relative(path))
    ]
    assert not offenders, "say what the code does, not which issue asked for it:\n" + "\n".join(offenders)


def test_no_file_named_after_an_issue():
    offenders = [
        _relative(path)
        for folder in ("hashbert", "tests", "benchmarks")
        for path in (ROOT / folder).rglob("*")
        if fnmatch.fnmatch(path.name.lower(), ISSUE_FILE_NAME)
    ]
    assert not offenders, "name test files after what they test:\n" + "\n".join(offenders)


# ---------------------------------------------------------------------------------------------- the checkers


def _function_of(n_lines: int, name: str = "f") -> str:
    """Source of a decorated function exactly ``n_lines`` long from its ``def`` line."""
    return f"@staticmethod\ndef {name}():\n" + "    x = 1\n" * (n_lines - 2) + "    return x\n"


def test_long_functions_flags_61_lines_not_60():
    source = _function_of(60, "fits") + "\n\nclass A:\n" + "".join(
        "    " + line + "\n" for line in _function_of(61, "too_long").splitlines()
    )
    assert long_functions(source, "m.py") == ["m.py:66:too_long:61"]


def test_issue_mentions_finds_comments_docstrings_and_test_names_only():
    source = (
        '"""Fixes Issue-7."""\n'
        "x = 'issue 8 in a plain string is data, not prose'  # see issue #9\n"
        "def test_issue12_regression():\n"
        '    """Tissue 3 and issues in general are fine."""\n'
    )
    assert issue_mentions(source, "m.py") == ["m.py:1: 'Issue-7'", "m.py:2: 'issue #9'", "m.py:3: 'issue12'"]
    assert fnmatch.fnmatch("test_issue42.py", ISSUE_FILE_NAME)
    assert not fnmatch.fnmatch("test_codes.py", ISSUE_FILE_NAME)
