"""The vector cache: reused only with an identical fingerprint; any change of model, data or selection recomputes."""

from __future__ import annotations

import json

import numpy as np

from hashbert.data.vector_cache import cached_arrays, fingerprint_key, vector_fingerprint


def _setup(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "checksums.json").write_text(json.dumps({"model.safetensors": "aa"}))
    data = tmp_path / "train.txt"
    data.write_text("1\thi\thello\n")
    return model, data


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"contexts": np.full((2, 3), self.calls, np.float32), "responses": np.zeros((1, 3), np.float32)}


def test_hit_reuses_and_changes_recompute(tmp_path):
    model, data = _setup(tmp_path)
    compute, cache = Counter(), tmp_path / "cache"

    def get(params=None):
        fp = vector_fingerprint(model, {"train": data}, params or {"max_train_pairs": 100, "seed": 42})
        return cached_arrays(cache, fp, compute)

    first = get()
    assert compute.calls == 1 and get()["contexts"][0, 0] == 1 and compute.calls == 1  # hit
    data.write_text("1\thi\thello there\n")  # the data file changed
    assert get()["contexts"][0, 0] == 2 and compute.calls == 2
    (model / "checksums.json").write_text(json.dumps({"model.safetensors": "bb"}))  # the model was retrained
    get()
    assert compute.calls == 3
    get({"max_train_pairs": 200, "seed": 42})  # another selection
    assert compute.calls == 4
    assert first["responses"].shape == (1, 3)


def test_tampered_or_damaged_entry_is_recomputed(tmp_path):
    model, data = _setup(tmp_path)
    compute, cache = Counter(), tmp_path / "cache"
    fp = vector_fingerprint(model, {"train": data}, {"seed": 1})
    cached_arrays(cache, fp, compute)
    entry = cache / fingerprint_key(fp)
    np.save(entry / "contexts.npy", np.zeros((2, 3), np.float32))  # checksum no longer matches
    assert cached_arrays(cache, fp, compute)["contexts"][0, 0] == 2 and compute.calls == 2
    stored = json.loads((entry / "fingerprint.json").read_text())
    stored["params"]["seed"] = 2  # an entry whose recorded fingerprint differs from the key's
    (entry / "fingerprint.json").write_text(json.dumps(stored))
    cached_arrays(cache, fp, compute)
    assert compute.calls == 3
