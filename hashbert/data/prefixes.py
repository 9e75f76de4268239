"""'Full' training expansion: every prefix of a dialogue predicts its next turn; the response pool.

DR-BERT (arXiv 2110.06612, Sec. 3) trains on all prefixes of each dialogue (context = turns
1..i, response = turn i+1) rather than only on the last turn, which is what gives its best numbers.
This is the only implementation of that expansion; the corpus readers call it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from hashbert.data.records import ContextResponse, Dialogue

logger = logging.getLogger(__name__)


def check_max_context_turns(max_context_turns: int | None) -> None:
    """Raise ``ValueError`` unless ``max_context_turns`` is ``None`` or a positive int."""
    if max_context_turns is not None and (isinstance(max_context_turns, bool) or max_context_turns < 1):
        raise ValueError(f"max_context_turns must be None or >= 1, got {max_context_turns!r}")


def expand_prefixes(dialogue: Dialogue, max_context_turns: int | None = None) -> list[ContextResponse]:
    """Turn an n-turn dialogue into its n - 1 (context, next turn) pairs.

    Args:
        dialogue: turns t_0..t_{n-1}, optionally with speakers.
        max_context_turns: keep only the newest this many context turns (``None``: all).

    Returns:
        (n - 1,) pairs; pair i-1 has context t_{max(0, i-m)}..t_{i-1} and response t_i, i = 1..n-1,
        with the speaker fields filled when the dialogue has speakers.

    References:
        DR-BERT (arXiv 2110.06612), Sec. 3, "full" training data.
    """
    check_max_context_turns(max_context_turns)
    return [_pair_at(dialogue, i, max_context_turns) for i in range(1, len(dialogue.turns))]


def last_prefix(dialogue: Dialogue, max_context_turns: int | None = None) -> ContextResponse:
    """The last pair of ``expand_prefixes(dialogue)`` (context = all but the last turn), built alone.

    Args:
        dialogue: at least two turns.
        max_context_turns: keep only the newest this many context turns (``None``: all).
    """
    check_max_context_turns(max_context_turns)
    if len(dialogue.turns) < 2:
        raise ValueError(f"dialogue {dialogue.id!r} has {len(dialogue.turns)} turn(s), a pair needs at least 2")
    return _pair_at(dialogue, len(dialogue.turns) - 1, max_context_turns)


def _pair_at(dialogue: Dialogue, i: int, max_context_turns: int | None) -> ContextResponse:
    """Context = the turns before turn ``i`` (the newest ``max_context_turns``), response = turn ``i``."""
    start = 0 if max_context_turns is None else max(0, i - max_context_turns)
    speakers = dialogue.speakers
    return ContextResponse(
        context=dialogue.turns[start:i],
        response=dialogue.turns[i],
        context_speakers=None if speakers is None else speakers[start:i],
        response_speaker=None if speakers is None else speakers[i],
    )


def response_pool(pairs_or_texts: Iterable[ContextResponse | str]) -> list[str]:
    """The distinct responses, in first-seen order: the full-rank candidate pool.

    Args:
        pairs_or_texts: training pairs (their ``response`` is used) or response texts.

    Returns:
        (n_distinct,) response texts.
    """
    if isinstance(pairs_or_texts, str | bytes | os.PathLike):
        raise ValueError(
            f"response_pool takes an iterable of ContextResponse or str, got {type(pairs_or_texts).__name__}; "
            "to pool a corpus file pass read_training_pairs(path)"
        )
    seen: dict[str, None] = {}
    for item in pairs_or_texts:
        if isinstance(item, ContextResponse):
            seen[item.response] = None
        elif isinstance(item, str):
            seen[item] = None
        else:
            raise ValueError(f"response_pool items must be ContextResponse or str, got {type(item).__name__}")
    return list(seen)
