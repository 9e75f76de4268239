"""The embedded default corpus: Chit-Chat (``pip install chitchat-dataset``) as dialogues and files.

The package ships ``chitchat_dataset/dataset.json``: conversation id -> {"messages": [[{"text",
"timestamp", "sender"}, ...], ...], ...}, each inner list a run of one sender's messages. We read
it in place (never copied into the repo), join each sender's consecutive messages into one turn,
split by conversation, and write the standard response-selection files with ``prepare_chitchat``.
Because consecutive same-sender messages are merged, the speakers of a loaded dialogue alternate
0, 1, 0, ... from the first turn.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hashbert.data.prefixes import check_max_context_turns, expand_prefixes, response_pool
from hashbert.data.records import Dialogue, RerankGroup
from hashbert.data.response_selection import (
    speakers_path_for,
    write_response_pool,
    write_response_selection,
    write_speakers,
)
from hashbert.io import sha256_file, write_json

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)
SPLITS = ("train", "valid", "test")
_WHITESPACE = re.compile(r"\s+")


def chitchat_path() -> Path:
    """Where ``pip install chitchat-dataset`` put ``dataset.json``."""
    try:
        return Path(str(importlib.resources.files("chitchat_dataset") / "dataset.json"))
    except ModuleNotFoundError:
        raise ImportError(
            "the default corpus needs the chitchat-dataset package: pip install chitchat-dataset"
        ) from None


def normalise_text(text: str) -> str:
    """Turn every whitespace run (tabs, newlines, CR included) into one space and strip the ends."""
    return _WHITESPACE.sub(" ", text).strip()


def _read_source(path: Path) -> dict[str, Any]:
    """Parse the corpus JSON, turning a missing or malformed file into ``ValueError``."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        raw = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of conversations, got {type(raw).__name__}")
    return raw


def _to_dialogue(conversation_id: str, conversation: dict[str, Any]) -> Dialogue | None:
    """Merge each sender's consecutive non-empty messages into a turn; ``None`` if under 2 turns."""
    turns: list[list[str]] = []
    senders: list[str] = []
    for group in conversation["messages"]:
        for message in group:
            text = normalise_text(message["text"])
            if not text:
                continue
            if senders and senders[-1] == message["sender"]:
                turns[-1].append(text)
            else:
                turns.append([text])
                senders.append(message["sender"])
    if len(turns) < 2:
        return None
    speaker_of = {sender: index for index, sender in enumerate(dict.fromkeys(senders))}
    if len(speaker_of) > 2:
        raise ValueError(f"conversation {conversation_id!r} has {len(speaker_of)} senders, expected at most 2")
    return Dialogue(conversation_id, tuple(" ".join(parts) for parts in turns), tuple(speaker_of[s] for s in senders))


def _check_max_dialogues(max_dialogues: int | None) -> None:
    if max_dialogues is not None and (isinstance(max_dialogues, bool) or max_dialogues < 1):
        raise ValueError(f"max_dialogues must be None or >= 1, got {max_dialogues!r}")


def _dialogues_from_raw(raw: dict[str, Any], path: Path, max_dialogues: int | None) -> list[Dialogue]:
    """Dialogues of at least 2 turns in sorted-id order, the first ``max_dialogues`` of them."""
    dialogues = []
    for conversation_id in sorted(raw):
        try:
            dialogue = _to_dialogue(conversation_id, raw[conversation_id])
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: conversation {conversation_id!r} is malformed ({err!r})") from None
        if dialogue is not None:
            dialogues.append(dialogue)
            if len(dialogues) == max_dialogues:
                break
    logger.info("%s: %d dialogues of >= 2 turns from %d conversations", path, len(dialogues), len(raw))
    return dialogues


def load_chitchat(path: str | Path | None = None, max_dialogues: int | None = None) -> list[Dialogue]:
    """Load Chit-Chat as dialogues with 0/1 speakers (full corpus: 4,017 dialogues, 135,574 turns).

    Args:
        path: a ``dataset.json``; ``None`` uses the installed package's.
        max_dialogues: keep only the first this many dialogues (by sorted id): deterministic slices.

    Returns:
        Dialogues sorted by conversation id. Conversations with fewer than 2 turns after joining
        (one sender only, or empty messages) are dropped.
    """
    _check_max_dialogues(max_dialogues)
    source = chitchat_path() if path is None else Path(path)
    return _dialogues_from_raw(_read_source(source), source, max_dialogues)


def split_dialogues(
    dialogues: Sequence[Dialogue], seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> tuple[list[Dialogue], list[Dialogue], list[Dialogue]]:
    """Split by conversation into train/valid/test with a seeded shuffle; no dialogue is cut.

    Args:
        dialogues: with unique ids.
        seed: shuffle seed.
        fractions: (train, valid, test), non-negative, summing to 1; valid and test sizes are
            ``round(n * fraction)``, train takes the rest.

    Returns:
        (train, valid, test), each keeping the input order.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {tuple(fractions)}")
    ids = [dialogue.id for dialogue in dialogues]
    if len(set(ids)) != len(ids):
        raise ValueError("dialogue ids must be unique to split by conversation")
    order = list(range(len(dialogues)))
    random.Random(seed).shuffle(order)
    n_valid = round(len(order) * fractions[1])
    n_test = min(round(len(order) * fractions[2]), len(order) - n_valid)
    split_of = dict.fromkeys(order[:n_valid], 1) | dict.fromkeys(order[n_valid : n_valid + n_test], 2)
    parts: tuple[list[Dialogue], list[Dialogue], list[Dialogue]] = ([], [], [])
    for index, dialogue in enumerate(dialogues):
        parts[split_of.get(index, 0)].append(dialogue)
    return parts


def _draw_distinct(
    rng: random.Random,
    texts: Sequence[str],
    owners: Sequence[int] | None,
    owner: int,
    positive: str,
    chosen: dict[str, None],
    k: int,
) -> None:
    """Add up to ``k`` new distinct texts to ``chosen``, skipping ``positive`` and turns of dialogue ``owner``.

    Rejection-samples positions uniformly (so frequent turns are drawn more often, as in the corpus);
    falls back to one exhaustive, sorted (hence seed-determined) draw when that stalls on a tiny pool.
    """
    target = len(chosen) + k

    def eligible(j: int) -> bool:
        return (owners is None or owners[j] != owner) and texts[j] != positive

    for _ in range(20 * k + 100 if texts else 0):
        if len(chosen) == target:
            return
        j = rng.randrange(len(texts))
        if eligible(j):
            chosen[texts[j]] = None
    rest = sorted({texts[j] for j in range(len(texts)) if eligible(j)} - chosen.keys())
    chosen.update(dict.fromkeys(rng.sample(rest, min(target - len(chosen), len(rest)))))


def make_rerank_groups(
    dialogues: Sequence[Dialogue],
    seed: int,
    contexts_per_dialogue: int = 3,
    n_candidates: int = 10,
    max_context_turns: int | None = None,
    fallback_negatives: Sequence[str] = (),
) -> list[RerankGroup]:
    """Build the 10-candidate re-rank protocol from held-out dialogues.

    For each dialogue, up to ``contexts_per_dialogue`` distinct cut points i in [1, n-1] (seeded,
    ascending): context = turns before i, positive = turn i, plus ``n_candidates - 1`` negatives:
    distinct turns of *other* dialogues of ``dialogues``, never equal to the positive text.

    Args:
        dialogues: the split to draw from (negatives come from it too, so no split leaks).
        seed: sampling seed.
        contexts_per_dialogue: cut points per dialogue.
        n_candidates: candidates per group, positive first (the standard files' layout).
        max_context_turns: keep only the newest this many context turns (``None``: all).
        fallback_negatives: texts to complete a group with when the other dialogues of the list
            have too few distinct turns (only tiny lists, e.g. a test split of 3 dialogues).

    Returns:
        Groups in dialogue order; ``line_no`` is the group's first line in a file of these groups.
    """
    if contexts_per_dialogue < 1 or n_candidates < 2:
        raise ValueError(
            f"need contexts_per_dialogue >= 1 and n_candidates >= 2, got {contexts_per_dialogue}, {n_candidates}"
        )
    check_max_context_turns(max_context_turns)
    rng = random.Random(seed)
    texts = [turn for dialogue in dialogues for turn in dialogue.turns]
    owners = [index for index, dialogue in enumerate(dialogues) for _ in dialogue.turns]
    groups = []
    for index, dialogue in enumerate(dialogues):
        pairs = expand_prefixes(dialogue, max_context_turns)
        for i in sorted(rng.sample(range(1, len(dialogue.turns)), min(contexts_per_dialogue, len(pairs)))):
            pair = pairs[i - 1]
            negatives: dict[str, None] = {}
            _draw_distinct(rng, texts, owners, index, pair.response, negatives, n_candidates - 1)
            if len(negatives) < n_candidates - 1:
                _draw_distinct(
                    rng, fallback_negatives, None, -1, pair.response, negatives, n_candidates - 1 - len(negatives)
                )
            if len(negatives) < n_candidates - 1:
                raise ValueError(
                    f"dialogue {dialogue.id!r}: only {len(negatives)} distinct negative texts, need {n_candidates - 1}"
                )
            groups.append(
                RerankGroup(
                    context=pair.context,
                    candidates=(pair.response, *negatives),
                    labels=(1,) + (0,) * len(negatives),
                    line_no=len(groups) * n_candidates + 1,
                    speakers=pair.context_speakers,
                )
            )
    return groups


def _derive_seed(seed: int, name: str) -> int:
    """An independent 64-bit seed per purpose, stable across Python runs (no ``hash()``)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big")


def _write_train(out: Path, dialogues: list[Dialogue]) -> None:
    """One ``1 \\t turn_1 ... \\t turn_n`` line per dialogue; 'full' expansion makes the prefixes."""
    write_response_selection(out / "train.txt", ((1, d.turns[:-1], d.turns[-1]) for d in dialogues))
    write_speakers(out / "train.speakers", (d.speakers for d in dialogues))


def _write_groups(path: Path, groups: list[RerankGroup]) -> None:
    """One line per candidate, and the sidecar: context speakers, then the response's for every candidate.

    Chit-Chat speakers alternate, so the response's speaker is the one after the last context turn's;
    every candidate gets it (a candidate's speaker must not give away its label).
    """
    write_response_selection(
        path, ((label, g.context, c) for g in groups for c, label in zip(g.candidates, g.labels, strict=True))
    )
    write_speakers(speakers_path_for(path), ((*g.speakers, 1 - g.speakers[-1]) for g in groups for _ in g.candidates))


def _split_stats(dialogues: list[Dialogue], contexts: int, lines: int) -> dict[str, int]:
    """Counts recorded in ``meta.json`` for one split."""
    turns = sum(len(d.turns) for d in dialogues)
    return {"dialogues": len(dialogues), "turns": turns, "contexts": contexts, "lines": lines}


def _write_rerank_split(path: Path, dialogues: list[Dialogue], seed: int, contexts: int, fallback: list[str]) -> dict:
    """Build and write one valid/test split's groups; return its counts.

    ``contexts_with_train_negatives`` counts groups holding a negative that is no turn of the split:
    only tiny slices need them (0 on the whole corpus).
    """
    groups = make_rerank_groups(dialogues, seed, contexts, fallback_negatives=fallback)
    _write_groups(path, groups)
    own = {turn for dialogue in dialogues for turn in dialogue.turns}
    borrowed = sum(any(c not in own for c in g.candidates) for g in groups)
    if borrowed:
        logger.warning("%s: %d of %d groups needed negatives from the training split", path, borrowed, len(groups))
    stats = _split_stats(dialogues, len(groups), sum(len(g.candidates) for g in groups))
    return stats | {"contexts_with_train_negatives": borrowed}


def _write_bm25_split(path: Path, dialogues: list[Dialogue], seed: int, contexts: int, fallback: list[str]) -> dict:
    """Write ``valid_bm25.txt``/``test_bm25.txt`` (+ speakers): the random split's groups, BM25 negatives instead."""
    from hashbert.data.bm25 import bm25_rerank_groups

    random_groups = make_rerank_groups(dialogues, seed, contexts, fallback_negatives=fallback)
    groups, stats = bm25_rerank_groups(random_groups, dialogues, seed, fallback=fallback)
    _write_groups(path, groups)
    # the sha256 lets a reader check they score on the split a published figure was measured on
    return stats | {"lines": sum(len(g.candidates) for g in groups), "sha256": sha256_file(path)}


def _split_corpus(
    raw: dict[str, Any], source: Path, seed: int, max_dialogues: int | None
) -> dict[str, list[Dialogue]]:
    """The seeded train/valid/test split of the corpus, refusing a slice too small to evaluate on.

    Negatives of a valid/test group come from the *other* dialogues of the same split, so a split
    of one dialogue has nothing to draw them from.
    """
    splits = dict(zip(SPLITS, split_dialogues(_dialogues_from_raw(raw, source, max_dialogues), seed), strict=True))
    if min(len(splits["valid"]), len(splits["test"])) < 2:
        raise ValueError(f"max_dialogues={max_dialogues} leaves fewer than 2 valid or test dialogues")
    return splits


def _meta(
    source: Path, raw: dict[str, Any], parameters: dict[str, Any], seed: int, stats: dict, responses: int
) -> dict[str, Any]:
    """The ``meta.json`` content.

    The source's package version and sha256 tie the prepared files to the exact corpus they came
    from; the parameters and per-split counts say what was drawn from it.
    """
    return {
        "corpus": "chitchat",
        "source": {
            "package": "chitchat-dataset",
            "version": importlib.metadata.version("chitchat-dataset"),
            "file": "chitchat_dataset/dataset.json",
            "sha256": sha256_file(source),
            "conversations": len(raw),
        },
        "parameters": parameters | {"n_candidates": 10, "fractions": list(DEFAULT_FRACTIONS)},
        "seed": seed,
        "fractions": list(DEFAULT_FRACTIONS),
        "splits": stats,
        "responses": responses,
    }


def prepare_chitchat(
    out_dir: str | Path,
    seed: int = 0,
    contexts_per_dialogue: int = 5,
    max_dialogues: int | None = None,
    show_progress: bool = False,
    negatives: str = "random",
) -> dict[str, Any]:
    """Write the Chit-Chat train/valid/test files, speakers sidecars, response pool and ``meta.json``.

    Files (each written atomically; ``meta.json`` last, so its presence marks a complete run):
    ``train.txt`` (one line per dialogue), ``valid.txt``/``test.txt`` (10 lines per context),
    ``*.speakers``, ``responses.txt`` (distinct training turns: the full-rank pool). Same seed ->
    byte-identical files.

    Args:
        out_dir: created if missing.
        seed: split and sampling seed.
        contexts_per_dialogue: re-rank contexts per valid/test dialogue.
        max_dialogues: use only the first this many dialogues (tests, quick runs).
        show_progress: show a tqdm bar over the steps.
        negatives: ``"random"``, or ``"bm25"`` to also write ``valid_bm25.txt``/``test_bm25.txt``: the same
            contexts and positives with BM25-retrieved negatives (``hashbert.data.bm25``).

    Returns:
        The ``meta.json`` content: parameters, source sha256, and per split the dialogues, turns,
        contexts (train: prefix pairs before de-duplication) and lines.
    """
    _check_max_dialogues(max_dialogues)
    if negatives not in ("random", "bm25"):
        raise ValueError(f"negatives must be 'random' or 'bm25', got {negatives!r}")
    out, source = Path(out_dir), chitchat_path()
    raw = _read_source(source)
    parameters = {"seed": seed, "contexts_per_dialogue": contexts_per_dialogue, "max_dialogues": max_dialogues}
    with tqdm(total=4, desc="prepare chitchat", disable=not show_progress) as progress:
        splits = _split_corpus(raw, source, seed, max_dialogues)
        train_turns = [turn for dialogue in splits["train"] for turn in dialogue.turns]
        _write_train(out, splits["train"])
        stats = {"train": _split_stats(splits["train"], len(train_turns) - len(splits["train"]), len(splits["train"]))}
        progress.update()
        for name in ("valid", "test"):
            args = (splits[name], _derive_seed(seed, name), contexts_per_dialogue, train_turns)
            stats[name] = _write_rerank_split(out / f"{name}.txt", *args)
            if negatives == "bm25":
                stats[f"{name}_bm25"] = _write_bm25_split(out / f"{name}_bm25.txt", *args)
            progress.update()
        pool = response_pool(train_turns)
        write_response_pool(out / "responses.txt", pool)
        parameters |= {"negatives": negatives} if negatives != "random" else {}  # random files: meta unchanged
        meta = _meta(source, raw, parameters, seed, stats, len(pool))
        write_json(out / "meta.json", meta)
        progress.update()
    logger.info("prepared chitchat in %s: %s", out, {name: stats[name]["contexts"] for name in SPLITS})
    return meta
