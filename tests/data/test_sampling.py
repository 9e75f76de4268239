from __future__ import annotations

import pytest

from hashbert.data.sampling import seeded_subsample


def test_seeded_subsample_keeps_order_and_is_deterministic():
    items = list(range(100))
    a = seeded_subsample(items, 10, seed=3)
    assert a == sorted(a) and len(set(a)) == 10 and a == seeded_subsample(items, 10, seed=3)
    assert a != seeded_subsample(items, 10, seed=4)


def test_seeded_subsample_all_when_zero_or_large():
    assert seeded_subsample("abc", 0, seed=0) == ["a", "b", "c"]
    assert seeded_subsample("abc", 5, seed=0) == ["a", "b", "c"]
    with pytest.raises(ValueError):
        seeded_subsample("abc", -1, seed=0)
