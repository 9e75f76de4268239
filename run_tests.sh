#!/usr/bin/env bash
# The whole test suite: installs what it needs (.venv, hashbert[dev]), lints, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh dev
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
