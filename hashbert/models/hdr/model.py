"""HDR-BERT: hierarchical dense retrieval. Each utterance is encoded alone, its vectors cached, and a
light aggregator turns the cached history into the context vector(s).

Per utterance the context-side encoder keeps ``k`` vectors (``config.slots``): slot 0 is the pooled
vector (for ``pooling=cls`` exactly the [CLS] vector, so the ``k`` slots are exactly the first ``k``
token vectors), slots 1..k-1 the token vectors after it. Utterances are truncated to
``utterance_length`` tokens from the left (a long turn keeps its end, which the next turn answers)
and the history to the newest ``max_context_turns`` turns, in training, in ``encode_*`` and in the
incremental ``HdrCache(model)`` of ``hdr.cache`` alike (``newest_turns``). The response side is
DR-BERT's: one pooled vector, or ``k`` slot vectors for ``colbert``. Scores are ``maxsim`` (the cosine
for single-vector variants).

Saved like every hashbert model: ``config.json`` (type ``hdr``), ``model.safetensors``, ``backbone/``,
``checksums.json``.

References: "Towards Efficient Coarse-grained Dialogue Response Selection" (ACM TOIS 2023), HDR sec. 3.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashbert.config import HdrConfig, config_to_dict
from hashbert.io import artefact_fingerprint
from hashbert.models.encoder import (
    FastTokenizer,
    TextBatcher,
    TextEncoder,
    initial_weights_dir,
    keep_layers,
    load_backbone,
    load_tokenizer,
    torch_tokens,
)
from hashbert.models.hashing.scoring import index_groups
from hashbert.models.hdr.aggregators import HdrAggregator, MultiVectors, group_maxsim_scores
from hashbert.models.modes import eval_mode
from hashbert.models.serialization import load_backbone_model, save_model_dir

logger = logging.getLogger(__name__)

MODEL_TYPE = "hdr"
ROW_NAMES = {
    "trs": "HDR-BERT-Trs", "trs-mv": "HDR-BERT-Trs-MV", "colbert": "HDR-BERT-ColBERT", "gpt-mv": "HDR-BERT-GPT-MV"
}
TRAIN_CHUNK = 64  # utterances per encoder call in training, grouped by length so little padding is computed
TURN_CHUNK = 8  # utterances per encoder call for concurrent turns: a short turn is not padded to a long one


def newest_turns(turns: Sequence[str], max_turns: int) -> tuple[str, ...]:
    """The history truncation shared by training, scoring and the cache: the newest ``max_turns`` turns."""
    return tuple(turns[-max_turns:])


def slot_vectors(encoder: TextEncoder, k: int, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Run ``encoder`` and keep ``k`` vectors per text: the pooled vector, then token vectors 1..k-1.

    Args:
        input_ids, attention_mask: (N, L) int64.

    Returns:
        slots: (N, k, H) float; mask: (N, k) bool (False where the text has fewer than k tokens).
    """
    hidden = encoder.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (N, L, H)
    pooled = encoder.pool(hidden, attention_mask)[:, None]  # (N, 1, H)
    tokens, token_mask = hidden[:, 1:k], attention_mask[:, 1:k].bool()
    short = k - 1 - tokens.shape[1]  # texts of fewer than k tokens in the whole batch
    if short > 0:
        tokens = nn.functional.pad(tokens, (0, 0, 0, short))
        token_mask = nn.functional.pad(token_mask, (0, short))
    ones = torch.ones_like(attention_mask[:, :1], dtype=torch.bool)  # (N, 1); no len(): an exported graph keeps N
    return torch.cat([pooled, tokens], dim=1), torch.cat([ones, token_mask], dim=1)


def by_length(attention_mask: torch.Tensor, chunk: int) -> list[tuple[torch.Tensor, int]]:
    """Chunks of row indices, longest texts first, with each chunk's longest length (its padded width)."""
    lengths = attention_mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    return [(order[i : i + chunk], int(lengths[order[i]])) for i in range(0, len(order), chunk)]


def encode_by_length(
    fn: Callable, tokens: dict[str, torch.Tensor], chunk: int, progress: bool = False, desc: str = ""
):
    """``fn(input_ids, attention_mask) -> (slots, mask)`` over length-sorted chunks, rows back in input order."""
    n = len(tokens["input_ids"])
    out_slots, out_mask = None, None
    for rows, width in tqdm(by_length(tokens["attention_mask"], chunk), desc=desc, disable=not progress, unit="batch"):
        slots, mask = fn(tokens["input_ids"][rows, :width], tokens["attention_mask"][rows, :width])
        if out_slots is None:
            out_slots = slots.new_zeros((n, *slots.shape[1:]))
            out_mask = mask.new_zeros((n, *mask.shape[1:]))
        out_slots, out_mask = out_slots.index_put((rows,), slots), out_mask.index_put((rows,), mask)
    return out_slots, out_mask


def turn_index_of(contexts: Sequence[Sequence[str]], row: dict[str, int], device=None) -> torch.Tensor:
    """(B, T) int64 rows of each context's turns in the utterance table, -1 after the last turn."""
    width = max(len(c) for c in contexts)
    index = torch.full((len(contexts), width), -1, dtype=torch.long)
    for b, context in enumerate(contexts):
        index[b, : len(context)] = torch.tensor([row[u] for u in context], dtype=torch.long)
    return index.to(device)


def dialogue_turn_index(lengths: Sequence[int]) -> np.ndarray:
    """(B, T) int64 rows of each dialogue's turns in a table stacking every dialogue's turns in order, -1 after
    the last one (T = the longest dialogue), the ``turn_index`` an aggregator takes."""
    index = np.full((len(lengths), max(lengths)), -1, dtype=np.int64)
    offsets = np.cumsum([0, *lengths[:-1]])
    for b, (offset, length) in enumerate(zip(offsets, lengths, strict=True)):
        index[b, :length] = np.arange(offset, offset + length)
    return index


class MultiVectorScoring:
    """``encode_contexts``, ``encode_responses`` and ``rerank_scores`` from a model's ``encode_context_vectors`` and
    ``encode_response_vectors`` (``MultiVectors``): shared by the torch ``HdrModel`` and its ONNX Runtime twin."""

    def encode_contexts(self, contexts: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False):
        """Contexts -> (N, H) float32 (single-vector variants; colbert raises ``ValueError``)."""
        return self.encode_context_vectors(contexts, batch_size, progress).single()

    def encode_responses(self, responses: Sequence[str], batch_size: int = 128, progress: bool = False):
        """Responses -> (N, H) float32 (single-vector variants; colbert raises ``ValueError``)."""
        return self.encode_response_vectors(responses, batch_size, progress).single()

    def rerank_scores(self, groups: Sequence, batch_size: int = 64, progress: bool = False) -> list[np.ndarray]:
        """Per ``RerankGroup``, (n,) cosine (or MaxSim) scores of its candidates; each text is encoded once."""
        index = index_groups(groups)
        contexts = self.encode_context_vectors(index.contexts, batch_size, progress)
        responses = self.encode_response_vectors(index.responses, batch_size * 2, progress)
        return group_maxsim_scores(contexts, responses, index)


class HdrModel(MultiVectorScoring, nn.Module):
    """Utterance encoder + response encoder + aggregator. Build with ``HdrModel.build`` or ``HdrModel.load``.

    Args:
        config: the HDR variant and its sizes.
        utterance_encoder: the context-side encoder (applied to one utterance at a time).
        response_encoder: the response-side encoder (may be the same module when ``config.shared``).
        tokenizer: the encoders' tokenizer.
    """

    def __init__(self, config: HdrConfig, utterance_encoder: TextEncoder, response_encoder: TextEncoder, tokenizer):
        super().__init__()
        self.config = config
        if config.utterance_layers:
            if utterance_encoder is response_encoder:
                raise ValueError("utterance_layers needs separate towers: this utterance encoder is the response one")
            keep_layers(utterance_encoder.backbone, config.utterance_layers, "the utterance encoder")
        self.utterance_encoder, self.response_encoder, self.tokenizer = utterance_encoder, response_encoder, tokenizer
        self.aggregator = HdrAggregator(config, utterance_encoder.dim)
        self.batcher = TextBatcher(tokenizer, config.encoder)
        self.utterance_tokenizer = FastTokenizer(tokenizer, config.utterance_length, "left")
        self.fingerprint: str | None = None  # sha256 of the saved directory's checksums.json, once saved or loaded

    # ------------------------------------------------------------------ construction and persistence

    @classmethod
    def build(cls, config: HdrConfig, dual_encoder_dir: str | Path = "") -> HdrModel:
        """A new HDR model whose encoders start from a trained DR-BERT (its two towers).

        Without ``dual_encoder_dir``, they start from ``config.encoder.model``.
        """
        if dual_encoder_dir:
            from hashbert.models.dual_encoder import DualEncoder

            dual = DualEncoder.load(dual_encoder_dir)
            theirs, ours = dual.config.encoder, config.encoder
            if (theirs.pooling, theirs.normalize) != (ours.pooling, ours.normalize):
                raise ValueError(
                    f"the DR-BERT in {dual_encoder_dir} uses pooling={theirs.pooling}, normalize={theirs.normalize}; "
                    "start HDR with the same settings"
                )
            encoder = dataclasses.replace(ours, backbone=dataclasses.replace(ours.backbone, model=theirs.model))
            config = dataclasses.replace(config, shared=dual.config.shared, encoder=encoder)
            return cls(config, dual.context_encoder, dual.response_encoder, dual.tokenizer)
        return cls._from_dir(config, initial_weights_dir(config.encoder.model, config.encoder.init), with_weights=True)

    @classmethod
    def _from_dir(cls, config: HdrConfig, model_dir: Path, with_weights: bool) -> HdrModel:
        def tower() -> TextEncoder:
            return TextEncoder(
                load_backbone(model_dir, with_weights), config.encoder.pooling, config.encoder.normalize
            )

        utterance = tower()
        return cls(config, utterance, utterance if config.shared else tower(), load_tokenizer(model_dir))

    def save(self, directory: str | Path) -> Path:
        """Write config, weights, backbone config and tokenizer with checksums (atomic)."""
        path = save_model_dir(
            directory, MODEL_TYPE, config_to_dict(self.config), self, self.tokenizer, self.utterance_encoder.backbone
        )
        self.fingerprint = artefact_fingerprint(path)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> HdrModel:
        """Load a directory written by ``save``; checksums are verified first."""
        model = load_backbone_model(
            directory, MODEL_TYPE, HdrConfig,
            lambda config, backbone_dir: cls._from_dir(config, backbone_dir, with_weights=False),
        )
        model.fingerprint = artefact_fingerprint(directory)
        return model

    @property
    def row_name(self) -> str:
        """The seed's name for this variant, e.g. ``HDR-BERT-Trs-MV``."""
        return ROW_NAMES[self.config.aggregator]

    @property
    def dim(self) -> int:
        return self.utterance_encoder.dim

    @property
    def multi_vector(self) -> bool:
        return self.aggregator.multi_vector

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ text -> vectors (with gradients)

    def tokenize_utterances(self, utterances: Sequence[str]) -> dict[str, torch.Tensor]:
        """(U, L) token tensors of single utterances, each truncated from the left to ``utterance_length``."""
        return torch_tokens(self.utterance_tokenizer(utterances))

    def utterance_slots(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(U, L) tokens -> (U, k, H) slot vectors and (U, k) mask."""
        return slot_vectors(self.utterance_encoder, self.config.slots, input_ids, attention_mask)

    def response_slots(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(N, L) tokens -> (N, k', H) vectors (k' = k for colbert, else 1) and mask.

        The vectors are L2-normalised when configured.
        """
        k = self.config.slots if self.multi_vector else 1
        slots, mask = slot_vectors(self.response_encoder, k, input_ids, attention_mask)
        return (nn.functional.normalize(slots, dim=-1) if self.config.encoder.normalize else slots), mask

    def forward(
        self, utterances: dict[str, torch.Tensor], turn_index: torch.Tensor, response: dict[str, torch.Tensor]
    ):
        """A training batch from ``collate`` -> context (B, k_out, H), context mask, response (B, k', H),
        response mask."""
        slots, slot_mask = encode_by_length(self.utterance_slots, utterances, TRAIN_CHUNK)
        context, context_mask = self.aggregator(slots, slot_mask, turn_index)
        return context, context_mask, *self.response_slots(**response)

    def collate(self, pairs: Sequence) -> dict:
        """ContextResponse pairs -> the keyword arguments of ``forward`` (each distinct utterance tokenised once)."""
        contexts = [newest_turns(p.context, self.config.max_turns) for p in pairs]
        utterances = list(dict.fromkeys(u for c in contexts for u in c))
        return {
            "utterances": self.tokenize_utterances(utterances),
            "turn_index": turn_index_of(contexts, {u: i for i, u in enumerate(utterances)}),
            "response": self.batcher.responses([p.response for p in pairs]),
        }

    # ------------------------------------------------------------------ inference

    @torch.inference_mode()
    def encode_context_vectors(self, contexts: Sequence[Sequence[str]], batch_size: int = 64, progress: bool = False):
        """Contexts (sequences of turns) -> ``MultiVectors`` (N, k_out, H); each distinct utterance is encoded once."""
        contexts = [newest_turns(c, self.config.max_turns) for c in contexts]
        utterances = list(dict.fromkeys(u for c in contexts for u in c))
        row = {u: i for i, u in enumerate(utterances)}
        vectors, masks = [], []
        with eval_mode(self):
            tokens = {k: v.to(self.device) for k, v in self.tokenize_utterances(utterances).items()}
            slots, slot_mask = encode_by_length(self.utterance_slots, tokens, batch_size, progress, "utterances")
            for start in range(0, len(contexts), batch_size):
                batch = contexts[start : start + batch_size]
                vecs, mask = self.aggregator(slots, slot_mask, turn_index_of(batch, row, self.device))
                vectors.append(vecs.float().cpu().numpy())
                masks.append(mask.cpu().numpy())
        return MultiVectors(np.concatenate(vectors), np.concatenate(masks))

    @torch.inference_mode()
    def encode_response_vectors(self, responses: Sequence[str], batch_size: int = 128, progress: bool = False):
        """Responses -> ``MultiVectors`` (N, k', H)."""
        tokens = {k: v.to(self.device) for k, v in self.batcher.responses(list(responses)).items()}
        with eval_mode(self):
            vectors, mask = encode_by_length(self.response_slots, tokens, batch_size, progress, "responses")
        return MultiVectors(vectors.float().cpu().numpy(), mask.cpu().numpy())

    @torch.inference_mode()
    def encode_utterances(self, utterances: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Utterances -> (U, k, H) float slot vectors and (U, k) bool mask, one forward pass (``HdrCache``'s step)."""
        with eval_mode(self):
            tokens = {k: v.to(self.device) for k, v in self.tokenize_utterances(list(utterances)).items()}
            slots, mask = encode_by_length(self.utterance_slots, tokens, TURN_CHUNK)
        return slots.float(), mask

    @torch.inference_mode()
    def aggregate_dialogues(self, dialogues: Sequence[tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]]):
        """Several dialogues' cached turns -> their context vectors, in one aggregator call.

        Args:
            dialogues: per dialogue, its T_b turns oldest first: T_b (k, H) slots and T_b (k,) masks.

        Returns:
            (B, k_out, H) float32 context vectors and their (B, k_out) bool mask, as NumPy arrays.
        """
        slots = torch.stack([torch.as_tensor(s) for d in dialogues for s in d[0]]).to(self.device)  # (U, k, H)
        masks = torch.stack([torch.as_tensor(m) for d in dialogues for m in d[1]]).to(self.device)  # (U, k)
        turn_index = torch.from_numpy(dialogue_turn_index([len(d[0]) for d in dialogues])).to(self.device)
        with eval_mode(self):
            vectors, mask = self.aggregator(slots.float(), masks.bool(), turn_index)  # (B, k_out, H), (B, k_out)
        return vectors.float().cpu().numpy(), mask.cpu().numpy()

