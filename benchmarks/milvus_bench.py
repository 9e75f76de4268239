"""Milvus (a local 2.3 standalone server) vs in-process faiss on the same binary codes, in one run.

For N codes of 256 bits (made as ``search_bench.py`` makes them) it measures: the insert rate into Milvus (rows/s,
flush and index build included) and the faiss build time; exact search (Milvus ``BIN_FLAT`` vs
``BinaryFlatIndex``) and IVF search (Milvus ``BIN_IVF_FLAT`` vs ``BinaryIVFIndex``, the same nlist, two nprobe)
at batch 1 and 64 (median ms per query over repeats) with recall@100 against exact search (tie-aware: the
multiset of returned distances against the exact one); QPS of single-query searches from 8 concurrent client
threads; the server's RSS (every process of its group, from /proc) beside the faiss structures' bytes.

Usage::

    python benchmarks/milvus_bench.py --vectors pool.npy          # real response vectors -> LSH codes, N = 1M
    python benchmarks/milvus_bench.py --n 100000 --repeats 3      # smaller and quicker
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_bench import describe_machine, flip_bits, make_codes, pool_vectors  # noqa: E402

from hashbert.index import BinaryFlatIndex, BinaryIVFIndex  # noqa: E402
from hashbert.index.milvus import MilvusBinaryIndex  # noqa: E402
from hashbert.index.milvus_client import recreate_collection  # noqa: E402
from hashbert.index.milvus_local import LocalMilvus  # noqa: E402

logger = logging.getLogger("milvus_bench")
K = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=Path, help="float response vectors (n, d) .npy (default: synthetic)")
    parser.add_argument("--n", type=int, default=1_000_000, help="stored codes")
    parser.add_argument("--bits", type=int, default=256, help="code length")
    parser.add_argument("--nlist", type=int, default=1024, help="IVF lists (Milvus: per segment)")
    parser.add_argument("--nprobe", type=int, nargs=2, default=[8, 64], help="the two nprobe values timed")
    parser.add_argument("--queries", type=int, default=200, help="distinct queries (stored codes, 10%% bits flipped)")
    parser.add_argument("--repeats", type=int, default=5, help="timed batches of 64 per setting")
    parser.add_argument("--single-queries", type=int, default=30, help="timed single queries per setting")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads for QPS")
    parser.add_argument("--qps-seconds", type=float, default=10.0, help="duration of each QPS run")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="faiss threads per batch search")
    parser.add_argument("--uri", help="an existing Milvus server (default: start one in a temporary directory)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "milvus.md",
                        help="where the markdown table is written")  # fmt: skip
    return parser.parse_args(argv)


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes, MiB (VmRSS from /proc)."""
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
    return total / 1024


def latency_ms(search: Callable[[np.ndarray], object], queries: np.ndarray, batch: int, args) -> float:
    """Median milliseconds per query of ``search`` on batches of ``batch`` (one untimed warm-up first)."""
    calls = args.single_queries if batch == 1 else args.repeats
    search(queries[:batch])
    times = []
    for i in range(calls):
        start_row = (i * batch) % (len(queries) - batch + 1)
        block = queries[start_row : start_row + batch]
        start = time.perf_counter()
        search(block)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3 / batch


def qps(search: Callable[[np.ndarray], object], queries: np.ndarray, clients: int, seconds: float) -> float:
    """Single-query searches per second from ``clients`` threads searching for ``seconds``."""
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def client(c: int) -> None:
        i = c
        while time.perf_counter() < stop:
            search(queries[i % len(queries)][None])
            counts[c] += 1
            i += clients

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def recall(exact_d: np.ndarray, got_d: np.ndarray) -> float:
    """Mean over queries of |multiset(got distances) & multiset(exact distances)| / k: recall@k that ties cannot
    sway (every returned id is at its true distance, so equal multisets mean an exact answer)."""
    hits = [sum((Counter(e.tolist()) & Counter(g.tolist())).values()) for e, g in zip(exact_d, got_d, strict=True)]
    return float(np.mean(hits)) / exact_d.shape[1]


def fill_milvus(uri: str, name: str, codes: np.ndarray, index_type: str, nlist: int) -> tuple[MilvusBinaryIndex, dict]:
    """A fresh collection holding ``codes``; returns it and the seconds of insert, flush and index hand-off."""
    recreate_collection(uri, name)
    index = MilvusBinaryIndex(codes.shape[1] * 8, uri, name, index_type=index_type, nlist=nlist, show_progress=True,
                              timeout=120.0)  # fmt: skip
    start = time.perf_counter()
    index.add(codes)
    inserted = time.perf_counter()
    index.flush()
    flushed = time.perf_counter()
    index.wait_for_index()
    done = time.perf_counter()
    times = {"insert_s": inserted - start, "flush_s": flushed - inserted, "index_s": done - flushed}
    logger.info("%s: %s", name, {key: round(value, 1) for key, value in times.items()})
    return index, times


def measure(name: str, search, queries, exact_d, args, extra: dict) -> dict:
    """One table row: latency at batch 1 and 64, QPS of 8 clients, recall@100."""
    row = {"method": name, **extra}
    row["ms_b1"] = latency_ms(search, queries, 1, args)
    row["ms_b64"] = latency_ms(search, queries, 64, args)
    row["qps"] = qps(search, queries, args.clients, args.qps_seconds)
    row["recall"] = recall(exact_d, search(queries)[0]) if exact_d is not None else 1.0
    logger.info("%s", row)
    return row


def top_k(index) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return lambda queries: index.search(queries, K)


def faiss_rows(codes: np.ndarray, queries: np.ndarray, args) -> tuple[list[dict], np.ndarray]:
    """The faiss rows, and the exact top-k distances (nq, K) that recall is measured against."""
    flat = BinaryFlatIndex(args.bits, threads=args.threads)
    start = time.perf_counter()
    flat.add(codes)
    build = {"build_s": time.perf_counter() - start, "mb": flat.nbytes / 2**20}
    rows = [measure("faiss BinaryFlatIndex", top_k(flat), queries, None, args, build)]
    exact_d = flat.search(queries, K)[0]
    ivf = BinaryIVFIndex(args.bits, nlist=args.nlist, threads=args.threads)
    ivf.add(codes)
    start = time.perf_counter()
    ivf.search(queries[:1], K)  # trains and fills the lists
    build = {"build_s": time.perf_counter() - start, "mb": ivf.nbytes / 2**20}
    for nprobe in args.nprobe:
        ivf.nprobe = nprobe
        rows.append(measure(f"faiss BinaryIVFIndex nprobe={nprobe}", top_k(ivf), queries, exact_d, args, build))
    return rows, exact_d


def milvus_rows(uri: str, codes: np.ndarray, queries: np.ndarray, exact_d: np.ndarray, args) -> list[dict]:
    flat, times = fill_milvus(uri, "bench_flat", codes, "BIN_FLAT", args.nlist)
    rate = {"build_s": sum(times.values()), "insert_rows_s": len(codes) / times["insert_s"], **times}
    rows = [measure("Milvus BIN_FLAT", top_k(flat), queries, None, args, rate)]
    got = flat.search(queries, K)[0]
    assert recall(exact_d, got) == 1.0, "Milvus BIN_FLAT is not exact"
    ivf, times = fill_milvus(uri, "bench_ivf", codes, "BIN_IVF_FLAT", args.nlist)
    rate = {"build_s": sum(times.values()), "insert_rows_s": len(codes) / times["insert_s"], **times}
    for nprobe in args.nprobe:
        ivf.nprobe = nprobe
        rows.append(measure(f"Milvus BIN_IVF_FLAT nprobe={nprobe}", top_k(ivf), queries, exact_d, args, rate))
    return rows


def markdown(rows: list[dict], header: list[str]) -> str:
    lines = [*header, "", "| index | build s | insert rows/s | ms/query b=1 | ms/query b=64 | QPS (8 clients) | "
             "recall@100 |", "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        rate = f"{row['insert_rows_s']:,.0f}" if "insert_rows_s" in row else "-"
        lines.append(f"| {row['method']} | {row['build_s']:.1f} | {rate} | {row['ms_b1']:.2f} | {row['ms_b64']:.3f} | "
                     f"{row['qps']:,.0f} | {row['recall']:.3f} |")  # fmt: skip
    by_name = {row["method"]: row for row in rows}
    lines += ["", "| ratio Milvus / faiss | ms/query b=1 | ms/query b=64 | QPS (8 clients) |",
              "| --- | --- | --- | --- |"]
    for milvus_name in [name for name in by_name if name.startswith("Milvus")]:
        faiss_name = milvus_name.replace("Milvus BIN_FLAT", "faiss BinaryFlatIndex")
        m, f = by_name[milvus_name], by_name[faiss_name.replace("Milvus BIN_IVF_FLAT", "faiss BinaryIVFIndex")]
        lines.append(f"| {milvus_name.removeprefix('Milvus ')} | {m['ms_b1'] / f['ms_b1']:.2f} | "
                     f"{m['ms_b64'] / f['ms_b64']:.2f} | {m['qps'] / f['qps']:.3f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rng = np.random.default_rng(args.seed)
    vectors, real = pool_vectors(args.vectors, rng)
    codes = make_codes(vectors, args.bits, args.n, 0.03, rng)
    queries = flip_bits(codes[rng.integers(len(codes), size=args.queries)], 0.10, rng)
    rows, exact_d = faiss_rows(codes, queries, args)
    with tempfile.TemporaryDirectory(prefix="milvus-bench-") as tmp:
        server = None if args.uri else LocalMilvus(Path(tmp) / "data").start()
        try:
            uri = args.uri or server.uri
            rows += milvus_rows(uri, codes, queries, exact_d, args)
            server_rss = rss_mb(server.pids) if server else float("nan")
        finally:
            if server:
                server.stop()
    load = os.getloadavg()
    header = [
        f"N = {args.n:,} x {args.bits} bits ({'real vectors: ' + str(args.vectors) if real else 'synthetic vectors'}"
        f" -> LSH codes), {args.queries} queries, k = {K}, nlist = {args.nlist}; faiss threads = {args.threads}",
        f"{describe_machine()}; load average {load[0]:.1f}; Milvus server RSS (both collections loaded) "
        f"{server_rss:,.0f} MiB vs faiss codes {codes.nbytes / 2**20:,.0f} MiB per index",
    ]
    table = markdown(rows, header)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
