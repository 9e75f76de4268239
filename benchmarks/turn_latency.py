"""Milliseconds from a new utterance to the candidates, stage by stage: DR-BERT and HDR-BERT on torch, ONNX
Runtime fp32 and ONNX Runtime int8, at turns 1, 5, 10 and 20 of real Chit-Chat test dialogues.

Batch 1, CPU, 1 and 2 threads (torch, ONNX Runtime and faiss alike). Per turn the stages are timed one after
the other in the same run and summed into the end-to-end figure:

* ``tokenize``: DR-BERT the whole truncated history (<= 128 tokens); HDR the newest utterance (<= 48);
* ``encode``: the context tower (DR-BERT) or the utterance encoder (HDR, its slots then cached);
* ``aggregate``: HDR's aggregator over the cached turns (0 for DR-BERT);
* ``hash``: 256-bit random-hyperplane codes of the context vector (projection, sign, packing);
* ``search``: Hamming top-10 with faiss over the Chit-Chat pool (115,709 responses: LSH codes of the DR-BERT
  response vectors of the ``--pool-bundle``) and over 1M random codes.

Medians and p99 over ``--dialogues`` x ``--repeats`` samples per turn. ``--order round-robin`` (default) lets
the models take turns call by call (every timed call cold: the other models evicted its weights from the CPU
caches); ``--order serving`` lets each model answer every dialogue's turn back to back, as a server process
does (warm), searching the pool only. Pool encoding throughput: responses
per second through the response tower at batch 64. Latency does not depend on training, so the DR-BERT is
the base encoder; the HDR models are the ones given (3-layer and 1-layer aggregators). Each model directory
needs ``hashbert export onnx --quantize int8`` first (``--export`` does it for those missing it).

Usage::

    python benchmarks/turn_latency.py --hdr runs/onnx/hdr-l3/model --hdr runs/onnx/hdr-l1/model --export
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import torch
from search_bench import cpuinfo_field
from turn_cost import load_dialogues

from hashbert.codes import binarize, pack_codes
from hashbert.config.inference import InferenceConfig
from hashbert.evaluation.report import markdown_table, plot_metric_vs
from hashbert.index import BinaryFlatIndex
from hashbert.io import atomic_write
from hashbert.models.hdr.cache import CachedTurn, HdrCache
from hashbert.models.onnx import export_onnx, load_inference_model

logger = logging.getLogger("turn_latency")

TURNS = (1, 5, 10, 20)
STAGES = ("tokenize", "encode", "aggregate", "hash", "search")
RUNTIMES = {"torch": InferenceConfig("torch"), "onnx fp32": InferenceConfig("onnx"),
            "onnx int8": InferenceConfig("onnx", "int8")}
N_BITS, TOP_K = 256, 10
ORDERS = ("round-robin", "serving")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=Path, default=Path("runs/chitchat/test.txt"), help="dialogues come from here")
    parser.add_argument("--dual-encoder", type=Path, default=Path("runs/onnx/dual-base"),
                        help="DR-BERT model directory (created from the base encoder when missing)")
    parser.add_argument("--hdr", type=Path, action="append", default=None, help="HDR model directory (repeat)")
    parser.add_argument("--pool-bundle", type=Path, default=Path("runs/bench/dr"),
                        help="a float bundle of the Chit-Chat pool: its vectors give the pool's codes")
    parser.add_argument("--random-codes", type=int, default=1_000_000, help="size of the random code index")
    parser.add_argument("--dialogues", type=int, default=5, help="real test dialogues of 20 turns")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per turn and dialogue")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--warm-calls", type=int, default=0,
                        help="untimed calls of the same model right before each timed one (0: the timed call follows "
                        "the other models' calls, its weights out of the CPU caches)")
    parser.add_argument("--order", choices=ORDERS, default="round-robin",
                        help="round-robin: the models take turns call by call (each timed call cold); serving: "
                        "each model answers every dialogue's turn back to back (warm, as in a server), "
                        "searching the pool only")
    parser.add_argument("--pool-encode", type=int, default=1024, help="responses encoded for the throughput")
    parser.add_argument("--pool-only", type=Path, default=None, metavar="RESPONSES",
                        help="measure the pool encoding throughput alone, on the first --pool-encode lines of this "
                        "responses file (e.g. runs/chitchat/responses.txt): no bundle, no latency")
    parser.add_argument("--export", action="store_true", help="export models that lack ONNX graphs")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results",
                        help="turn_latency.md/.csv go here")
    parser.add_argument("--plot", type=Path, default=Path("docs/img/turn-latency.png"), help="ms per turn plot")
    return parser.parse_args(argv)


def ensure_models(args: argparse.Namespace) -> dict[str, Path]:
    """Row name -> model directory, exported (fp32 + int8) when ``--export`` and missing."""
    from hashbert.config import DualEncoderConfig
    from hashbert.models.dual_encoder import DualEncoder
    from hashbert.models.hdr.model import HdrModel

    if not (args.dual_encoder / "config.json").is_file():
        DualEncoder.from_base(DualEncoderConfig()).save(args.dual_encoder)
    models = {"DR-BERT": args.dual_encoder}
    for path in args.hdr or []:
        config = HdrModel.load(path).config
        encoder = f", {config.utterance_layers}-layer encoder" if config.utterance_layers else ""
        name = f"HDR {config.aggregator} {config.layers}-layer{encoder}"
        models[f"{name} ({path.parent.name})" if name in models else name] = path  # same architecture: the run
    for path in models.values():
        if args.export and not (path / "onnx" / "manifest.json").is_file():
            export_onnx(path, "int8")
    return models


def search_indexes(pool_bundle: Path, random_codes: int, planes: np.ndarray) -> dict[str, BinaryFlatIndex]:
    """``pool``: LSH codes of the bundle's float response vectors; ``1M``: random codes."""
    vectors = np.load(pool_bundle / "index" / "data.npy", mmap_mode="r")
    pool = BinaryFlatIndex(N_BITS)
    pool.add(pack_codes(binarize(np.asarray(vectors) @ planes)))
    rng = np.random.default_rng(0)
    big = BinaryFlatIndex(N_BITS)
    big.add(rng.integers(0, 256, (random_codes, N_BITS // 8), dtype=np.uint8))
    return {"pool": pool, f"{random_codes // 1000}k random": big}


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def hash_and_search(vector: np.ndarray, planes: np.ndarray, indexes: dict) -> dict[str, float]:
    """The ``hash`` stage and one ``search:<index>`` stage per index, in ms."""
    start = time.perf_counter()
    codes = pack_codes(binarize(np.asarray(vector, dtype=np.float32).reshape(1, -1) @ planes))
    times = {"hash": _ms(start)}
    for name, index in indexes.items():
        start = time.perf_counter()
        index.search(codes, TOP_K)
        times[f"search:{name}"] = _ms(start)
    return times


@torch.inference_mode()
def dr_bert_turn(model, history: tuple[str, ...], planes, indexes) -> dict[str, float]:
    """One DR-BERT turn: tokenize the history, encode it, hash, search."""
    start = time.perf_counter()
    tokens = model.batcher.contexts([history])
    times = {"tokenize": _ms(start)}
    start = time.perf_counter()
    if hasattr(model, "context_graph"):
        vector = model.context_graph(**{k: v.numpy() for k, v in tokens.items()})[0]
    else:
        vector = model.context_encoder(**tokens).numpy()
    times.update(encode=_ms(start), aggregate=0.0)
    return {**times, **hash_and_search(vector, planes, indexes)}


@torch.inference_mode()
def hdr_turn(model, cache: HdrCache, utterance: str, planes, indexes) -> dict[str, float]:
    """One HDR turn on a copy of ``cache``: tokenize and encode the utterance, aggregate, hash, search."""
    trial = cache.copy()
    start = time.perf_counter()
    tokens = model.tokenize_utterances([utterance])
    times = {"tokenize": _ms(start)}
    start = time.perf_counter()
    slots, mask = model.utterance_slots(**tokens)  # (1, k, H), (1, k): torch tensors or NumPy arrays
    times["encode"] = _ms(start)
    trial.turns.append(CachedTurn(utterance, trial.next_index, None, slots[0], mask[0]))
    start = time.perf_counter()
    vector = trial.context_vectors()
    times["aggregate"] = _ms(start)
    return {**times, **hash_and_search(vector, planes, indexes)}


def time_models(
    models: dict, dialogues, planes, indexes, repeats: int, warm_calls: int = 0, order: str = "round-robin"
) -> dict[str, dict[int, list[dict]]]:
    """Row -> turn -> one stage-times dict per (dialogue, repeat), after one untimed warm-up pass per turn.

    ``round-robin`` (cold): the models take turns call by call, so a slow spell of the machine (a shared 2-core
    VM: the same graph's median moved by 1.6x between two runs minutes apart) hits every row alike, and each
    timed call follows the other models' calls, which evict its weights from the CPU caches. ``warm_calls``
    untimed calls of the same model on the same input right before each timed one, searching the pool (the first
    index) only, measure a process that answers turns back to back. ``serving``: each model answers turn t of
    every dialogue ``repeats + 1`` times in a row (the first pass untimed), searching the pool only, and the
    models take turns block by block: a server process answering many conversations with one model, its weights
    in the caches because its previous call was another conversation's turn (a 1M-code scan, 32 MB, would evict
    them: ``main`` gives this order the pool alone).
    """
    samples = {name: {t: [] for t in TURNS} for name in models}
    pool_only = dict(list(indexes.items())[:1])
    caches = {(name, j): HdrCache(m) if hasattr(m, "aggregate_dialogues") else None
              for name, m in models.items() for j in range(len(dialogues))}

    def call(name: str, j: int, t: int, timed: bool) -> None:
        # the warm calls search the pool alone: a scan of the 1M codes (32 MB) would evict the weights
        for call_indexes in [pool_only] * warm_calls + [indexes]:
            if caches[name, j] is not None:
                times = hdr_turn(models[name], caches[name, j], dialogues[j][t - 1], planes, call_indexes)
            else:
                times = dr_bert_turn(models[name], dialogues[j][:t], planes, call_indexes)
        if timed:
            samples[name][t].append(times)

    for t in range(1, max(TURNS) + 1):
        if t in TURNS:
            passes = range(repeats + 1)  # the first pass warms up
            calls = ([(name, j, i) for name in models for i in passes for j in range(len(dialogues))]
                     if order == "serving" else
                     [(name, j, i) for i in passes for j in range(len(dialogues)) for name in models])
            for name, j, i in calls:
                call(name, j, t, timed=i > 0)
        for (_, j), cache in caches.items():
            if cache is not None:
                cache.append(dialogues[j][t - 1])
    return samples


def summarise(samples: dict[int, list[dict[str, float]]], index_names: list[str]) -> dict[int, dict[str, float]]:
    """Turn -> p50 of each stage and p50/p99 end to end per index (the sum of the stages of each sample)."""
    out = {}
    for t, rows in samples.items():
        stats = {f"{stage} p50": statistics.median(r[stage] for r in rows) for stage in STAGES[:4]}
        for name in index_names:
            totals = np.array([sum(r[s] for s in STAGES[:4]) + r[f"search:{name}"] for r in rows])
            stats[f"search {name} p50"] = statistics.median(r[f"search:{name}"] for r in rows)
            stats[f"e2e {name} p50"], stats[f"e2e {name} p99"] = np.percentile(totals, [50, 99])
        out[t] = stats
    return out


def pool_throughputs(models: dict, responses: list[str], repeats: int = 3) -> dict:
    """Row -> responses per second through the response tower at batch 64 (median of ``repeats`` passes, the
    models taking turns pass by pass)."""
    for model in models.values():
        model.encode_responses(responses[:64], 64)  # warm-up
    seconds = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.encode_responses(responses, 64)
            seconds[name].append(time.perf_counter() - start)
    return {name: len(responses) / statistics.median(times) for name, times in seconds.items()}


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def measure(args, models: dict[str, Path], dialogues, planes, indexes) -> tuple[list[dict], list[dict]]:
    """Every (model, runtime, threads): latency rows (one per turn) and pool throughput rows."""
    latency, throughput = [], []
    pool = (args.pool_bundle / "index" / "texts.jsonl").read_text(encoding="utf-8").splitlines()
    responses = [json.loads(line) for line in pool[: args.pool_encode]]
    for threads in [int(t) for t in args.threads.split(",")]:
        set_threads(threads)
        loaded = {(name, runtime): load_inference_model(path, InferenceConfig(i.runtime, i.onnx_precision, threads))
                  for name, path in models.items() for runtime, i in RUNTIMES.items()}
        # Round-robin on one thread only: with two, ONNX Runtime's worker threads spin-wait after each call and
        # slowed the torch model run right after them 3x (DR-BERT, turn 10: 150 against 38-45 ms run alone).
        groups = [loaded] if threads == 1 else [{key: model} for key, model in loaded.items()]
        samples = {}
        for group in groups:
            samples.update(time_models(group, dialogues, planes, indexes, args.repeats, args.warm_calls, args.order))
        for (name, runtime), rows in samples.items():
            summary = summarise(rows, list(indexes))
            latency += [{"model": name, "runtime": runtime, "threads": threads, "turn": t, **stats}
                        for t, stats in summary.items()]
            logger.info("%s %s %d threads: turn 10 e2e pool p50 %.2f ms", name, runtime, threads,
                        summary[10]["e2e pool p50"])
        throughput += throughput_rows({runtime: loaded[("DR-BERT", runtime)] for runtime in RUNTIMES}, responses,
                                      threads)
    return latency, throughput


def throughput_rows(by_runtime: dict, responses: list[str], threads: int) -> list[dict]:
    """One row per runtime: the DR-BERT response tower's pool encoding rate at ``threads``."""
    rates = pool_throughputs(by_runtime, responses)
    return [{"runtime": runtime, "threads": threads, "responses/s": rate} for runtime, rate in rates.items()]


def pool_only(args: argparse.Namespace, dual_encoder: Path) -> str:
    """The pool encoding table alone (torch vs ONNX fp32 vs int8 at each thread count), from a responses file."""
    lines = args.pool_only.read_text(encoding="utf-8").splitlines()[: args.pool_encode]
    throughput = []
    for threads in [int(t) for t in args.threads.split(",")]:
        set_threads(threads)
        by_runtime = {name: load_inference_model(dual_encoder, InferenceConfig(i.runtime, i.onnx_precision, threads))
                      for name, i in RUNTIMES.items()}
        throughput += throughput_rows(by_runtime, lines, threads)
    return f"CPU: {cpu_name()} ({os.cpu_count()} cores)\n\n" + pool_table(throughput, args)


def cpu_name() -> str:
    """The CPU model and its int8 dot-product units (what ONNX Runtime's int8 products run on)."""
    flags = (cpuinfo_field("flags") or "").split()
    units = [flag for flag in ("avx2", "avx_vnni", "avx512_vnni", "amx_int8") if flag in flags]
    return f"{cpuinfo_field('model name') or '?'}, {'/'.join(units) or 'no AVX2'}"


def pool_table(throughput: list[dict], args: argparse.Namespace) -> str:
    """Markdown: responses/s per runtime and thread count, and each one's ratio to torch at the same threads."""
    base = {r["threads"]: r["responses/s"] for r in throughput if r["runtime"] == "torch"}
    pool_rows = [(f"{r['runtime']} | {r['threads']} thr", {**r, "x torch": r["responses/s"] / base[r["threads"]]})
                 for r in throughput]
    return (
        f"### Pool encoding (DR-BERT response tower, batch 64, {args.pool_encode} responses, median of 3)\n\n"
        + markdown_table(pool_rows, columns=(), extra_columns=(("responses/s", ".0f"), ("x torch", ".2f")))
    )


def report(latency: list[dict], throughput: list[dict], args: argparse.Namespace, index_names: list[str]) -> str:
    """Markdown: end-to-end p50/p99 per model and turn, the stage split at turn 10, the pool throughput."""
    e2e_columns = [(f"e2e {n} {q}", ".2f") for n in index_names for q in ("p50", "p99")]
    rows = [(f"{r['model']} | {r['runtime']} | {r['threads']} thr | turn {r['turn']}", r) for r in latency]
    stages = [(f"{r['model']} | {r['runtime']} | {r['threads']} thr", r) for r in latency if r["turn"] == 10]
    stage_columns = [(f"{s} p50", ".3f") for s in STAGES[:4]] + [(f"search {n} p50", ".3f") for n in index_names]
    return (
        f"Batch 1, CPU ({os.cpu_count()} cores, shared), {args.dialogues} real Chit-Chat test dialogues x "
        f"{args.repeats} repeats per turn, {args.order} order, {args.warm_calls} untimed warm call(s) of the same "
        f"model before each timed one; milliseconds; e2e = tokenize + encode + aggregate + hash + search "
        f"(top-{TOP_K}, {N_BITS}-bit codes). Load average at the end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.\n\n### End to end per turn\n\n"
        + markdown_table(rows, columns=(), extra_columns=e2e_columns)
        + "\n### Stages at turn 10 (p50)\n\n" + markdown_table(stages, columns=(), extra_columns=stage_columns)
        + "\n" + pool_table(throughput, args)
    )


def write_outputs(latency: list[dict], throughput: list[dict], text: str, args: argparse.Namespace) -> None:
    """turn_latency.csv and .md under ``--out-dir``, the plot at ``--plot``."""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out_dir / "turn_latency.csv", "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(latency[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(latency)
    with atomic_write(args.out_dir / "turn_latency.md", "w") as handle:
        handle.write(text)
    threads = min(r["threads"] for r in latency)
    series = {}
    for r in latency:
        if r["threads"] == threads:
            series.setdefault(f"{r['model']} {r['runtime']}", []).append((r["turn"], r["e2e pool p50"]))
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot_metric_vs(args.plot, series, "dialogue turn", "ms per turn, end to end (p50)",
                   f"Turn latency over the Chit-Chat pool (batch 1, {threads} thread)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    models = ensure_models(args)
    if args.pool_only:
        print(pool_only(args, models["DR-BERT"]))
        return
    dialogues = load_dialogues(args.test, max(TURNS), args.dialogues, 0)
    planes = np.random.default_rng(0).standard_normal((384, N_BITS)).astype(np.float32)
    indexes = search_indexes(args.pool_bundle, args.random_codes, planes)
    if args.order == "serving":  # the first index: the pool
        indexes = dict(list(indexes.items())[:1])
    latency, throughput = measure(args, models, dialogues, planes, indexes)
    text = report(latency, throughput, args, list(indexes))
    write_outputs(latency, throughput, text, args)
    print(text)


if __name__ == "__main__":
    main()
