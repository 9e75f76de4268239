"""Evaluation: which test contexts, which seed rows beside ours, where results go, and the full-rank suite."""

from __future__ import annotations

from dataclasses import dataclass

from hashbert.config.fields import Config, option, required


@dataclass(frozen=True)
class EvalDataConfig(Config):
    """Which test contexts are scored (groups of candidates in the response-selection format)."""

    test: str = required("test file in the response-selection format, grouped by context")
    max_groups: int = option(0, "evaluate a seeded subsample of N contexts (default: all)", minimum=0)
    seed: int = option(0, "seed of that subsample (and of LSH hyperplanes where a command draws them)")
    batch_size: int = option(64, "encoding batch size", minimum=1)
    progress: bool = option(True, "show progress bars")


@dataclass(frozen=True)
class SeedTableConfig(Config):
    """Which of the seed's published tables to print beneath ours."""

    seed_table: tuple[int, ...] = option(
        (), "print these tables of the seed (1-4, comma-separated, e.g. 3,4) beneath ours; empty or 0: none"
    )
    seed_models: tuple[str, ...] = option((), "only these seed rows, comma-separated, e.g. BERT,DR-BERT (empty: all)")

    def validate(self) -> None:
        if any(t not in range(0, 5) for t in self.seed_table):
            raise ValueError(f"seed_table (--seed-table) takes tables 1-4 (0: none), got {self.seed_table}")

    @property
    def tables(self) -> list[int]:
        """The tables to print, without the 0 that means none."""
        return [t for t in self.seed_table if t]


@dataclass(frozen=True)
class FullRankSettings(Config):
    """What the full-rank suite runs: methods, pool, test queries, judges and retrieve-then-rerank rows."""

    model: str = required("the DR-BERT model directory whose vectors every method hashes")
    pool: str = required("response pool, one per line (e.g. runs/chitchat/responses.txt)")
    test: str = required("test file in the response-selection format; each group's positive is its gold")
    train: str = option("", "training file: a sample of its contexts fits ITQ (empty: no ITQ rows)")
    bits: tuple[int, ...] = option((128, 256, 512), "code lengths of the LSH and ITQ rows")
    hash_models: tuple[str, ...] = option(
        (), "a saved Hash-BERT or BPR directory; repeat for several", repeat=True, flag="hash-model"
    )
    hash_names: tuple[str, ...] = option(
        (), "row name for each --hash-model, in order (default: Hash-BERT(bits) or BPR(bits))", repeat=True,
        flag="hash-name",
    )
    candidates: int = option(1000, "l, Hamming candidates re-ranked per query", minimum=1)
    max_queries: int = option(0, "seeded subsample of test contexts (0: all)", minimum=0)
    itq_contexts: int = option(5000, "training contexts encoded to fit ITQ", minimum=1)
    add_gold: bool = option(True, "add test golds missing from the pool (else drop queries whose gold is absent)")
    cache_dir: str = option("runs/cache", "cache of encoded vectors, keyed by model and data")
    seed: int = option(0, "seed of LSH, ITQ and subsamples")
    timed_contexts: int = option(10, "contexts encoded one by one (3 repeats) to time encoding at batch 1", minimum=1)
    float_rerank: bool = option(
        False, "also re-rank the Hamming candidates against stored float response vectors"
    )
    relevance_judge: str = option(
        "", "a dual-encoder or cross-encoder directory (not --model) judging each method's top-100: Relevance-100 = "
        "mean (cosine + 1) / 2, or mean sigmoid(logit) for a cross-encoder, x100"
    )
    lm: str = option("", "a local causal-LM directory ('train lm' writes one): PPL-100 of each method's top-100")
    judge_queries: int = option(0, "seeded subsample of queries the judges score (0: all)", minimum=0)
    cross_encoder: str = option(
        "", "a cross-encoder directory: add retrieve-then-rerank rows (Hamming top-l, then it)"
    )
    cross_method: str = option(
        "", "whose codes feed the cross-encoder, e.g. 'ITQ(256)' (default: the first hashed row)"
    )
    cross_depths: tuple[int, ...] = option((20, 50, 100), "the l of the retrieve-then-rerank rows")
    cross_queries: int = option(0, "seeded subsample of queries for those rows (0: all)", minimum=0)

    def validate(self) -> None:
        if len(self.hash_names) > len(self.hash_models):
            raise ValueError(f"{len(self.hash_names)} --hash-name for {len(self.hash_models)} --hash-model")
