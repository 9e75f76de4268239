"""Corpora as records: the response-selection file format, the Chit-Chat corpus, prefix expansion.

Pure Python (standard library and tqdm): no torch, no NumPy, so data can be prepared anywhere. The
NumPy helpers ``data.sampling`` (seeded subsamples) and ``data.vector_cache`` (encoder outputs on
disk) are imported by their module paths only, never from here.
"""

from __future__ import annotations

from hashbert.data.chitchat import (
    chitchat_path,
    load_chitchat,
    make_rerank_groups,
    normalise_text,
    prepare_chitchat,
    split_dialogues,
)
from hashbert.data.prefixes import expand_prefixes, last_prefix, response_pool
from hashbert.data.records import ContextResponse, Dialogue, LabelledLine, RerankGroup
from hashbert.data.response_selection import (
    CorpusFormatError,
    ReadReport,
    existing_speakers_path,
    iter_labelled_lines,
    read_rerank_groups,
    read_response_pool,
    read_speakers,
    read_training_pairs,
    speakers_path_for,
    write_response_pool,
    write_response_selection,
    write_speakers,
)

__all__ = [
    "ContextResponse",
    "CorpusFormatError",
    "Dialogue",
    "LabelledLine",
    "ReadReport",
    "RerankGroup",
    "chitchat_path",
    "existing_speakers_path",
    "expand_prefixes",
    "iter_labelled_lines",
    "last_prefix",
    "load_chitchat",
    "make_rerank_groups",
    "normalise_text",
    "prepare_chitchat",
    "read_rerank_groups",
    "read_response_pool",
    "read_speakers",
    "read_training_pairs",
    "response_pool",
    "speakers_path_for",
    "split_dialogues",
    "write_response_pool",
    "write_response_selection",
    "write_speakers",
]
