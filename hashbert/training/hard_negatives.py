"""Per-context hard negatives for dual-encoder training: BM25's or the model's own top-k over the training turns.

The pool is the distinct turns of the training file (one dialogue per line). A pool text is eligible for
a pair unless it is a turn of the pair's own conversation or a near-copy of its response (same lower-cased
words, ``hashbert.data.bm25.near_copy_key``); eligible texts that are near-copies of each other count once.
Each pair keeps its top ``hard_depth`` eligible texts, best first (``HardNegativeMiner.ranked``); every step
draws ``hard_per_context`` of them per context, seeded by (seed, pair, step), so a resumed BM25 run draws
what the uninterrupted one would. ``model`` mining (ANCE, Xiong et al. 2021 sec. 3) encodes a seeded
subsample of the pool and the pair contexts with the current weights, searches a ``FloatIndex`` and re-mines
every ``hard_refresh_every`` steps (a resumed run re-mines at once with the restored weights). The hashing heads
mine the same way with their own codes (``mine_with_codes``: Hamming top-k over the cached training responses).
With ``hard_denoise_model``, a trained DR-BERT vets every pair's mined list first (``NegativeDenoiser``): BM25's
top turns for chit-chat are often acceptable replies (about 30% of the test split's hardest, read by hand), and
training against them teaches the model to push away good answers (Qu et al. 2021, RocketQA sec. 4.2.2).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from hashbert.config import DataConfig, HardNegativeConfig, TrainConfig, config_to_dict
from hashbert.data import iter_labelled_lines
from hashbert.data.bm25 import cached_search, context_query, pick_negatives
from hashbert.data.records import ContextResponse
from hashbert.data.sampling import seeded_subsample
from hashbert.models.dual_encoder import DualEncoder
from hashbert.training.trainer import resolve_device

logger = logging.getLogger(__name__)

# hits looked at per pair: eligibility drops a few (own turns, near-copies), so search beyond the depth
_OVERSEARCH = 3


class IndexedPair(NamedTuple):
    """A training pair and its position in the miner's list (what a collate needs to find its negatives)."""

    index: int
    pair: ContextResponse


class TrainingPool:
    """The distinct turns of a training file and, per turn, the dialogues (file lines) that hold it.

    Args:
        dialogues: each dialogue's turns (a training line's context turns and response).
    """

    def __init__(self, dialogues: Sequence[Sequence[str]]) -> None:
        owners: dict[str, set[int]] = {}
        for index, turns in enumerate(dialogues):
            for turn in turns:
                owners.setdefault(turn, set()).add(index)
        if not owners:
            raise ValueError("the training pool is empty")
        self.texts = list(owners)
        self.owners = list(owners.values())
        self._owners_of = owners
        self._ids = {text: i for i, text in enumerate(self.texts)}

    @classmethod
    def from_file(cls, path: str, on_error: str = "raise") -> TrainingPool:
        """Every positive line of a response-selection file as one dialogue (``train.txt`` holds one per line)."""
        return cls([(*line.context, line.response) for line in iter_labelled_lines(path, on_error) if line.label])

    def id_of(self, text: str) -> int:
        """The pool id of a turn of the training file (``KeyError`` for any other text)."""
        return self._ids[text]

    def dialogues_of(self, pair: ContextResponse) -> set[int]:
        """The dialogues holding every turn of ``pair`` (context and response): its own conversation(s)."""
        turns = (*pair.context, pair.response)
        return set.intersection(*(self._owners_of.get(turn, set()) for turn in turns))

    def eligible(self, pair: ContextResponse) -> Callable[[int], bool]:
        """``pool id -> bool``: False for the turns of ``pair``'s own conversation (and its context turns)."""
        own, context = self.dialogues_of(pair), set(pair.context)
        return lambda j: self.owners[j].isdisjoint(own) and self.texts[j] not in context


class NegativeDenoiser:
    """Drops mined negatives that a trained DR-BERT scores as high as the pair's own response.

    A negative ``n`` of a pair ``(c, r)`` is kept when ``score(c, n) < score(c, r) - margin`` (cosines of the
    denoiser's towers). Vectors are cached per text, so a re-mining encodes only the texts it has not seen.

    Args:
        model_dir: a saved ``DualEncoder``; margin: see above; device: where it encodes; batch_size: per call.
    """

    def __init__(self, model_dir: str, margin: float, device: str | torch.device = "cpu", batch_size: int = 64):
        self.model = DualEncoder.load(model_dir).to(device).eval()
        self.margin, self.batch_size = margin, batch_size
        self._contexts: np.ndarray | None = None
        self._responses: dict[str, np.ndarray] = {}

    def _response_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        new = [t for t in dict.fromkeys(texts) if t not in self._responses]
        if new:
            vectors = self.model.encode_responses(new, 2 * self.batch_size, progress=True)
            self._responses.update(zip(new, vectors, strict=True))
        return self._responses

    def filter(self, pairs: Sequence[ContextResponse], ranked: list[list[str]]) -> list[list[str]]:
        """Each pair's ``ranked`` negatives less those scored within ``margin`` of its response (order kept)."""
        if self._contexts is None:
            self._contexts = self.model.encode_contexts([p.context for p in pairs], self.batch_size, progress=True)
        vectors = self._response_vectors([p.response for p in pairs] + [t for texts in ranked for t in texts])
        kept, dropped = [], 0
        for context, pair, texts in zip(self._contexts, pairs, ranked, strict=True):
            bar = float(context @ vectors[pair.response]) - self.margin
            keep = [t for t in texts if float(context @ vectors[t]) < bar]
            dropped += len(texts) - len(keep)
            kept.append(keep)
        logger.info("denoising dropped %d of %d mined negatives (%.1f%%)", dropped, sum(map(len, ranked)),
                    100 * dropped / max(1, sum(map(len, ranked))))
        return kept


class HardNegativeMiner:
    """Keeps each pair's ranked eligible negatives and draws a step's negatives from them.

    Args:
        config: the hard-negative settings (``hard_negatives`` must be ``bm25`` or ``model``).
        pairs: the training pairs, in the order ``IndexedPair.index`` refers to.
        pool: the training turns.
        seed: seed of the draws, the pool subsample and the random fill.
        device: where ``hard_denoise_model`` (if any) encodes.
        out_dir: the run's directory: BM25 hits are cached in ``hard_cache_dir``, else in ``out_dir/cache``
            (neither given: not cached).
    """

    def __init__(self, config: HardNegativeConfig, pairs: Sequence[ContextResponse], pool: TrainingPool, seed: int,
                 device: str | torch.device = "cpu", out_dir: str | Path | None = None):
        if config.hard_negatives not in ("bm25", "model"):
            raise ValueError(f"hard_negatives must be 'bm25' or 'model' to mine, got {config.hard_negatives!r}")
        self.config, self.pairs, self.pool, self.seed = config, list(pairs), pool, seed
        self.cache_dir = config.hard_cache_dir or (Path(out_dir) / "cache" if out_dir is not None else None)
        self.denoiser = (NegativeDenoiser(config.hard_denoise_model, config.hard_denoise_margin, device)
                         if config.hard_denoise_model else None)
        self.ranked: list[list[str]] = []  # per pair, its eligible negatives best first
        self.mined_at: int | None = None

    @classmethod
    def for_run(cls, config: HardNegativeConfig, pairs: Sequence[ContextResponse], data: DataConfig,
                train: TrainConfig, out_dir: str | Path | None = None) -> HardNegativeMiner:
        """The miner of a training run: the pool of ``data.train``'s turns, the run's seed and device."""
        return cls(config, pairs, TrainingPool.from_file(data.train, data.on_error), train.seed,
                   resolve_device(train.device), out_dir)

    def mine_bm25(self) -> None:
        """Rank the pool for every pair by BM25 of its last turns (``context_query``)."""
        queries = [context_query(p.context) for p in self.pairs]
        self._keep(cached_search(self.pool.texts, queries, _OVERSEARCH * self.config.hard_depth, self.cache_dir))

    def mine_with_model(self, model: DualEncoder, batch_size: int = 64) -> None:
        """Rank a seeded pool subsample for every pair by the model's dot product (exact float search)."""
        from hashbert.index.dense import FloatIndex  # here: BM25 mining (and a GPU box without faiss) needs none

        ids = np.asarray(seeded_subsample(range(len(self.pool.texts)), self.config.hard_pool_size, self.seed))
        index = FloatIndex(model.dim)
        index.add(model.encode_responses([self.pool.texts[j] for j in ids], batch_size * 2), ids)
        contexts = model.encode_contexts([p.context for p in self.pairs], batch_size)
        _, hits = index.search(contexts, min(len(ids), _OVERSEARCH * self.config.hard_depth))
        self._keep(hits)

    def mine_with_codes(self, context_codes: np.ndarray, pool_codes: np.ndarray, pool_ids: Sequence[int]) -> None:
        """Rank the coded pool texts for every pair by Hamming distance to its context's code (the heads' own
        retrieval; exact, faiss's flat binary index).

        Args:
            context_codes: (n_pairs, n_bits/8) packed codes, row i of pair i.
            pool_codes: (n, n_bits/8) packed codes of the pool texts ``pool_ids`` (the only texts drawn).
        """
        from hashbert.index.binary import BinaryFlatIndex  # (BM25 mining needs no faiss)

        index = BinaryFlatIndex(8 * pool_codes.shape[1])
        index.add(pool_codes, np.asarray(pool_ids, dtype=np.int64))
        _, hits = index.search(context_codes, min(len(pool_ids), _OVERSEARCH * self.config.hard_depth))
        self._keep(hits, list(pool_ids))

    def _keep(self, hits: np.ndarray, fill_ids: Sequence[int] | None = None) -> None:
        """Per pair, its top ``hard_depth`` eligible texts of ``hits`` (pool ids, -1 = none); seeded random
        eligible texts (of ``fill_ids``, default the whole pool) complete a list shorter than ``hard_per_context``."""
        rng, depth, m = random.Random(self.seed), self.config.hard_depth, self.config.hard_per_context
        texts, self.ranked, filled = self.pool.texts, [], 0
        fill_ids = range(len(texts)) if fill_ids is None else fill_ids
        eligible = [self.pool.eligible(pair) for pair in self.pairs]
        ranked = [pick_negatives(row.tolist(), texts, allowed, pair.response, depth)
                  for pair, row, allowed in zip(self.pairs, hits, eligible, strict=True)]
        if self.denoiser is not None:
            ranked = self.denoiser.filter(self.pairs, ranked)
        for pair, picks, allowed in zip(self.pairs, ranked, eligible, strict=True):
            if len(picks) < m:
                filled += 1
                order = rng.sample(fill_ids, min(len(fill_ids), 50 * m + 100))
                picks += pick_negatives(order, texts, allowed, pair.response, m + len(picks))[: m - len(picks)]
            if len(picks) < m:
                raise ValueError(f"only {len(picks)} eligible negatives for a pair, need {m}: the pool is too small")
            self.ranked.append(picks)
        logger.info("mined %s negatives for %d pairs (%d completed at random)", self.config.hard_negatives,
                    len(self.pairs), filled)

    def refresh(self, step: int, mine_with_model: Callable[[], None]) -> None:
        """Mine when nothing is mined yet, and (``model`` mining, by calling ``mine_with_model``) every
        ``hard_refresh_every`` steps."""
        every = self.config.hard_refresh_every
        due = self.mined_at is None or (
            self.config.hard_negatives == "model" and every and step // every != self.mined_at // every
        )
        if not due:
            return
        if self.config.hard_negatives == "bm25":
            self.mine_bm25()
        else:
            mine_with_model()
        self.mined_at = step

    def draw(self, index: int, step: int) -> list[str]:
        """``hard_per_context`` distinct negatives of pair ``index`` for this step (seeded by seed, pair, step):
        from its mined list, or with probability 1 - ``hard_fraction`` random eligible pool texts."""
        ranked, m = self.ranked[index], self.config.hard_per_context
        rng = np.random.default_rng([self.seed, index, step])
        if self.config.hard_fraction < 1 and rng.random() >= self.config.hard_fraction:
            pair = self.pairs[index]
            # a few times m draws, with replacement (a permutation of the pool per context would cost more than
            # the step): eligibility and near-copies drop few of them
            order = rng.integers(0, len(self.pool.texts), 4 * m + 8).tolist()
            picks = pick_negatives(order, self.pool.texts, self.pool.eligible(pair), pair.response, m)
            if len(picks) == m:
                return picks
        chosen = rng.choice(len(ranked), m, replace=False)
        return [ranked[j] for j in chosen]


def negatives_fingerprint(negatives: HardNegativeConfig) -> dict[str, dict[str, Any]]:
    """``run_fingerprint`` keywords for the hard-negative settings: none for an in-batch run, so an in-batch run
    keeps the fingerprint it had before hard negatives existed (and resumes); never where the hits are cached."""
    if negatives.hard_negatives == "none":
        return {}
    settings = config_to_dict(negatives)
    del settings["hard_cache_dir"]
    return {"negatives": settings}


def mined_collate(
    miner: HardNegativeMiner, model: Any, step_of: Callable[[], int], mine_with_model: Callable[[], None]
) -> Callable[[list[IndexedPair]], dict]:
    """``collate(IndexedPairs)``: ``model.collate`` of the pairs plus ``negatives``, the tokenised
    ``hard_per_context`` mined negatives of each context in order (B * m), after refreshing the miner.

    Args:
        model: has ``collate(pairs)`` and ``batcher.responses(texts)`` (DR-BERT, HDR-BERT).
        step_of: the trainer's current step (seeds the draws and times the re-mining).
    """

    def collate(items: list[IndexedPair]) -> dict:
        step = step_of()
        miner.refresh(step, mine_with_model)
        batch = model.collate([item.pair for item in items])
        batch["negatives"] = model.batcher.responses([text for item in items for text in miner.draw(item.index, step)])
        return batch

    return collate
