"""Full-rank judges: Relevance-100 (a dual-encoder or cross-encoder judge) and PPL-100 (a causal LM).

Relevance-100: each retrieved response is scored against its context by a judge that is not the
retriever under test: a dual-encoder as (cosine + 1) / 2, or a cross-encoder as sigmoid(logit); the
scores are averaged over the retrieved responses, then over contexts, x100. PPL-100: per context, exp
of the mean token loss over the response tokens of its retrieved responses (all tokens pooled), then
averaged over contexts. The causal LM reads ``context [SEP] response`` (see ``models.cross.causal_lm``).

References: SPEC "Full-rank protocol"; Su et al. 2023 (TOIS, HDR + DSH) sec. 5 (Relevance-100, PPL-100).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class DualEncoderJudge:
    """(cosine + 1) / 2 of a dual-encoder's context and response vectors, in [0, 1]."""

    def __init__(self, model, name: str = "") -> None:
        self.model = model
        self.name = name or "dual-encoder"

    def score(self, contexts: Sequence[Sequence[str]], responses: Sequence[str]) -> np.ndarray:
        """(N,) relevance of each (context, response) pair; each distinct text is encoded once."""
        unique_contexts = list(dict.fromkeys(contexts))
        unique_responses = list(dict.fromkeys(responses))
        c = _unit(self.model.encode_contexts(unique_contexts))  # (Nc, H)
        r = _unit(self.model.encode_responses(unique_responses))  # (Nr, H)
        c_row = {text: i for i, text in enumerate(unique_contexts)}
        r_row = {text: i for i, text in enumerate(unique_responses)}
        cosine = np.einsum("nh,nh->n", c[[c_row[x] for x in contexts]], r[[r_row[x] for x in responses]])
        return (cosine + 1.0) / 2.0


class CrossEncoderJudge:
    """sigmoid(logit) of a cross-encoder (BERT, SA-BERT, BERT-FP), in [0, 1]."""

    def __init__(self, model, name: str = "") -> None:
        self.model = model
        self.name = name or model.row_name

    def score(self, contexts: Sequence[Sequence[str]], responses: Sequence[str]) -> np.ndarray:
        """(N,) relevance of each (context, response) pair."""
        return 1.0 / (1.0 + np.exp(-self.model.score_pairs(list(contexts), list(responses)).astype(np.float64)))


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def load_relevance_judge(directory: str | Path, retriever: str | Path | None = None):
    """A judge from a saved dual-encoder or cross-encoder directory, refusing the retriever under test itself."""
    from hashbert.models.registry import load_model
    from hashbert.models.serialization import model_type_of

    if retriever is not None and Path(directory).resolve() == Path(retriever).resolve():
        raise ValueError(f"the relevance judge {directory} is the retriever under test; train a separate judge")
    kind = model_type_of(directory)
    judges = {"dual_encoder": DualEncoderJudge, "cross_encoder": CrossEncoderJudge}
    if kind not in judges:
        raise ValueError(f"{directory}: a {kind!r} model cannot judge relevance; use a dual_encoder or cross_encoder")
    return judges[kind](load_model(directory), name=f"{kind} {directory}")


def judge_methods(
    contexts: Sequence[Sequence[str]], retrieved_by_method: dict[str, Sequence[Sequence[str]]],
    judge=None, scorer=None,
) -> dict[str, dict[str, float]]:
    """Relevance-k (with ``judge``) and PPL-k (with ``scorer``) of every method's retrieved lists.

    Each distinct (context, response) pair is scored once, however many methods retrieved it (the
    float and re-ranked rows overlap heavily).

    Args:
        contexts: (nq,) contexts, each a sequence of turns.
        retrieved_by_method: ``{method: (nq,) lists of retrieved response texts}``.
        judge: ``.score(contexts, responses) -> (N,) in [0, 1]``, or None.
        scorer: ``.response_losses(contexts, responses) -> ((N,) summed NLL, (N,) token counts)``, or None.
    Returns: ``{method: {"Relevance-100": ..., "PPL-100": ...}}`` (keys for the given judges only).
    """
    pairs = list(dict.fromkeys(
        (q, r) for lists in retrieved_by_method.values() for q, rs in enumerate(lists) for r in rs
    ))
    row = {pair: i for i, pair in enumerate(pairs)}
    pair_contexts, pair_responses = [contexts[q] for q, _ in pairs], [r for _, r in pairs]
    relevance = judge.score(pair_contexts, pair_responses) if judge is not None else None
    nll, counts = scorer.response_losses(pair_contexts, pair_responses) if scorer is not None else (None, None)
    out: dict[str, dict[str, float]] = {}
    for method, lists in retrieved_by_method.items():
        if len(lists) != len(contexts):
            raise ValueError(f"{method}: {len(lists)} retrieved lists for {len(contexts)} contexts")
        rows = [[row[(q, r)] for r in rs] for q, rs in enumerate(lists)]
        out[method] = {}
        if relevance is not None:
            out[method]["Relevance-100"] = 100.0 * float(np.mean([relevance[r].mean() for r in rows]))
        if nll is not None:
            perplexities = [np.exp(nll[r].sum() / max(int(counts[r].sum()), 1)) for r in rows]
            out[method]["PPL-100"] = float(np.mean(perplexities))
    return out


def relevance_at_k(judge, contexts: Sequence[Sequence[str]], retrieved: Sequence[Sequence[str]]) -> float:
    """Mean over contexts of the mean judge score of its retrieved responses, x100 (Relevance-100 for 100)."""
    return judge_methods(contexts, {"": retrieved}, judge=judge)[""]["Relevance-100"]


def perplexity_at_k(scorer, contexts: Sequence[Sequence[str]], retrieved: Sequence[Sequence[str]]) -> float:
    """Mean over contexts of exp(summed response-token loss / response tokens of its retrieved responses) (PPL-100)."""
    return judge_methods(contexts, {"": retrieved}, scorer=scorer)[""]["PPL-100"]
