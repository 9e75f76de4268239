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
# The tests' Milvus server (the milvus package: a Milvus 2.3 standalone binary) gets an environment of its own, so
# its pins never hold back .venv; its binaries are unpacked once (scripts/milvus_server.py).
server_pin="milvus==2.3.5"
if [ "$extras" = dev ] && [ "$(cat .venv-milvus/.installed 2>/dev/null)" != "$server_pin" ]; then
  echo "installing the Milvus test server ($server_pin) into .venv-milvus ..."
  python3 -m venv .venv-milvus
  .venv-milvus/bin/python -m pip install --quiet "$server_pin" 2>&1 | grep -v "is ignored" || true
  .venv-milvus/bin/python scripts/milvus_server.py --unpack
  echo "$server_pin" > .venv-milvus/.installed
fi
