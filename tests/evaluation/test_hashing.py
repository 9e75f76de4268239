"""``evaluate hashing``: the table's rows, retention, bytes, files and the plot, on a small real slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbert.config import HashBertConfig, HashConfig
from hashbert.evaluation.hashing import plot_series, with_retention, write_hashing_report
from hashbert.models.hashing.hash_bert import HashBert, referencing
from hashbert.models.hashing.lsh import ITQ
from hashbert.models.hashing.tower_heads import HashHeads


def test_with_retention_against_a_named_row():
    rows = with_retention([("DR-BERT", {"R10@1": 0.5}), ("LSH", {"R10@1": 0.25}), ("blank", {})], "DR-BERT")
    assert rows[0][1]["retention"] == 1.0 and rows[1][1]["retention"] == 0.5 and "retention" not in rows[2][1]


def test_plot_series_one_line_per_method():
    rows = [("DR-BERT (float)", {"R10@1": 0.7, "n_bits": 12288}, "DR-BERT float"),
            ("LSH(64) sym", {"R10@1": 0.3, "n_bits": 64}, "LSH sym"),
            ("LSH(128) sym", {"R10@1": 0.4, "n_bits": 128}, "LSH sym")]
    series = plot_series(rows, [64, 128])
    assert series == {"DR-BERT (float)": [(64.0, 0.7), (128.0, 0.7)], "LSH sym": [(64.0, 0.3), (128.0, 0.4)]}


@pytest.mark.slow
def test_report_rows_and_files(_base_dual_encoder, small_corpus, tmp_path):
    dual_dir = _base_dual_encoder.save(tmp_path / "dual")
    torch.manual_seed(0)
    heads = HashHeads(HashConfig(n_bits=64, hidden=32), _base_dual_encoder.dim)
    HashBert(referencing(HashBertConfig(hash=heads.config), dual_dir), _base_dual_encoder, heads).save(tmp_path / "hb")
    rng = np.random.default_rng(0)
    ITQ(128, iterations=3).fit(rng.standard_normal((300, 384)), rng.standard_normal((300, 384))).save(tmp_path / "itq")
    rows, seed_rows = write_hashing_report(
        small_corpus / "test.txt", dual_dir, tmp_path / "out", bits=(64, 128),
        model_dirs=[tmp_path / "itq", tmp_path / "hb"], names=["ITQ(128)"], cache_dir=tmp_path / "cache",
        seed_rows=[("DR-BERT", {"R10@1": 0.5}), ("DR-BERT+LSH(256)", {"R10@1": 0.25})],
    )
    names = [name for name, _ in rows]
    assert names == [
        "DR-BERT (float)", "DR-BERT+LSH(64) sym", "DR-BERT+LSH(64) asy", "DR-BERT+LSH(128) sym",
        "DR-BERT+LSH(128) asy", "DR-BERT+sign(384) sym", "DR-BERT+sign(384) asy", "ITQ(128) sym", "ITQ(128) asy",
        "Hash-BERT(64) sym", "Hash-BERT(64) asy",
    ]
    float_row = rows[0][1]
    assert float_row["retention"] == 1.0 and float_row["bytes/response"] == 384 * 4
    assert rows[1][1]["bytes/response"] == 8 and rows[-1][1]["retention"] == rows[-1][1]["R10@1"] / float_row["R10@1"]
    assert seed_rows[1][1]["retention"] == 0.5
    for name in ("hashing.csv", "hashing.json", "hashing.md", "hashing.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "| DR-BERT (float)" in (tmp_path / "out" / "hashing.md").read_text()
    assert any((tmp_path / "cache").iterdir())
