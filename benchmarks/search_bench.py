"""Exact top-100 search speed: binary codes vs float vectors vs a NumPy scan, against the memory-bandwidth floor.

For N in {100k, 1M}, codes of 128/256/512 bits, batches of 1 and 256 queries and 1 and 2 threads, it
times ``BinaryFlatIndex`` (faiss ``IndexBinaryFlat``), ``FloatIndex`` (faiss ``IndexFlatIP``) at
d = 384 and 768, and ``NumpyBinaryIndex`` (100k only, one thread: it is slow). Each figure is the
median over repeats, also given as a multiple of the bandwidth floor (bytes scanned / measured read
bandwidth) and as a speed-up over 768-d float flat search with the same N, batch and threads.

Usage::

    python benchmarks/search_bench.py --quick                  # smoke run, N = 100k
    python benchmarks/search_bench.py --vectors pool.npy       # real response vectors -> LSH codes
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from hashbert.codes import binarize, pack_codes
from hashbert.index.binary import BinaryFlatIndex
from hashbert.index.dense import FloatIndex
from hashbert.index.reference import NumpyBinaryIndex

logger = logging.getLogger("search_bench")

K = 100
BATCHES = (1, 256)
FLUSH_BYTES = 1 << 30
COLUMNS = [
    "method", "N", "width", "batch", "threads", "ms_per_batch", "ms_per_query",
    "mb_scanned", "floor_ms", "x_floor", "speedup_vs_float768",
]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--vectors",
        type=Path,
        help="float response vectors (n, d) .npy; codes = random-hyperplane "
        "signs of them, replicated with a few flipped bits up to N (default: synthetic codes)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 100k only, few repeats")
    parser.add_argument("--sizes", type=int, nargs="+", help="database sizes N (default 100000 1000000)")
    parser.add_argument("--bits", type=int, nargs="+", default=[128, 256, 512], help="code lengths in bits")
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 768], help="float vector dimensions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to time")
    parser.add_argument("--repeats", type=int, help="timed batches of 256 per setting (default 5, quick 3)")
    parser.add_argument("--single-queries", type=int, help="timed single queries per setting (default 30, quick 10)")
    parser.add_argument("--flip", type=float, default=0.03, help="fraction of bits flipped in replicated codes")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="read a 1 GiB buffer before every timed call so the "
        "database comes from DRAM, not cache (default: warm, as a serving process sees it)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results",
                        help="where search.md and search.csv are written")  # fmt: skip
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([100_000] if args.quick else [100_000, 1_000_000])
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.single_queries = args.single_queries or (10 if args.quick else 30)
    return args


def measure_bandwidth(threads: int, repeats: int = 7) -> float:
    """Read bandwidth in GB/s: median time for ``threads`` threads to reduce their share of a 1 GiB array."""
    data = np.ones(FLUSH_BYTES // 4, dtype=np.float32)
    parts = np.array_split(data, threads)
    times = []
    for _ in range(repeats + 1):
        workers = [threading.Thread(target=np.maximum.reduce, args=(part,)) for part in parts]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        times.append(time.perf_counter() - start)
    return data.nbytes / statistics.median(times[1:]) / 1e9


def pool_vectors(path: Path | None, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Real response vectors from ``path``, else 50k synthetic clustered low-rank vectors (d = 384)."""
    if path is not None:
        vectors = np.load(path, allow_pickle=False).astype(np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"--vectors must hold a 2-D array, got shape {vectors.shape}")
        return vectors, True
    n, dim, rank, clusters = 50_000, 384, 64, 500
    centres = rng.standard_normal((clusters, rank)).astype(np.float32)
    latent = centres[rng.integers(clusters, size=n)] + 0.7 * rng.standard_normal((n, rank), dtype=np.float32)
    return latent @ rng.standard_normal((rank, dim), dtype=np.float32), False


def make_codes(vectors: np.ndarray, n_bits: int, n: int, flip: float, rng: np.random.Generator) -> np.ndarray:
    """(n, n_bits/8) codes: signs of random hyperplanes on centred vectors, copies beyond the pool get bits flipped."""
    hyperplanes = rng.standard_normal((vectors.shape[1], n_bits), dtype=np.float32)
    pool = pack_codes(binarize((vectors - vectors.mean(axis=0)) @ hyperplanes))
    if len(pool) >= n:
        return pool[rng.permutation(len(pool))[:n]]
    copies = pool[rng.integers(len(pool), size=n - len(pool))]
    return np.concatenate([pool, flip_bits(copies, flip, rng)])


def flip_bits(codes: np.ndarray, fraction: float, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    """Copy of ``codes`` with ``round(fraction * n_bits)`` random bits of each row flipped."""
    n_bits = codes.shape[1] * 8
    per_row = max(1, round(fraction * n_bits))
    out = codes.copy()
    for start in range(0, len(codes), chunk):
        bits = np.unpackbits(out[start : start + chunk], axis=1)  # (rows, n_bits)
        cols = rng.integers(n_bits, size=(len(bits), per_row))
        bits[np.arange(len(bits))[:, None], cols] ^= 1
        out[start : start + chunk] = np.packbits(bits, axis=1)
    return out


def time_search(search: Callable[[np.ndarray], object], queries: np.ndarray, batch: int, args, flush) -> float:
    """Median seconds per call of ``search`` on ``batch`` queries (one untimed warm-up call first)."""
    calls = args.single_queries if batch == 1 else args.repeats
    search(queries[:batch])
    times = []
    for i in range(calls):
        block = queries[i % len(queries)][None] if batch == 1 else queries[:batch]
        if flush is not None:
            np.maximum.reduce(flush)
        start = time.perf_counter()
        search(block)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_rows(method, n, width, row_bytes, search, queries, threads_list, args, flush) -> list[dict]:
    rows = []
    for threads in threads_list:
        for batch in BATCHES:
            seconds = time_search(lambda q, t=threads: search(q, t), queries, batch, args, flush)
            rows.append({"method": method, "N": n, "width": width, "batch": batch, "threads": threads,
                         "seconds": seconds, "bytes": n * row_bytes})  # fmt: skip
            logger.info(
                "%s N=%d width=%d batch=%d threads=%d: %.2f ms", method, n, width, batch, threads, seconds * 1e3
            )
    return rows


def bench_binary(n: int, vectors: np.ndarray, args, rng, flush) -> list[dict]:
    rows = []
    for n_bits in args.bits:
        codes = make_codes(vectors, n_bits, n, args.flip, rng)
        queries = flip_bits(codes[rng.integers(n, size=256)], 0.10, rng)  # near-duplicates of stored codes
        index = BinaryFlatIndex(n_bits)
        index.add(codes)

        def search(q, threads, index=index):
            index.threads = threads
            return index.search(q, K)

        rows += bench_rows("BinaryFlatIndex", n, n_bits, n_bits // 8, search, queries, args.threads, args, flush)
        if n <= 100_000:
            reference = NumpyBinaryIndex(n_bits)
            reference.add(codes)
            numpy_search = lambda q, threads, index=reference: index.search(q, K)  # noqa: E731
            rows += bench_rows("NumpyBinaryIndex", n, n_bits, n_bits // 8, numpy_search, queries, [1], args, flush)
    return rows


def bench_float(n: int, args, rng, flush) -> list[dict]:
    rows = []
    for dim in args.dims:
        index = FloatIndex(dim)
        for start in range(0, n, 100_000):  # build in chunks: no second copy of n x dim floats
            index.add(rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32))
        queries = rng.standard_normal((256, dim), dtype=np.float32)

        def search(q, threads, index=index):
            index.threads = threads
            return index.search(q, K)

        rows += bench_rows(f"FloatIndex d={dim}", n, dim, dim * 4, search, queries, args.threads, args, flush)
        del index
    return rows


def add_ratios(rows: list[dict], bandwidth: dict[int, float]) -> None:
    """Fill floor, x floor and the speed-up over 768-d float search with the same N, batch and threads."""
    float768 = {(r["N"], r["batch"], r["threads"]): r["seconds"] for r in rows if r["method"] == "FloatIndex d=768"}
    for row in rows:
        floor = row["bytes"] / (bandwidth[row["threads"]] * 1e9)
        base = float768.get((row["N"], row["batch"], row["threads"]))
        row.update(ms_per_batch=row["seconds"] * 1e3, ms_per_query=row["seconds"] * 1e3 / row["batch"],
                   mb_scanned=row["bytes"] / 1e6, floor_ms=floor * 1e3, x_floor=row["seconds"] / floor,
                   speedup_vs_float768=base / row["seconds"] if base else float("nan"))  # fmt: skip


def markdown(rows: list[dict], header_lines: list[str]) -> str:
    lines = [*header_lines, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def target_lines(rows: list[dict]) -> list[str]:
    """The search targets: 1M x 256-bit single-query search within 1.5x of the floor, >= 50x faster than float-768."""
    lines = []
    for row in rows:
        if (row["method"], row["N"], row["width"], row["batch"]) == ("BinaryFlatIndex", 1_000_000, 256, 1):
            lines.append(
                f"- target check, 1M x 256 bits, batch 1, {row['threads']} thread(s): {row['ms_per_batch']:.2f} ms = "
                f"{row['x_floor']:.2f}x the bandwidth floor (target <= 1.5x), {row['speedup_vs_float768']:.0f}x "
                "faster than 768-d float flat (target >= 50x)"
            )
    return lines


def cpuinfo_field(name: str) -> str | None:
    """The first value of field ``name`` in /proc/cpuinfo (``model name``, ``flags``); None where there is none."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.split(":", 1)[0].strip() == name), None)


def describe_machine() -> str:
    cpu = cpuinfo_field("model name") or platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores; numpy {np.__version__}, faiss {faiss.__version__}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rng = np.random.default_rng(args.seed)
    vectors, real = pool_vectors(args.vectors, rng)
    source = (
        f"codes: random-hyperplane signs of {len(vectors)} real vectors from {args.vectors}, replicated up to N "
        f"with {args.flip:.0%} of bits flipped per copy"
        if real
        else "WARNING: NO REAL CODES (--vectors not given). Codes are signs of random hyperplanes on 50k synthetic "
        "clustered low-rank vectors, replicated with flipped bits: figures are NOT from real encoded responses."
    )
    print(source)
    load_before = os.getloadavg()[0]
    bandwidth = {t: measure_bandwidth(t) for t in sorted(set(args.threads))}
    flush = np.ones(FLUSH_BYTES // 4, dtype=np.float32) if args.cold else None
    rows = []
    for n in args.sizes:
        rows += bench_binary(n, vectors, args, rng, flush)
        rows += bench_float(n, args, rng, flush)
    add_ratios(rows, bandwidth)
    load = f"load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end on {os.cpu_count()} cores"
    if max(load_before, os.getloadavg()[0]) > 0.5:
        load += " (WARNING: other processes were running; timings, above all 2-thread ones, are noisy)"
    header = [
        f"# Exact top-{K} search ({'quick' if args.quick else 'full'} run, {'cold' if args.cold else 'warm'} cache)",
        "",
        f"- machine: {describe_machine()}; {load}",
        "- read bandwidth: " + ", ".join(f"{bw:.1f} GB/s with {t} thread(s)" for t, bw in bandwidth.items()),
        f"- {source}",
        f"- medians over {args.single_queries} single queries (batch 1) or {args.repeats} batches (batch 256)",
        "- floor_ms = bytes scanned once / read bandwidth; x_floor = measured / floor (below 1: data was in cache)",
        "- faiss parallelises over queries only, so a single query runs on one thread whatever threads says",
        "- NumpyBinaryIndex is timed at N = 100k with one thread only (pure NumPy, single-threaded, slow)",
    ]
    table = markdown(rows, header) + "\n".join(["", *target_lines(rows)]) + "\n"
    print(table)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "search.md").write_text(table, encoding="utf-8")
    with open(args.out_dir / "search.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
