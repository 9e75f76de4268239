"""HDR-BERT's aggregators: combine cached per-utterance vectors into the context vector(s), and MaxSim.

An aggregator reads, for each context, the vectors of its turns (oldest first), ``k`` per turn (``k = 1``
for ``trs``, ``m`` for the multi-vector variants; slot 0 is always the utterance's pooled vector). It
adds a learned turn-position embedding (the distance to the newest turn: 0 for the newest, so the newest
turn looks the same whatever the history length) and, for ``k > 1``, a slot embedding, runs a small
Transformer over the ``T * k`` vectors (bidirectional, BERT-style; causal with pre-norm, GPT-2-style, for
``gpt-mv``), reads its output at the newest turn and merges it with that utterance's own vector(s):
``linear(dropout(concat(aggregated, own)))``, with ``own`` L2-normalised and scaled to the size of the
aggregator's LayerNorm outputs. The merge starts as the identity on ``own`` (the aggregated half is
zero-initialised), so an untrained HDR scores like its encoder on the newest turn alone and training
adds what the history contributes. A skip path (``history_decay > 0``) adds the earlier turns' pooled
vectors with learned weights initialised to ``decay^d`` (d turns back): on Chit-Chat validation this
fixed prior alone (decay 0.3) already matches DR-BERT, while a randomly initialised 3-layer aggregator
learns little history in DR-BERT's one-epoch, 4000-pair budget.

Reading per aggregator: ``trs`` the newest turn's output; ``trs-mv`` the mean of the newest turn's slot
outputs; ``gpt-mv`` the last valid position (the newest turn's last slot); ``colbert`` all ``k`` slot
outputs of the newest turn, each merged with that slot's own vector, giving ``k`` context vectors.

References: "Towards Efficient Coarse-grained Dialogue Response Selection" (ACM TOIS 2023), HDR sec. 3;
Khattab & Zaharia, "ColBERT" (SIGIR 2020) sec. 3.3 for MaxSim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hashbert.config import HdrConfig

logger = logging.getLogger(__name__)


def maxsim(
    context: torch.Tensor, context_mask: torch.Tensor, response: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """Late-interaction score of every context against every response.

    ``score(c, r) = mean over the valid vectors a of c of max over the valid vectors b of r of a . b``.
    This is ColBERT's sum divided by the context's number of valid vectors, which is the same for every
    candidate of a context, so it ranks candidates exactly as the sum does while keeping scores in the
    cosine range (one temperature serves every aggregator). With one vector a side it is the dot product.

    Args:
        context: (B, k, H) float; context_mask: (B, k) bool, at least one True per row.
        response: (N, k', H) float; response_mask: (N, k') bool, at least one True per row.

    Returns:
        (B, N) float scores.
    """
    sims = torch.einsum("bkh,njh->bnkj", context, response)  # (B, N, k, k')
    sims = sims.masked_fill(~response_mask[None, :, None, :], float("-inf"))
    best = sims.max(dim=-1).values  # (B, N, k)
    weights = context_mask.to(best.dtype)  # (B, k)
    best = torch.where(context_mask[:, None, :], best, torch.zeros_like(best))
    return best.sum(-1) / weights.sum(-1, keepdim=True)


def _identity_merge(dim: int) -> nn.Linear:
    """Linear(2 dim -> dim) that starts as the identity on its second half (the own vector)."""
    merge = nn.Linear(2 * dim, dim)
    with torch.no_grad():
        merge.weight.zero_()
        merge.weight[:, dim:] = torch.eye(dim)
        merge.bias.zero_()
    return merge


class HdrAggregator(nn.Module):
    """Turn-position embeddings, a small Transformer and the merge layer of one HDR variant.

    Args:
        config: aggregator kind, layers, heads, width, dropout, ``k`` (``config.slots``), max turns.
        dim: the encoder's hidden size (the aggregator's width).
    """

    def __init__(self, config: HdrConfig, dim: int) -> None:
        super().__init__()
        if dim % config.heads:
            raise ValueError(f"heads ({config.heads}) must divide the hidden size ({dim})")
        self.kind, self.slots, self.max_turns = config.aggregator, config.slots, config.max_turns
        self.causal = config.aggregator == "gpt-mv"
        self.turn_position = nn.Embedding(config.max_turns, dim)
        self.slot_position = nn.Embedding(self.slots, dim)
        for table in (self.turn_position, self.slot_position):
            nn.init.normal_(table.weight, std=0.02)
        self.input_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            dim, config.heads, config.ffn_dim or 4 * dim, config.dropout, activation="gelu", batch_first=True,
            norm_first=self.causal,
        )
        # GPT-2 style (pre-norm) ends with a LayerNorm; BERT style (post-norm) needs none.
        self.transformer = nn.TransformerEncoder(
            layer, config.layers, norm=nn.LayerNorm(dim) if self.causal else None, enable_nested_tensor=False
        )
        self.merge = _identity_merge(dim)
        self.normalize = config.encoder.normalize
        decay = config.history_decay
        # Learned weight of the pooled vector d = 1..max_turns-1 turns back (None: no skip path).
        self.history_weight = nn.Parameter(decay ** torch.arange(1.0, config.max_turns)) if decay else None

    @property
    def multi_vector(self) -> bool:
        """Whether the context side gives ``k`` vectors (colbert) rather than one."""
        return self.kind == "colbert"

    def forward(
        self, slots: torch.Tensor, slot_mask: torch.Tensor, turn_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate the contexts whose turns are rows of ``slots``.

        Args:
            slots: (U, k, H) vectors of U utterances (slot 0 = pooled vector).
            slot_mask: (U, k) bool, which slots hold a real token.
            turn_index: (B, T) int64 row in ``slots`` of each context's turns, oldest first, -1 after the
                last turn (every context has at least one turn and at most ``max_turns``).

        Returns:
            vectors: (B, k_out, H) context vectors (k_out = k for colbert, else 1), L2-normalised when the
            encoder config says so; mask: (B, k_out) bool.
        """
        B, T = turn_index.shape
        k, H = slots.shape[1], slots.shape[2]
        if T > self.max_turns:
            raise ValueError(f"{T} turns given, the aggregator was built for at most {self.max_turns}")
        turn_valid = turn_index >= 0  # (B, T)
        rows = turn_index.clamp(min=0)
        x = slots[rows]  # (B, T, k, H)
        mask = slot_mask[rows] & turn_valid[..., None]  # (B, T, k)
        newest = turn_valid.sum(1) - 1  # (B,)
        distance = (newest[:, None] - torch.arange(T, device=x.device)).clamp(min=0)  # (B, T), 0 = newest
        h = x + self.turn_position(distance)[:, :, None] + self.slot_position.weight[:k]
        h = self.dropout(self.input_norm(h)).reshape(B, T * k, H)
        batch = torch.arange(B, device=h.device)
        newest_rows = newest[:, None] * k + torch.arange(k, device=h.device)  # (B, k): the newest turn's in h
        newest_out = self._transform_newest(h, ~mask.reshape(B, T * k), newest_rows)
        own, own_mask = x[batch, newest], mask[batch, newest]  # (B, k, H), (B, k)
        if self.kind == "colbert":
            aggregated = newest_out
        else:
            aggregated, own = self._read(newest_out, own_mask)[:, None], own[:, :1]
            own_mask = own_mask[:, :1]
        # Both halves at the scale of a LayerNorm output (entries ~1): a unit own vector would be drowned by the
        # randomly initialised aggregator as soon as its zero merge weights move.
        own = nn.functional.normalize(own, dim=-1) * H**0.5
        vectors = self.merge(self.dropout(torch.cat([aggregated, own], dim=-1)))  # (B, k_out, H)
        if self.history_weight is not None:
            vectors = vectors + self._history(x[:, :, 0], distance, turn_valid)[:, None]
        if self.normalize:
            vectors = nn.functional.normalize(vectors, dim=-1)
        return vectors, own_mask

    def _transform_newest(self, h: torch.Tensor, padding: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The transformer's (B, k, H) outputs at positions ``rows`` (B, k) of its (B, T k, H) input ``h``.

        Why: only the newest turn's outputs are read, so the last layer computes its queries, residuals and
        feed-forward at those k positions alone (keys and values still span every turn); the result equals
        running the whole last layer and picking the rows, at about 1/T of its cost (a 1-layer aggregator
        over 10 turns: a tenth of the work).
        """
        positions = torch.arange(h.shape[1], device=h.device)
        causal = positions[None] > positions[:, None] if self.causal else None  # True: masked
        *early, last = self.transformer.layers
        for layer in early:
            h = layer(h, src_mask=causal, src_key_padding_mask=padding)
        query = h[torch.arange(h.shape[0], device=h.device)[:, None], rows]  # (B, k, H); len(h) would fix B in ONNX
        attn_mask = None
        if self.causal:  # each newest slot sees the positions up to its own (later ones are padding anyway)
            attn_mask = (positions[None, None] > rows[..., None]).repeat_interleave(last.self_attn.num_heads, 0)

        def attend(q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
            out = last.self_attn(q, kv, kv, attn_mask=attn_mask, key_padding_mask=padding, need_weights=False)[0]
            return last.dropout1(out)

        if last.norm_first:  # pre-norm (gpt-mv), then the encoder's final LayerNorm
            memory = last.norm1(h)
            out = query + attend(last.norm1(query), memory)
            out = out + last._ff_block(last.norm2(out))  # torch's own feed-forward block (linear, gelu, dropouts)
            return self.transformer.norm(out)
        out = last.norm1(query + attend(query, h))
        return last.norm2(out + last._ff_block(out))

    def _history(self, pooled: torch.Tensor, distance: torch.Tensor, turn_valid: torch.Tensor) -> torch.Tensor:
        """(B, H) sum of the earlier turns' pooled vectors (B, T, H), weighted by their learned distance weights."""
        weights = torch.cat([self.history_weight.new_zeros(1), self.history_weight])[distance]  # (B, T), newest: 0
        weights = weights * turn_valid.to(weights.dtype)
        unit = nn.functional.normalize(pooled, dim=-1) * pooled.shape[-1] ** 0.5  # the scale of the merge's own half
        return torch.einsum("bt,bth->bh", weights, unit)

    def _read(self, newest_out: torch.Tensor, newest_mask: torch.Tensor) -> torch.Tensor:
        """One vector per context from the newest turn's (B, k, H) outputs: (B, H)."""
        if self.kind == "trs":
            return newest_out[:, 0]
        if self.kind == "gpt-mv":  # the last valid position of the sequence: the newest turn's last real slot
            last = newest_mask.sum(1) - 1
            return newest_out[torch.arange(len(last), device=last.device), last]
        weights = newest_mask.to(newest_out.dtype)[..., None]  # trs-mv: mean over the real slots
        return (newest_out * weights).sum(1) / weights.sum(1)


@dataclass
class MultiVectors:
    """``k`` vectors per text and which of them are real (single-vector models have ``k = 1``).

    Attributes:
        vectors: (N, k, H) float32.
        mask: (N, k) bool, at least one True per row.
    """

    vectors: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)

    def single(self) -> np.ndarray:
        """(N, H) float32: the one vector per text (raises ``ValueError`` for multi-vector outputs)."""
        if self.vectors.shape[1] != 1:
            raise ValueError(f"these are {self.vectors.shape[1]} vectors per text; score them with maxsim")
        return self.vectors[:, 0]


def group_maxsim_scores(contexts: MultiVectors, responses: MultiVectors, index) -> list[np.ndarray]:
    """``maxsim`` of each re-rank group's context against its candidates (rows as in ``index``).

    Args:
        contexts: vectors of ``index.contexts``; responses: vectors of ``index.responses``.
        index: a ``hashing.scoring.GroupIndex``.

    Returns:
        One (n_candidates,) float64 array per group, higher = better.
    """
    ctx, ctx_mask = torch.from_numpy(contexts.vectors), torch.from_numpy(contexts.mask)
    resp, resp_mask = torch.from_numpy(responses.vectors), torch.from_numpy(responses.mask)
    scores = []
    for c, rows in zip(index.context_rows, index.candidate_rows, strict=True):
        rows_t = torch.from_numpy(rows)
        score = maxsim(ctx[c : c + 1], ctx_mask[c : c + 1], resp[rows_t], resp_mask[rows_t])[0]
        scores.append(score.double().numpy())
    return scores
