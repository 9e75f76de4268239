#!/usr/bin/env bash
# Create .venv (once) and install hashbert with its pinned dependencies from pyproject.toml.
# Re-installs only when pyproject.toml changed. torch==2.13.0 resolves to the CPU wheel on this disk.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
stamp=".venv/.installed${extras:+-$extras}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing hashbert${extras:+[$extras]} into .venv (first run: a few minutes) ..."
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import hashbert, torch, faiss, transformers" # fail loudly if the install did not work
  echo "$want" > "$stamp"
fi
