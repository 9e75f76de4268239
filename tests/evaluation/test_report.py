"""Seed-format tables, packaged seed rows, CSV/JSON results and plots."""

from __future__ import annotations

import csv
import io
import json
import math
from importlib import resources

import numpy as np
import pytest

from hashbert.evaluation.report import (
    FULLRANK_COLUMNS,
    METRIC_COLUMNS,
    load_seed_fullrank,
    load_seed_rows,
    markdown_table,
    plot_metric_vs,
    side_by_side,
    write_results_csv,
    write_results_json,
)

DR_BERT = {"R10@1": 0.5451, "R10@2": 0.7331, "R10@5": 0.9442, "MRR": 0.7505, "P@1": 0.6097, "MAP": 0.7369}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_markdown_table_golden():
    rows = [("DR-BERT", DR_BERT), ("Hash-BERT(256)", {"R10@1": 0.3992, "MRR": 0.6264, "contexts": 1000})]
    expected = (
        "| Models         | R10@1 | R10@2 | R10@5 | MRR   | P@1   | MAP   |\n"
        "| -------------- | ----- | ----- | ----- | ----- | ----- | ----- |\n"
        "| DR-BERT        | 54.51 | 73.31 | 94.42 | 75.05 | 60.97 | 73.69 |\n"
        "| Hash-BERT(256) | 39.92 |       |       | 62.64 |       |       |\n"
    )
    assert markdown_table(rows) == expected


def test_markdown_table_nan_is_blank_and_extra_columns():
    rows = [("LSH(256)", {"R10@1": float("nan"), "MRR": np.float32(0.5), "bytes/response": 32, "retention": 0.875})]
    table = markdown_table(
        rows, columns=("R10@1", "MRR"), extra_columns=(("bytes/response", ",d"), ("retention", ".1%"))
    )
    assert table.splitlines() == [
        "| Models   | R10@1 | MRR   | bytes/response | retention |",
        "| -------- | ----- | ----- | -------------- | --------- |",
        "| LSH(256) |       | 50.00 | 32             | 87.5%     |",
    ]


def test_markdown_table_without_percent():
    table = markdown_table([("m", {"Recall@100": 0.0624})], columns=("Recall@100",), percent=False)
    assert "| m      | 0.0624     |" in table.splitlines()


def test_markdown_table_escapes_pipes():
    assert "a\\|b" in markdown_table([("a|b", DR_BERT)])


@pytest.mark.parametrize(("table", "count"), [(1, 17), (2, 11), (3, 12), (4, 8)])
def test_seed_rows_count(table, count):
    rows = load_seed_rows(table)
    assert len(rows) == count
    assert rows[0][0] == "BERT"


@pytest.mark.parametrize("table", [0, 5])
def test_unknown_seed_table_raises(table):
    with pytest.raises(ValueError, match="unknown seed table"):
        load_seed_rows(table)


def test_seed_rows_print_as_the_seed_wrote_them():
    text = resources.files("hashbert.evaluation").joinpath("seed_tables.csv").read_text(encoding="utf-8")
    records = list(csv.DictReader(io.StringIO(text)))
    ours = [row for table in (1, 2, 3, 4) for row in load_seed_rows(table)]
    assert len(ours) == len(records)
    for record, (name, values) in zip(records, ours, strict=True):
        assert name == record["model"]
        line = markdown_table([(name, values)]).splitlines()[2]
        cells = [cell.strip() for cell in line.strip("|").split("|")][1:]
        assert cells == [f"{float(record[c]):.2f}" if record[c] else "" for c in METRIC_COLUMNS]


def test_seed_blank_rows_have_no_values():
    rows = dict(load_seed_rows(4))
    assert rows["HDR-BERT-Trs"] == {}
    assert rows["DR-BERT"]["R10@1"] == pytest.approx(0.5451)


def test_seed_fullrank():
    rows = load_seed_fullrank()
    assert [name for name, _ in rows] == ["LSH(256)", "Hash-BERT(256)"]
    assert rows[0][1] == {"Top-100": 0.0624, "Relevance-100": 64.04, "PPL-100": 29.1741}
    table = markdown_table(rows, columns=(), extra_columns=FULLRANK_COLUMNS)
    assert "| LSH(256)       | 0.0624  | 64.04         | 29.1741 |" in table.splitlines()


def test_side_by_side():
    rows = side_by_side([("DR-BERT", DR_BERT)], load_seed_rows(1)[:2])
    assert [name for name, _ in rows] == ["DR-BERT", "BERT (seed)", "SA-BERT (seed)"]
    assert side_by_side([], [("x", {})], seed_label="paper") == [("x (paper)", {})]


def test_write_results_csv(tmp_path):
    path = tmp_path / "out" / "results.csv"
    write_results_csv(path, [("DR-BERT", DR_BERT), ("blank", {"MRR": float("nan")})], columns=("R10@1", "MRR"))
    assert path.read_text(encoding="utf-8") == "model,R10@1,MRR\nDR-BERT,0.5451,0.7505\nblank,,\n"
    assert [p.name for p in path.parent.iterdir()] == ["results.csv"]  # no temp file left


def test_write_results_json(tmp_path):
    path = tmp_path / "results.json"
    rows = [("b", {"MRR": np.float64(0.25), "contexts": np.int64(7), "MAP": float("nan")}), ("a", {})]
    write_results_json(path, rows)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == [
        {"model": "b", "metrics": {"MRR": 0.25, "contexts": 7, "MAP": None}},
        {"model": "a", "metrics": {}},
    ]
    assert isinstance(data[0]["metrics"]["contexts"], int)


@pytest.mark.parametrize("logx", [False, True])
def test_plot_metric_vs_writes_png(tmp_path, logx):
    path = tmp_path / "r_vs_bits.png"
    series = {"Hash-BERT": [(4096, 0.46), (256, 0.40), (1024, 0.47)], "LSH": [(256, 0.36), (4096, 0.36)]}
    plot_metric_vs(path, series, xlabel="bits", ylabel="R10@1", title="R10@1 vs bits", logx=logx)
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("series", "logx"),
    [({}, False), ({"a": []}, False), ({"a": [(0.0, 1.0)]}, True)],
)
def test_plot_metric_vs_bad_input_raises(tmp_path, series, logx):
    with pytest.raises(ValueError):
        plot_metric_vs(tmp_path / "x.png", series, "x", "y", "t", logx=logx)
    assert not (tmp_path / "x.png").exists()


def test_metric_columns():
    assert METRIC_COLUMNS == ("R10@1", "R10@2", "R10@5", "MRR", "P@1", "MAP")
    assert not math.isnan(load_seed_rows(1)[0][1]["MAP"])
