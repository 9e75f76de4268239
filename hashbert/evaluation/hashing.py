"""Hashing methods side by side on the re-rank protocol: DR-BERT (float) first, then every method x bits.

Every method is scored on the same test groups from dense DR-BERT vectors encoded once (cached by
fingerprint), except models that carry their own fine-tuned encoder (BPR, unfrozen Hash-BERT), which
encode the test texts themselves. Each hashing row comes twice: ``sym`` (negated Hamming distance;
equal distances stay tied and count against the positives, never broken by a float score) and
``asym`` (float context . ±1 response code; the response side stays binary). Bytes per response are
``n_bits / 8`` for codes and ``4 * dim`` for the float row; retention is R10@1 over the float row's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashbert.evaluation.metrics import rerank_metrics
from hashbert.models.hashing.scoring import SCORING_MODES, VectorHasher, dense_scores, hasher_scores, index_groups

logger = logging.getLogger(__name__)

DEFAULT_BITS = (128, 256, 512, 1024, 2048, 4096)
EXTRA_COLUMNS = (("bytes/response", ",.0f"), ("retention", ".1%"))
CSV_COLUMNS = ("R10@1", "R10@2", "R10@5", "MRR", "P@1", "MAP", "bytes/response", "retention", "n_bits")


class VectorRerankEvaluator:
    """Re-rank metrics of a ``VectorHasher`` on groups whose dense vectors are already computed.

    Args:
        groups: ``RerankGroup``s.
        context_vecs: (n_contexts, dim) float32 vectors of ``index_groups(groups).contexts``.
        response_vecs: (n_responses, dim) float32 vectors of ``index_groups(groups).responses``.
        scoring: ``symmetric`` or ``asymmetric``.
    """

    primary_metric = "R10@1"
    greater_is_better = True

    def __init__(
        self, groups: Sequence, context_vecs: np.ndarray, response_vecs: np.ndarray, scoring: str = "symmetric"
    ):
        if scoring not in SCORING_MODES:
            raise ValueError(f"scoring must be one of {SCORING_MODES}, got {scoring!r}")
        self.index = index_groups(groups)
        self.labels = [np.asarray(g.labels) for g in groups]
        self.context_vecs, self.response_vecs, self.scoring = context_vecs, response_vecs, scoring

    def __call__(self, hasher: VectorHasher) -> dict[str, float]:
        started = time.perf_counter()
        scores = hasher_scores(hasher, self.context_vecs, self.response_vecs, self.index, self.scoring)
        return {**rerank_metrics(scores, self.labels), "seconds": time.perf_counter() - started}


def _hash_rows(name: str, hasher: VectorHasher, evaluators: dict[str, VectorRerankEvaluator], method: str) -> list:
    rows = []
    for scoring, evaluator in evaluators.items():
        metrics = evaluator(hasher)
        metrics.update({"bytes/response": hasher.n_bits / 8, "n_bits": hasher.n_bits})
        rows.append((f"{name} {scoring[:3]}", metrics, method + " " + scoring[:3]))
        logger.info("%s: R10@1 %.4f", rows[-1][0], metrics["R10@1"])
    return rows


def _default_name(model: Any) -> str:
    recipe = getattr(model.config, "recipe", "hash_bert")
    return f"{'BPR' if recipe == 'bpr' else 'Hash-BERT'}({model.n_bits})"


def _test_groups(test_path: str | Path, max_groups: int, seed: int) -> list:
    """The test file's groups, or a seeded subsample of ``max_groups`` of them (kept in file order).

    Retention, the plot and the seed's table are all R10@1, so a file whose contexts do not all have
    10 candidates is refused here rather than giving rows that compare with nothing.
    """
    from hashbert.data import read_rerank_groups

    groups = read_rerank_groups(test_path)
    sizes = {len(g.labels) for g in groups}
    if sizes != {10}:
        raise ValueError(f"{test_path}: the hashing table needs 10 candidates per context, found {sorted(sizes)}")
    if max_groups and max_groups < len(groups):
        keep = np.random.default_rng(seed).choice(len(groups), max_groups, replace=False)
        groups = [groups[i] for i in sorted(keep)]
    return groups


def _evaluators(
    groups: Sequence, context_vecs: np.ndarray, response_vecs: np.ndarray
) -> dict[str, VectorRerankEvaluator]:
    """One ``VectorRerankEvaluator`` per scoring mode over the same vectors: every hasher gets both rows."""
    return {s: VectorRerankEvaluator(groups, context_vecs, response_vecs, s) for s in SCORING_MODES}


def _float_metrics(
    groups: Sequence, index, context_vecs: np.ndarray, response_vecs: np.ndarray, dim: int
) -> dict[str, float]:
    """Metrics of the float DR-BERT (dot products of its vectors): the row every retention divides by.

    Bytes and bits are those of ``dim`` float32 values, so the float row sits on the same axes as the codes.
    """
    labels = [np.asarray(g.labels) for g in groups]
    metrics = rerank_metrics(dense_scores(context_vecs, response_vecs, index), labels)
    metrics.update({"bytes/response": 4.0 * dim, "n_bits": 32.0 * dim})
    return metrics


def _baseline_rows(dim: int, bits: Sequence[int], seed: int, on_dual: dict[str, VectorRerankEvaluator]) -> list:
    """LSH at every code length, then the sign of each dimension: hashers that need no training."""
    from hashbert.models.hashing.lsh import RandomHyperplaneLSH, SignHash

    rows = []
    for n_bits in bits:
        rows += _hash_rows(f"DR-BERT+LSH({n_bits})", RandomHyperplaneLSH(dim, n_bits, seed), on_dual, "LSH")
    rows += _hash_rows(f"DR-BERT+sign({dim})", SignHash(dim), on_dual, "sign")
    return rows


def _saved_model_rows(
    model_dirs: Sequence[str | Path], names: Sequence[str], dual_encoder_dir: str | Path, groups: Sequence,
    on_dual: dict[str, VectorRerankEvaluator], vectors_of: Callable[[Any, str | Path], tuple[np.ndarray, np.ndarray]],
) -> list:
    """Rows of each saved model, named by ``names`` where given, else by its method and bits.

    ITQ, LSH and sign models hash the DR-BERT's vectors (``on_dual``). So does a Hash-BERT whose
    encoder is that DR-BERT; one that embeds its own encoder, or references a different one (BPR,
    unfrozen Hash-BERT), is scored on ``vectors_of(its encoder, its directory)``.
    """
    from hashbert.io import artefact_fingerprint
    from hashbert.models.hashing.hash_bert import HashBert, resolve_encoder_dir
    from hashbert.models.registry import load_model

    rows = []
    dual_sha = artefact_fingerprint(dual_encoder_dir)
    for i, directory in enumerate(model_dirs):
        model = load_model(directory)
        if not isinstance(model, HashBert):  # ITQ, LSH, sign: hashers over the DR-BERT vectors
            label = names[i] if i < len(names) else f"DR-BERT+{type(model).__name__}({model.n_bits})"
            rows += _hash_rows(label, model, on_dual, type(model).__name__)
            continue
        label = names[i] if i < len(names) else _default_name(model)
        if model.config.encoder_embedded or model.config.encoder_checksums_sha256 != dual_sha:  # its own encoder
            own_dir = resolve_encoder_dir(model.config, Path(directory))
            evals = _evaluators(groups, *vectors_of(model.dual_encoder, own_dir))
        else:
            evals = on_dual
        rows += _hash_rows(label, model.heads, evals, label.split("(")[0])
    return rows


def evaluate_hashing(
    test_path: str | Path,
    dual_encoder_dir: str | Path,
    bits: Sequence[int] = DEFAULT_BITS,
    model_dirs: Sequence[str | Path] = (),
    names: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    max_groups: int = 0,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> list[tuple[str, dict[str, float], str]]:
    """Rows ``(name, metrics, method)``: the float DR-BERT, LSH and sign baselines, then each saved model.

    Args:
        test_path: test file (groups of candidates).
        dual_encoder_dir: the trained DR-BERT: its vectors feed LSH, sign, ITQ and frozen Hash-BERT heads.
        bits: code lengths of the LSH rows.
        model_dirs: saved ``hash_bert`` (Hash-BERT, BPR) and ``itq``/``lsh``/``sign_hash`` models.
        names: row names for ``model_dirs`` (default: method and bits).
        cache_dir: cache of the test vectors (None: no cache).
        max_groups: evaluate a seeded subsample of this many contexts (0: all).
        seed: seed of that subsample and of the LSH hyperplanes.

    Returns:
        Rows in table order; ``metrics`` has the re-rank metrics (fractions), ``bytes/response``,
        ``n_bits`` and ``retention`` (R10@1 / the float row's R10@1); ``method`` labels the plot line.
    """
    from hashbert.data.vector_cache import group_vectors
    from hashbert.models.dual_encoder import DualEncoder

    if len(names) > len(model_dirs):
        raise ValueError(f"{len(names)} names given for {len(model_dirs)} models")
    groups = _test_groups(test_path, max_groups, seed)
    index = index_groups(groups)
    params = {"max_groups": max_groups, "seed": seed}

    def vectors_of(model: Any, model_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
        return group_vectors(model, model_dir, index, {"test": test_path}, params, cache_dir, batch_size, progress)

    dual = DualEncoder.load(dual_encoder_dir)
    context_vecs, response_vecs = vectors_of(dual, Path(dual_encoder_dir))
    float_metrics = _float_metrics(groups, index, context_vecs, response_vecs, dual.dim)
    on_dual = _evaluators(groups, context_vecs, response_vecs)
    rows = [("DR-BERT (float)", float_metrics, "DR-BERT float")]
    rows += _baseline_rows(dual.dim, bits, seed, on_dual)
    rows += _saved_model_rows(model_dirs, names, dual_encoder_dir, groups, on_dual, vectors_of)
    for _, metrics, _ in rows:
        metrics["retention"] = metrics["R10@1"] / float_metrics["R10@1"] if float_metrics["R10@1"] else float("nan")
    return rows


def with_retention(rows: Sequence[tuple[str, dict[str, float]]], reference: str) -> list[tuple[str, dict[str, float]]]:
    """Copy of ``rows`` with ``retention`` = R10@1 / that of the row named ``reference`` (e.g. the seed's DR-BERT)."""
    base = next((m.get("R10@1") for n, m in rows if n == reference), None)
    return [(n, {**m, "retention": m["R10@1"] / base} if base and "R10@1" in m else dict(m)) for n, m in rows]


def plot_series(rows: Sequence[tuple[str, dict[str, float], str]], bits: Sequence[int]) -> dict[str, list]:
    """R10@1 against bits, one series per method (and scoring); the float row as a flat reference line."""
    series: dict[str, list] = {}
    for name, metrics, method in rows:
        if method == "DR-BERT float":
            series[name] = [(float(b), metrics["R10@1"]) for b in bits]
        else:
            series.setdefault(method, []).append((float(metrics["n_bits"]), metrics["R10@1"]))
    return series


def write_hashing_report(
    test_path: str | Path, dual_encoder_dir: str | Path, out_dir: str | Path, bits: Sequence[int] = DEFAULT_BITS,
    model_dirs: Sequence[str | Path] = (), names: Sequence[str] = (), cache_dir: str | Path | None = None,
    max_groups: int = 0, seed: int = 0, batch_size: int = 64, progress: bool = False,
    seed_rows: Sequence[tuple[str, dict[str, float]]] = (),
) -> tuple[list[tuple[str, dict[str, float]]], list[tuple[str, dict[str, float]]]]:
    """``evaluate_hashing``, then write ``hashing.csv``, ``hashing.json``, ``hashing.md`` and ``hashing.png``.

    Args:
        seed_rows: the seed's rows (``report.load_seed_rows(2)``), given a retention against its
            ``DR-BERT`` row and written beneath ours in ``hashing.md``.

    Returns:
        Our rows and the seed's rows, as ``(name, metrics)``.
    """
    from hashbert.evaluation.report import markdown_table, plot_metric_vs, write_results_csv, write_results_json
    from hashbert.io import atomic_write

    out_dir = Path(out_dir)
    full = evaluate_hashing(
        test_path, dual_encoder_dir, bits, model_dirs, names, cache_dir, max_groups, seed, batch_size, progress
    )
    rows = [(name, metrics) for name, metrics, _ in full]
    seed_rows = with_retention(seed_rows, "DR-BERT")
    write_results_csv(out_dir / "hashing.csv", rows, CSV_COLUMNS)
    write_results_json(out_dir / "hashing.json", rows)
    text = markdown_table(rows, extra_columns=EXTRA_COLUMNS)
    if seed_rows:
        seed_table = markdown_table(seed_rows, extra_columns=EXTRA_COLUMNS[1:])
        text += "\nThe seed's table (retention against its DR-BERT row):\n\n" + seed_table
    with atomic_write(out_dir / "hashing.md", "w") as handle:
        handle.write(text)
    all_bits = sorted({int(m["n_bits"]) for _, m, method in full if method != "DR-BERT float"})
    plot_metric_vs(out_dir / "hashing.png", plot_series(full, all_bits), "bits per response", "R10@1",
                   "R10@1 against code length (dashed: float context . code)", logx=True)
    return rows, seed_rows
