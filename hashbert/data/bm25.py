"""BM25 negatives: on-topic candidates that share words with the context, as search-engine test sets have.

Douban's and E-commerce's test candidates were retrieved by a search engine, so they are on topic;
random turns of other conversations are easier. Here a context's BM25 query is its last two turns,
the last one counted twice (``context_query``): the newest turn says most about the reply, the one
before keeps the topic when the newest is a short "yeah lol". Texts are lower-cased and split into
words by ``bm25s`` with its English stop-word list; a candidate scoring 0 (no shared word) is no
BM25 candidate at all.

A negative is never a turn of the context's own conversation, never a near-copy of the positive
(``near_copy_key``: same lower-cased words, punctuation and spacing ignored) and never a near-copy
of another chosen negative. A context whose query finds too few eligible texts is filled with
seeded random eligible texts (counted in the split's statistics).

Needs ``bm25s`` (a dependency of hashbert), imported inside ``Bm25Pool``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import numpy as np

from hashbert.data.records import Dialogue, RerankGroup
from hashbert.data.vector_cache import cached_arrays

logger = logging.getLogger(__name__)

QUERY_TURNS = 2
LAST_TURN_WEIGHT = 2
DEFAULT_DEPTH = 100
_WORD = re.compile(r"\w+")


def near_copy_key(text: str) -> str:
    """The words of ``text``, lower-cased, joined by one space: equal keys are near-copies ("Yes!" ~ "yes")."""
    return " ".join(_WORD.findall(text.lower()))


def context_query(context: Sequence[str], turns: int = QUERY_TURNS, last_weight: int = LAST_TURN_WEIGHT) -> str:
    """The BM25 query of a context: its newest ``turns`` turns, the newest repeated ``last_weight`` times."""
    if turns < 1 or last_weight < 1:
        raise ValueError(f"need turns >= 1 and last_weight >= 1, got {turns}, {last_weight}")
    return " ".join([*context[-turns:-1], *[context[-1]] * last_weight])


class Bm25Pool:
    """A BM25 index (``bm25s``, Lucene scoring) over a fixed list of texts.

    Args:
        texts: (n,) the pool; ids returned by ``search`` index it.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        if not texts:
            raise ValueError("a BM25 pool needs at least one text")
        self._bm25s = bm25s
        self.texts = list(texts)
        self._index = bm25s.BM25()
        self._index.index(self._tokenize(self.texts), show_progress=False)

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        return self._bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> np.ndarray:
        """(len(queries), min(k, n)) int64 pool ids, best first; -1 where the score is 0 (no shared word).

        Equal scores are ordered by pool id. Short chit-chat turns tie often, and ``bm25s``'s own top-k leaves the
        order of ties to numpy's SIMD-dispatched partition, which differs between CPUs (AVX-512 vs AVX2 wrote 207
        different lines of the Chit-Chat ``test_bm25.txt``): a split must be the same on every machine.
        """
        k = min(k, len(self.texts))
        if not queries:
            return np.empty((0, k), dtype=np.int64)
        # bm25s refuses an empty query: give a stop-word-only query a token no text has (all scores 0)
        tokens = [query or ["\x00"] for query in self._tokenize(queries)]

        def hits(query: list[str]) -> np.ndarray:
            scores = self._index.get_scores(query)
            ids = top_k_by_score_then_id(scores, k)
            return np.where(scores[ids] > 0, ids, -1)

        # numpy sums and partitions release the GIL: queries are scored independently on every core
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            rows = list(pool.map(hits, tokens))
        return np.stack(rows).astype(np.int64)


def top_k_by_score_then_id(scores: np.ndarray, k: int) -> np.ndarray:
    """The ids of the ``k`` highest ``scores``, best first, equal scores in ascending id order.

    Linear in ``len(scores)``: the k-th highest value is the same whatever order a partition leaves ties in, so
    the ids above it plus the lowest ids equal to it are the same set on every CPU; only those k are sorted.
    """
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(scores, n - k)[n - k]
    above = np.flatnonzero(scores > kth)
    chosen = np.concatenate([above, np.flatnonzero(scores == kth)[: k - len(above)]])
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def _texts_sha256(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()


def cached_search(texts: Sequence[str], queries: Sequence[str], k: int, cache_dir: str | Path | None) -> np.ndarray:
    """``Bm25Pool(texts).search(queries, k)``, read from ``cache_dir`` when the same search was cached there.

    Indexing the Chit-Chat training turns and searching every training context takes ~4 min on 2 cores; a resumed
    or repeated run (another seed, share or depth of draws, denoiser over the same hits) needs the very same hits.
    The entry's fingerprint is the pool, the queries (SHA-256 of each list), ``k`` and the ``bm25s`` version;
    ``None``: no cache.
    """

    if cache_dir is None:
        return Bm25Pool(texts).search(queries, k)

    def compute() -> dict[str, np.ndarray]:
        return {"hits": Bm25Pool(texts).search(queries, k).astype(np.int32)}  # half the bytes: pools are < 2**31

    fingerprint = {
        "what": "bm25-hits", "bm25s": version("bm25s"), "k": k, "ties": "pool-id",
        "pool_sha256": _texts_sha256(texts), "queries_sha256": _texts_sha256(queries),
    }
    return cached_arrays(cache_dir, fingerprint, compute)["hits"].astype(np.int64)


def pick_negatives(
    ranked: Sequence[int], texts: Sequence[str], allowed: Callable[[int], bool], positive: str, n: int
) -> list[str]:
    """The first ``n`` texts of ``ranked`` (pool ids, -1 = none) that ``allowed(id)`` and are no near-copy.

    A near-copy of the positive or of an earlier pick is skipped, so the picks are distinct in ``near_copy_key``.
    """
    seen, picks = {near_copy_key(positive)}, []
    for j in ranked:
        if j < 0 or len(picks) == n:
            break
        key = near_copy_key(texts[j])
        if key not in seen and allowed(j):
            seen.add(key)
            picks.append(texts[j])
    return picks


def _owners(dialogues: Sequence[Dialogue]) -> tuple[list[str], list[set[int]]]:
    """Distinct turns of the dialogues (first-seen order) and, per turn, the dialogues holding it."""
    owners: dict[str, set[int]] = {}
    for index, dialogue in enumerate(dialogues):
        for turn in dialogue.turns:
            owners.setdefault(turn, set()).add(index)
    return list(owners), list(owners.values())


def _group_owner(dialogues: Sequence[Dialogue]) -> dict[tuple[tuple[str, ...], str], int]:
    """(context, positive) -> the dialogue it was cut from (every prefix of every dialogue)."""
    return {(d.turns[:i], d.turns[i]): index for index, d in enumerate(dialogues) for i in range(1, len(d.turns))}


def _random_fill(
    rng: random.Random, texts: Sequence[str], allowed: Callable[[int], bool], picks: list[str], positive: str, n: int
) -> None:
    """Complete ``picks`` to ``n`` with seeded random allowed texts that are no near-copy (tiny pools only)."""
    order = list(range(len(texts)))
    rng.shuffle(order)
    picks += pick_negatives(order, texts, allowed, positive, n + len(picks))[: n - len(picks)]


def bm25_rerank_groups(
    groups: Sequence[RerankGroup],
    dialogues: Sequence[Dialogue],
    seed: int,
    depth: int = DEFAULT_DEPTH,
    fallback: Sequence[str] = (),
) -> tuple[list[RerankGroup], dict[str, int]]:
    """The same contexts and positives as ``groups``, their negatives replaced by BM25's top eligible turns.

    Args:
        groups: groups cut from ``dialogues`` with full contexts (``make_rerank_groups`` output), positive first.
        dialogues: the split; its distinct turns are the BM25 pool.
        seed: seed of the random fill (contexts whose top ``depth`` holds too few eligible texts).
        depth: BM25 hits looked at per context.
        fallback: texts to complete a group with when the split has too few eligible turns (tiny slices only).

    Returns:
        The new groups (same sizes, labels and speakers) and counts: ``contexts``, ``random_filled`` (contexts
        with at least one random negative) and ``random_negatives``.
    """
    texts, owners = _owners(dialogues)
    owner_of = _group_owner(dialogues)
    pool = Bm25Pool(texts)
    ranked = pool.search([context_query(g.context) for g in groups], depth)
    rng, out, filled, random_negatives = random.Random(seed), [], 0, 0
    for group, hits in zip(groups, ranked, strict=True):
        if group.labels[0] != 1 or sum(group.labels) != 1:
            raise ValueError(f"group at line {group.line_no}: expected one positive, first")
        positive, n = group.candidates[0], len(group.candidates) - 1
        own = owner_of.get((group.context, positive))
        if own is None:
            raise ValueError(f"group at line {group.line_no}: its context and positive are no cut of these dialogues")

        def allowed(j: int, own: int = own) -> bool:
            return own not in owners[j]

        picks = pick_negatives(hits, texts, allowed, positive, n)
        if len(picks) < n:
            filled, random_negatives = filled + 1, random_negatives + n - len(picks)
            _random_fill(rng, texts, allowed, picks, positive, n)
        if len(picks) < n:
            _random_fill(rng, fallback, lambda j: True, picks, positive, n)
        if len(picks) < n:
            raise ValueError(f"group at line {group.line_no}: only {len(picks)} eligible negatives, need {n}")
        out.append(RerankGroup(group.context, (positive, *picks), group.labels, group.line_no, group.speakers))
    stats = {"contexts": len(out), "random_filled": filled, "random_negatives": random_negatives}
    logger.info("BM25 negatives: %s", stats)
    return out, stats
