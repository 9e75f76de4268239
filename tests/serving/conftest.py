"""Shared fixtures of the serving tests: one real bundle (a small HDR model over ~300 real Chit-Chat responses),
built once per session, and its loaded retriever."""

from __future__ import annotations

from pathlib import Path

import pytest

POOL_SIZE = 300


@pytest.fixture(scope="session")
def served_model_dir(tmp_path_factory) -> Path:
    """A small HDR-BERT-Trs-MV on the real encoder, untrained (a non-trivial merge so the aggregator counts)."""
    import torch

    from hashbert.config import EncoderConfig, HdrConfig
    from hashbert.models.hdr.model import HdrModel

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = HdrConfig(
        encoder=EncoderConfig(max_response_length=16, max_context_turns=4), aggregator="trs-mv",
        utterance_length=16, vectors_per_utterance=3, layers=2, heads=4, ffn_dim=256,
    )
    model = HdrModel.build(config)
    with torch.no_grad():
        model.aggregator.merge.weight.add_(0.05 * torch.randn_like(model.aggregator.merge.weight))
    return Path(model.eval().save(tmp_path_factory.mktemp("served-model") / "model"))


@pytest.fixture(scope="session")
def served_bundle(served_model_dir, small_corpus, tmp_path_factory) -> Path:
    """``build_bundle`` over the first ``POOL_SIZE`` real responses of the small corpus (read-only for tests)."""
    from hashbert.serving.bundle import build_bundle

    root = tmp_path_factory.mktemp("served-bundle")
    lines = (small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines()[:POOL_SIZE]
    responses = root / "responses.txt"
    responses.write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_bundle(served_model_dir, responses, root / "bundle", progress=False)
    return root / "bundle"


@pytest.fixture(scope="session")
def served_retriever(served_bundle):
    """The bundle's ``Retriever``, loaded once (apps under test share it; never mutate it)."""
    from hashbert.serving.retriever import Retriever

    return Retriever.load(served_bundle, threads=1)
