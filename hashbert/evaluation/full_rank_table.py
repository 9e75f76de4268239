"""The full-rank table: float DR-BERT, LSH, ITQ and Hash-BERT heads over the whole pool, with and without re-rank.

Every method hashes the same DR-BERT vectors (encoded once and cached with a fingerprint of the
model and the files), so rows differ only in how vectors become codes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hashbert.config import FullRankSettings
from hashbert.data.sampling import seeded_subsample
from hashbert.evaluation.full_rank import (
    build_queries,
    code_top_ids,
    evaluate_codes,
    evaluate_float,
    float_top_ids,
    median_ms,
    pessimistic_ranks,
    recall_metrics,
    retrieve_rerank_metrics,
)

logger = logging.getLogger(__name__)

Row = tuple[str, dict[str, float]]


def _encode_cached(
    model, model_dir: str | Path, settings: FullRankSettings, role: str, texts: Sequence, files: dict, params: dict
) -> np.ndarray:
    """Vectors of ``texts`` from the cache, or encoded and cached.

    The cache is keyed by ``model_dir``, ``files`` and ``params``.
    """
    from hashbert.data.vector_cache import cached_arrays, vector_fingerprint

    if not texts:
        return np.zeros((0, model.dim), dtype=np.float32)
    encode = model.encode_contexts if "context" in role else model.encode_responses
    fingerprint = vector_fingerprint(model_dir, files, {"role": role, "n": len(texts), **params})
    return cached_arrays(settings.cache_dir, fingerprint, lambda: {"vectors": encode(texts, progress=True)})["vectors"]


def _query_and_pool_vectors(model, model_dir: str | Path, settings: FullRankSettings, queries, pool_file_rows: int):
    """(test context vectors, pool vectors): the pool file's vectors are cached on their own (reusable by
    benchmarks), then those of the added golds."""
    subsample = {"max_queries": settings.max_queries, "seed": settings.seed}
    contexts = _encode_cached(
        model, model_dir, settings, "test-contexts", queries.contexts, {"test": settings.test}, subsample
    )
    file_vecs = _encode_cached(
        model, model_dir, settings, "pool", queries.pool[:pool_file_rows], {"pool": settings.pool}, {}
    )
    extra = _encode_cached(
        model, model_dir, settings, "gold-responses", queries.pool[pool_file_rows:],
        {"pool": settings.pool, "test": settings.test}, subsample,
    )
    return contexts, np.concatenate([file_vecs, extra])


def _training_contexts(settings: FullRankSettings) -> list[tuple[str, ...]]:
    from hashbert.data import read_training_pairs

    pairs = seeded_subsample(read_training_pairs(settings.train), settings.itq_contexts, settings.seed)
    return [pair.context for pair in pairs]


def _hashers(
    settings: FullRankSettings, vectors: tuple[np.ndarray, np.ndarray], train_context_vecs, queries, pool_rows
):
    """(name, hasher, (context vectors, pool vectors)) for every LSH/ITQ code length and every hashing model.

    LSH, ITQ and Hash-BERT heads hash the DR-BERT's vectors; a model that carries its own encoder (BPR, or
    Hash-BERT with unfrozen layers) hashes the vectors of that encoder, encoded once and cached like the DR-BERT's.
    """
    from hashbert.models.hashing.lsh import ITQ, RandomHyperplaneLSH

    pool_vecs = vectors[1]
    for bits in settings.bits:
        yield f"LSH({bits})", RandomHyperplaneLSH(pool_vecs.shape[1], bits, settings.seed), vectors
        if train_context_vecs is not None:
            rng = np.random.default_rng(settings.seed)
            sample = rng.choice(len(pool_vecs), len(train_context_vecs), replace=False)
            itq = ITQ(bits, seed=settings.seed).fit(train_context_vecs, pool_vecs[np.sort(sample)])
            yield f"ITQ({bits})", itq, vectors
    for i, directory in enumerate(settings.hash_models):
        from hashbert.models.hashing.hash_bert import HashBert  # only needed (and imported) for Hash-BERT rows

        model = HashBert.load(directory)
        name = f"{'BPR' if model.config.recipe == 'bpr' else 'Hash-BERT'}({model.heads.n_bits})"
        name = settings.hash_names[i] if i < len(settings.hash_names) else name
        own = vectors
        if model.config.encoder_embedded:
            own = _query_and_pool_vectors(model.dual_encoder, directory, settings, queries, pool_rows)
        yield name, model.heads, own


def run_full_rank(settings: FullRankSettings) -> list[Row]:
    """Rows ``(method, metrics)`` of the full-rank table (see ``full_rank`` for the protocol and tie rule)."""
    from hashbert.data import read_rerank_groups, read_response_pool
    from hashbert.models.dual_encoder import DualEncoder

    model = DualEncoder.load(settings.model)
    pool_file = list(dict.fromkeys(read_response_pool(settings.pool)))
    queries = build_queries(
        pool_file, read_rerank_groups(settings.test), settings.add_gold, settings.max_queries, settings.seed
    )
    logger.info("full rank: %d queries over a pool of %d responses", len(queries.gold), len(queries.pool))
    context_vecs, pool_vecs = _query_and_pool_vectors(model, settings.model, settings, queries, len(pool_file))
    timed = queries.contexts[: settings.timed_contexts]
    encode_ms = median_ms(lambda: [model.encode_contexts([c]) for c in timed], repeats=3) / len(timed)
    train_context_vecs = None
    if settings.train:
        train_context_vecs = _encode_cached(
            model, settings.model, settings, "train-contexts", _training_contexts(settings), {"train": settings.train},
            {"itq_contexts": settings.itq_contexts, "seed": settings.seed},
        )
    common = {"encode ms/context": encode_ms, "queries": float(len(queries.gold)), "pool": float(len(queries.pool))}
    rows: list[Row] = [("DR-BERT (float)", {**evaluate_float(context_vecs, pool_vecs, queries.gold), **common})]
    judged = _subsample_rows(len(queries.gold), settings.judge_queries, settings.seed)
    retrieved = {"DR-BERT (float)": float_top_ids(context_vecs[judged], pool_vecs)} if _has_judges(settings) else {}
    hashed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    hashers = _hashers(settings, (context_vecs, pool_vecs), train_context_vecs, queries, len(pool_file))
    for name, hasher, (contexts, pool) in hashers:
        hash_ms = median_ms(lambda h=hasher, c=contexts: h.context_hash_vectors(c[:1]), repeats=5)
        context_hash, pool_hash = hasher.context_hash_vectors(contexts), hasher.response_hash_vectors(pool)
        hashed[name] = (context_hash, pool_hash)
        results = evaluate_codes(
            context_hash, pool_hash, queries.gold, settings.candidates,
            float_vectors=(contexts, pool) if settings.float_rerank else None,
        )
        extra = {**common, "encode ms/context": encode_ms + hash_ms}
        rows += [(name + suffix, {**metrics, **extra}) for suffix, metrics in results]
        if _has_judges(settings):  # the judges read the Hamming and the code re-rank lists (not the float re-rank)
            retrieved[name] = code_top_ids(context_hash[judged], pool_hash)
            retrieved[f"{name} + re-rank@{settings.candidates}"] = code_top_ids(
                context_hash[judged], pool_hash, candidates=settings.candidates
            )
        logger.info("%s: Recall@100 %s", name, [round(metrics["Recall@100"], 4) for _, metrics in results])
    if retrieved:
        _add_judge_columns(rows, settings, [queries.contexts[i] for i in judged], queries.pool, retrieved)
    if settings.cross_encoder:
        rows += _cross_rerank_rows(settings, queries, hashed, common)
    return rows


def _has_judges(settings: FullRankSettings) -> bool:
    return bool(settings.relevance_judge or settings.lm)


def _subsample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted (size,) row numbers of a seeded subsample of range(n) (all rows when size is 0)."""
    return np.asarray(seeded_subsample(range(n), size, seed), dtype=np.int64)


def _add_judge_columns(
    rows: list[Row], settings: FullRankSettings, contexts: list, pool: list[str], retrieved: dict
) -> None:
    """Relevance-100 / PPL-100 of every method's top-100 (on the judged queries), added to its row in place."""
    from hashbert.evaluation.judges import judge_methods, load_relevance_judge
    from hashbert.models.cross.causal_lm import CausalLmScorer

    judge = load_relevance_judge(settings.relevance_judge, settings.model) if settings.relevance_judge else None
    scorer = CausalLmScorer(settings.lm) if settings.lm else None
    texts = {method: [[pool[i] for i in row if i >= 0] for row in ids] for method, ids in retrieved.items()}
    columns = judge_methods(contexts, texts, judge=judge, scorer=scorer)
    for name, metrics in rows:
        if name in columns:
            metrics.update(columns[name])
            metrics["judged queries"] = float(len(contexts))
    if judge is not None:
        logger.info("Relevance-100 judge: %s", judge.name)


def _cross_rerank_rows(settings: FullRankSettings, queries, hashed: dict, common: dict) -> list[Row]:
    """Rows of the retrieve-then-rerank pipeline: the codes of ``cross_method``, a cross-encoder on the top l."""
    from hashbert.codes import binarize, hamming_distance, pack_codes
    from hashbert.index.binary import BinaryFlatIndex
    from hashbert.models.cross.cross_encoder import CrossEncoder
    from hashbert.retrieve_rerank import RetrieveThenRerank

    if not hashed:
        raise ValueError("retrieve-then-rerank needs a hashed method (--bits or --hash-model)")
    method = settings.cross_method or next(iter(hashed))
    if method not in hashed:
        raise ValueError(f"--cross-method {method!r} is not one of the hashed methods {sorted(hashed)}")
    context_hash, pool_hash = hashed[method]
    rows_q = _subsample_rows(len(queries.gold), settings.cross_queries, settings.seed)
    query_codes, pool_codes = pack_codes(binarize(context_hash[rows_q])), pack_codes(binarize(pool_hash))
    gold = queries.gold[rows_q]
    hamming_ranks = pessimistic_ranks(lambda s: -hamming_distance(query_codes[s], pool_codes), len(gold), gold)
    index = BinaryFlatIndex(context_hash.shape[1])
    index.add(pool_codes)
    cross = CrossEncoder.load(settings.cross_encoder)
    pipeline = RetrieveThenRerank(index, queries.pool, cross)
    contexts = [queries.contexts[i] for i in rows_q]
    hamming_metrics = {**recall_metrics(hamming_ranks, ks=(1, 10)), "queries": float(len(gold))}
    out = [(f"{method} (Hamming, same queries)", hamming_metrics)]
    for depth in settings.cross_depths:
        metrics = retrieve_rerank_metrics(pipeline, contexts, query_codes, hamming_ranks, gold, depth)
        out.append((f"{method} + {cross.row_name} re-rank@{depth}", {**metrics, "queries": float(len(gold))}))
        logger.info("%s: %s", out[-1][0], {k: round(v, 4) for k, v in metrics.items()})
    return out


FULLRANK_TABLE_COLUMNS = ("Recall@1", "Recall@10", "Recall@100", "Recall@1000", "MRR")
RERANK_COLUMNS = ("Recall@1", "Recall@10", "MRR")
RERANK_EXTRA_COLUMNS = (("added ms/query", ".1f"), ("queries", ".0f"))
JUDGE_EXTRA_COLUMNS = (("Top-100", ".4f"), ("Relevance-100", ".2f"), ("PPL-100", ".2f"), ("judged queries", ".0f"))
FULLRANK_EXTRA_COLUMNS = (
    ("bytes/response", ".0f"), ("encode ms/context", ".2f"), ("search ms (b=1)", ".3f"), ("search ms (b=256)", ".3f"),
)


def plot_recall_vs_bytes(path: str | Path, rows: Sequence[Row]) -> None:
    """Recall@100 against bytes per response (log x), one line per method family, re-rank separate (dashed)."""
    from hashbert.evaluation.report import plot_metric_vs

    series: dict[str, list[tuple[float, float]]] = {}
    for name, metrics in rows:
        if "float re-rank" in name:
            continue  # its float vectors (on disk) would put every method at ~1.5 kB: the table has them
        family = name.split("(")[0] + (" + re-rank" if "re-rank" in name else "")
        series.setdefault(family, []).append((metrics["bytes/response"], metrics["Recall@100"]))
    plot_metric_vs(
        path, series, "index bytes per response", "Recall@100", "Full-rank recall against memory", logx=True
    )


def full_rank_report(rows: Sequence[Row], settings: FullRankSettings, csv_path: str = "", plot_path: str = "") -> str:
    """The printed tables of a full-rank run (search rows; judges beside the seed's; retrieve-then-rerank rows),
    also written as one CSV to ``csv_path`` and plotted (Recall@100 against bytes) to ``plot_path`` when given."""
    from hashbert.evaluation.report import load_seed_fullrank, markdown_table, side_by_side, write_results_csv

    search_rows = [(name, metrics) for name, metrics in rows if "Recall@100" in metrics]
    cross_rows = [(name, metrics) for name, metrics in rows if "Recall@100" not in metrics]
    if csv_path:
        extra = FULLRANK_EXTRA_COLUMNS + JUDGE_EXTRA_COLUMNS + RERANK_EXTRA_COLUMNS
        write_results_csv(csv_path, rows, list(dict.fromkeys([*FULLRANK_TABLE_COLUMNS, *(n for n, _ in extra)])))
    if plot_path:
        plot_recall_vs_bytes(plot_path, search_rows)
    parts = [markdown_table(search_rows, FULLRANK_TABLE_COLUMNS, extra_columns=FULLRANK_EXTRA_COLUMNS)]
    if settings.relevance_judge or settings.lm:
        judged = [(name, {**m, "Top-100": m["Recall@100"]}) for name, m in search_rows]
        parts.append(
            f"Relevance-100 judge: {settings.relevance_judge or 'none'}; "
            f"PPL-100 language model: {settings.lm or 'none'}"
        )
        parts.append(markdown_table(side_by_side(judged, load_seed_fullrank()), (), extra_columns=JUDGE_EXTRA_COLUMNS))
    if cross_rows:
        parts.append(f"retrieve then re-rank with the cross-encoder {settings.cross_encoder}:")
        parts.append(markdown_table(cross_rows, RERANK_COLUMNS, extra_columns=RERANK_EXTRA_COLUMNS))
    return "\n".join(parts)
