"""hashbert.codes and hashbert.index must import without torch (a search process may not have it)."""

from __future__ import annotations

import subprocess
import sys


def test_index_and_codes_do_not_import_torch():
    code = (
        "import sys, hashbert.index, hashbert.codes\n"
        "import hashbert.index.base, hashbert.index.binary, hashbert.index.dense\n"
        "import hashbert.index.reference, hashbert.index.two_stage\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reference_index_needs_no_faiss():
    code = (
        "import sys\n"
        "from hashbert.index import NumpyBinaryIndex, TwoStageSearcher\n"
        "assert 'faiss' not in sys.modules, 'faiss was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
