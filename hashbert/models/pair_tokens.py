"""One input sequence per (context, response): ``[CLS] turn_1 [SEP] ... turn_n [SEP] response [SEP]``.

Shared by the cross-encoders (BERT, SA-BERT), BERT-FP post-training and the causal-LM judge. The
response keeps its first ``max_response_length`` tokens (truncated from the right); the context gets
the rest of ``max_length`` and keeps its newest tokens (truncated from the left), as ``TextBatcher``
does for the dual-encoder. Every token carries the speaker (0/1) of the utterance it belongs to: a
turn's closing [SEP] is that turn's, [CLS] is the first kept turn's, the response's tokens and the
final [SEP] are the response speaker's.

References: SPEC "Models" (BERT, SA-BERT); Gu et al. 2020 (SA-BERT) sec. 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def alternating_speakers(n_context: int) -> tuple[tuple[int, ...], int]:
    """Speakers when the corpus records none: 0, 1, 0, ... from the first utterance; the response takes the next.

    Returns: ((n_context,) context speakers, response speaker).
    """
    return tuple(i % 2 for i in range(n_context)), n_context % 2


def pair_speakers(n_context: int, context_speakers: Sequence[int] | None, response_speaker: int | None):
    """Context and response speakers: recorded ones where given, else alternation (see ``alternating_speakers``).

    A recorded context without a recorded response speaker gives the response to the other speaker
    of the last turn (the response is the next turn).
    """
    if context_speakers is None:
        return alternating_speakers(n_context)
    if response_speaker is None:
        response_speaker = 1 - context_speakers[-1] if context_speakers else 0
    return tuple(context_speakers), response_speaker


def longest_first(contexts: Sequence[Sequence[str]], responses: Sequence[str]) -> list[int]:
    """Pair indices, longest (in characters) first: batches cut from this order hold pairs of similar
    length, so less of each batch is padding. Callers put the results back in the input order."""
    return sorted(range(len(contexts)), key=lambda i: -(sum(map(len, contexts[i])) + len(responses[i])))


@dataclass(frozen=True)
class PairTokenizer:
    """Builds the padded tensors of ``[CLS] context [SEP] response [SEP]`` sequences.

    Args:
        tokenizer: a BERT-family fast tokenizer (has ``cls_token_id``, ``sep_token_id``, ``pad_token_id``).
        max_length: total tokens per sequence, special tokens included.
        max_response_length: response tokens kept (from the start).
        max_context_turns: newest context turns kept (0 keeps all).
    """

    tokenizer: object
    max_length: int
    max_response_length: int
    max_context_turns: int = 0

    def _special(self, first: str, fallback: str) -> int:
        # A causal-LM tokenizer (GPT-2's) has no [CLS]/[SEP]: its end-of-text token takes their place.
        value = getattr(self.tokenizer, first, None)
        value = getattr(self.tokenizer, fallback, None) if value is None else value
        if value is None:
            raise ValueError(f"tokenizer has neither {first} nor {fallback}")
        return int(value)

    def _ids(self, texts: Sequence[str]) -> dict[str, list[int]]:
        unique = list(dict.fromkeys(texts))
        # Whole turns are tokenised untruncated (``sequence`` cuts them), so the length warning is noise.
        ids = self.tokenizer(unique, add_special_tokens=False, verbose=False)["input_ids"]
        return dict(zip(unique, ids, strict=True))

    def sequence(
        self, turns: Sequence[str], response: str, speakers: Sequence[int], response_speaker: int,
        ids: dict[str, list[int]] | None = None,
    ) -> tuple[list[int], list[int], list[int]]:
        """One example: (token ids, token type ids, speaker ids), each of length <= ``max_length``.

        Token type is 0 for [CLS] and the context, 1 for the response and its [SEP] (BERT's sentence B).
        """
        ids = ids if ids is not None else self._ids([*turns, response])
        keep = self.max_context_turns
        start = max(0, len(turns) - keep) if keep else 0
        sep, cls = self._special("sep_token_id", "eos_token_id"), self._special("cls_token_id", "bos_token_id")
        response_ids = ids[response][: self.max_response_length] + [sep]
        context_ids: list[int] = []
        context_speakers: list[int] = []
        for turn, speaker in zip(turns[start:], speakers[start:], strict=True):
            piece = ids[turn] + [sep]
            context_ids += piece
            context_speakers += [speaker] * len(piece)
        budget = max(self.max_length - 1 - len(response_ids), 0)  # 1 for [CLS]
        cut = max(len(context_ids) - budget, 0)  # the context loses its oldest tokens
        context_ids, context_speakers = context_ids[cut:], context_speakers[cut:]
        first_speaker = context_speakers[0] if context_speakers else response_speaker
        input_ids = [cls, *context_ids, *response_ids]
        token_types = [0] * (1 + len(context_ids)) + [1] * len(response_ids)
        speaker_ids = [first_speaker, *context_speakers] + [response_speaker] * len(response_ids)
        return input_ids, token_types, speaker_ids

    def batch(
        self, contexts: Sequence[Sequence[str]], responses: Sequence[str],
        context_speakers: Sequence[Sequence[int] | None] | None = None,
        response_speakers: Sequence[int | None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """(B, T) ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``speaker_ids``, right-padded.

        Args:
            contexts: (B,) contexts, each a sequence of turns (oldest first).
            responses: (B,) responses.
            context_speakers, response_speakers: recorded speakers per example (None entries: alternation).
        """
        n = len(contexts)
        if len(responses) != n:
            raise ValueError(f"{n} contexts but {len(responses)} responses")
        context_speakers = context_speakers or [None] * n
        response_speakers = response_speakers or [None] * n
        ids = self._ids([t for c in contexts for t in c] + list(responses))
        rows = [
            self.sequence(c, r, *pair_speakers(len(c), cs, rs), ids=ids)
            for c, r, cs, rs in zip(contexts, responses, context_speakers, response_speakers, strict=True)
        ]
        width = max(len(row[0]) for row in rows)
        names = ("input_ids", "attention_mask", "token_type_ids", "speaker_ids")
        out = {name: torch.zeros((n, width), dtype=torch.long) for name in names}
        out["input_ids"].fill_(self.tokenizer.pad_token_id or 0)
        for i, (input_ids, token_types, speakers) in enumerate(rows):
            length = len(input_ids)
            out["input_ids"][i, :length] = torch.tensor(input_ids)
            out["attention_mask"][i, :length] = 1
            out["token_type_ids"][i, :length] = torch.tensor(token_types)
            out["speaker_ids"][i, :length] = torch.tensor(speakers)
        return out
