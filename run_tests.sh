#!/usr/bin/env bash
# The whole test suite: installs what it needs (.venv, hashbert[dev]), lints, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh dev
# The web demo's test drives Debian's chromium; install it once where we may (root) and it is missing.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 ||
    echo "could not install chromium: the web demo test will be skipped" >&2
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
