"""The record types every data reader returns: dialogues, training pairs, re-rank groups, file lines.

All are frozen dataclasses holding tuples, so they are hashable (de-duplication uses that) and
cannot be changed behind a reader's back. Lists passed in are turned into tuples; inconsistent
lengths raise ``ValueError``. Speakers are 0/1: the sender of a dialogue's first turn is 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


def _freeze(record: object, name: str) -> None:
    """Replace the (possibly list) attribute ``name`` of a frozen dataclass by a tuple."""
    value = getattr(record, name)
    if value is not None and not isinstance(value, tuple):
        object.__setattr__(record, name, tuple(value))


def _check_binary(values: Sequence[int] | None, what: str) -> None:
    """Raise ``ValueError`` unless every value is 0 or 1 (``None`` passes)."""
    if values is not None and any(value not in (0, 1) for value in values):
        raise ValueError(f"{what} must be 0 or 1, got {tuple(values)}")


def _check_length(values: Sequence[int] | None, expected: int, what: str) -> None:
    """Raise ``ValueError`` if ``values`` is given and does not have ``expected`` entries."""
    if values is not None and len(values) != expected:
        raise ValueError(f"{what} has {len(values)} entries, expected {expected}")


@dataclass(frozen=True)
class Dialogue:
    """One conversation: its turns in order and, where known, who said each.

    Args:
        id: conversation id (unique within a corpus).
        turns: (n_turns,) the utterances, one sender's consecutive messages joined into one turn.
        speakers: (n_turns,) 0/1 sender of each turn, or ``None`` if unknown.
    """

    id: str
    turns: tuple[str, ...]
    speakers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _freeze(self, "turns")
        _freeze(self, "speakers")
        _check_length(self.speakers, len(self.turns), f"speakers of dialogue {self.id!r}")
        _check_binary(self.speakers, f"speakers of dialogue {self.id!r}")


@dataclass(frozen=True)
class ContextResponse:
    """A training pair: the context turns and the response that followed them.

    Args:
        context: (n_context,) context turns, oldest first.
        response: the true next turn.
        context_speakers: (n_context,) 0/1 sender of each context turn, or ``None``.
        response_speaker: 0/1 sender of the response, or ``None``.
    """

    context: tuple[str, ...]
    response: str
    context_speakers: tuple[int, ...] | None = None
    response_speaker: int | None = None

    def __post_init__(self) -> None:
        _freeze(self, "context")
        _freeze(self, "context_speakers")
        _check_length(self.context_speakers, len(self.context), "context_speakers")
        _check_binary(self.context_speakers, "context_speakers")
        _check_binary(None if self.response_speaker is None else (self.response_speaker,), "response_speaker")


@dataclass(frozen=True)
class RerankGroup:
    """One test context with its candidates (10 in the standard protocol) and their 0/1 labels.

    Args:
        context: (n_context,) context turns, oldest first.
        candidates: (n_candidates,) candidate responses in file order.
        labels: (n_candidates,) 1 for a true response, 0 otherwise; a group may have none.
        line_no: 1-based line of the group's first candidate in its file.
        speakers: (n_context,) 0/1 sender of each context turn, or ``None`` if unknown.
    """

    context: tuple[str, ...]
    candidates: tuple[str, ...]
    labels: tuple[int, ...]
    line_no: int
    speakers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("context", "candidates", "labels", "speakers"):
            _freeze(self, name)
        _check_length(self.labels, len(self.candidates), "labels")
        _check_binary(self.labels, "labels")
        _check_length(self.speakers, len(self.context), "speakers")
        _check_binary(self.speakers, "speakers")

    @property
    def n_positives(self) -> int:
        """Number of candidates labelled 1."""
        return sum(self.labels)


@dataclass(frozen=True)
class LabelledLine:
    """One parsed line of a response-selection file (``label \\t utt_1 ... utt_n \\t response``).

    Args:
        label: 1 or 0.
        context: (n_context,) the utterances before the response, n_context >= 1.
        response: the candidate response.
        line_no: 1-based line number in the file.
    """

    label: int
    context: tuple[str, ...]
    response: str
    line_no: int

    def __post_init__(self) -> None:
        _freeze(self, "context")
        _check_binary((self.label,), "label")
