"""``OnnxHdrModel``: an ``HdrModel``'s inference API on ONNX Runtime, over NumPy arrays.

It offers what ``HdrCache`` (``encode_utterances``, ``aggregate_dialogues``), serving (``encode_contexts``,
``encode_responses``) and the re-rank evaluation (``rerank_scores``) call, so a cache of an ONNX model keeps
NumPy arrays and a turn never touches torch. The exported utterance and response graphs keep the first ``k``
positions of the sequence; a text shorter than that is padded (masked) up to ``k`` tokens before the call,
and the slots past its end are zeroed, as the torch model does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hashbert.models.hdr.aggregators import MultiVectors
from hashbert.models.hdr.model import TURN_CHUNK, MultiVectorScoring, dialogue_turn_index, newest_turns, turn_index_of
from hashbert.models.onnx.runtime import OnnxGraph

logger = logging.getLogger(__name__)


def encode_by_length(fn: Callable, tokens: dict[str, np.ndarray], chunk: int, progress: bool = False, desc: str = ""):
    """``fn(input_ids, attention_mask) -> arrays`` over length-sorted chunks (longest first, each cut to its longest
    text), every output's rows back in input order."""
    lengths = tokens["attention_mask"].sum(1)
    order = np.argsort(-lengths, kind="stable")
    results: list[np.ndarray] | None = None
    for start in tqdm(range(0, len(order), chunk), desc=desc, disable=not progress, unit="batch"):
        rows = order[start : start + chunk]
        width = int(lengths[rows[0]])
        outputs = fn(tokens["input_ids"][rows, :width], tokens["attention_mask"][rows, :width])
        if results is None:
            results = [np.zeros((len(order), *o.shape[1:]), dtype=o.dtype) for o in outputs]
        for result, output in zip(results, outputs, strict=True):
            result[rows] = output
    return results


def _numpy_tokens(tokens: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in tokens.items()}


class OnnxHdrModel(MultiVectorScoring):
    """HDR-BERT's inference on ONNX Runtime.

    Args:
        hdr: the loaded ``HdrModel`` (config, tokenizer, text rules and fingerprint are used; not its weights).
        graphs: ``utterance``, ``response`` and ``aggregator`` graph files.
        threads: intra-op threads of the sessions.
    """

    runtime, training = "onnx", False

    def __init__(self, hdr, graphs: dict[str, Path], threads: int = 0) -> None:
        self.config, self.tokenizer, self.batcher = hdr.config, hdr.tokenizer, hdr.batcher
        self.utterance_tokenizer = hdr.utterance_tokenizer
        self.fingerprint = hdr.fingerprint
        self.dim, self.multi_vector, self.row_name = hdr.dim, hdr.multi_vector, hdr.row_name
        self.utterance_graph = OnnxGraph(graphs["utterance"], threads)
        self.response_graph = OnnxGraph(graphs["response"], threads)
        self.aggregator_graph = OnnxGraph(graphs["aggregator"], threads)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    # ------------------------------------------------------------------ per turn (HdrCache)

    def tokenize_utterances(self, utterances: Sequence[str]) -> dict[str, np.ndarray]:
        """(U, L) int64 token arrays of single utterances, truncated from the left to ``utterance_length``."""
        return self.utterance_tokenizer(utterances)

    def _slots(self, graph: OnnxGraph, k: int, input_ids: np.ndarray, attention_mask: np.ndarray):
        short = k - input_ids.shape[1]
        if short > 0:  # the graph reads positions 1..k-1: give it at least k (masked) tokens
            input_ids = np.pad(input_ids, ((0, 0), (0, short)), constant_values=self.pad_id)
            attention_mask = np.pad(attention_mask, ((0, 0), (0, short)))
        slots, mask = graph(input_ids=input_ids, attention_mask=attention_mask)
        return slots * mask[..., None], mask

    def utterance_slots(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        """(U, L) tokens -> (U, k, H) float32 slot vectors and (U, k) bool mask."""
        return self._slots(self.utterance_graph, self.config.slots, input_ids, attention_mask)

    def response_slots(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        """(N, L) tokens -> (N, k', H) float32 response vectors (normalised as configured) and (N, k') mask."""
        return self._slots(self.response_graph, self.config.slots if self.multi_vector else 1, input_ids,
                           attention_mask)

    def encode_utterances(self, utterances: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Utterances -> (U, k, H) float32 slots and (U, k) bool mask (``HdrCache``'s step), grouped by length."""
        slots, mask = encode_by_length(self.utterance_slots, self.tokenize_utterances(utterances), TURN_CHUNK)
        return slots, mask

    def aggregate_dialogues(self, dialogues: Sequence[tuple[Sequence, Sequence]]) -> tuple[np.ndarray, np.ndarray]:
        """Several dialogues' cached turns (per dialogue: its slots and masks, oldest first) -> (B, k_out, H)
        float32 context vectors and their (B, k_out) mask, in one aggregator call."""
        slots = np.stack([np.asarray(s, dtype=np.float32) for d in dialogues for s in d[0]])  # (U, k, H)
        masks = np.stack([np.asarray(m, dtype=bool) for d in dialogues for m in d[1]])  # (U, k)
        turn_index = dialogue_turn_index([len(d[0]) for d in dialogues])  # (B, T)
        return self.aggregator_graph(slots=slots, slot_mask=masks, turn_index=turn_index)

    # ------------------------------------------------------------------ batches (evaluation, bundles)

    def encode_context_vectors(self, contexts: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False):
        """Contexts (sequences of turns) -> ``MultiVectors`` (N, k_out, H); each distinct utterance is encoded once."""
        contexts = [newest_turns(c, self.config.max_turns) for c in contexts]
        utterances = list(dict.fromkeys(u for c in contexts for u in c))
        row = {u: i for i, u in enumerate(utterances)}
        tokens = self.tokenize_utterances(utterances)
        slots, slot_mask = encode_by_length(self.utterance_slots, tokens, batch_size, progress, "utterances")
        vectors, masks = [], []
        for start in range(0, len(contexts), batch_size):
            turn_index = turn_index_of(contexts[start : start + batch_size], row).numpy()
            batch_vectors, batch_mask = self.aggregator_graph(slots=slots, slot_mask=slot_mask, turn_index=turn_index)
            vectors.append(batch_vectors)
            masks.append(batch_mask)
        return MultiVectors(np.concatenate(vectors), np.concatenate(masks))

    def encode_response_vectors(self, responses: Sequence[str], batch_size: int = 128, progress: bool = False):
        """Responses -> ``MultiVectors`` (N, k', H)."""
        tokens = _numpy_tokens(self.batcher.responses(list(responses)))
        vectors, mask = encode_by_length(self.response_slots, tokens, batch_size, progress, "responses")
        return MultiVectors(vectors, mask)

