"""HDR's aggregators: MaxSim against a direct loop, the newest-turn transformer against the whole run."""

from __future__ import annotations

import pytest
import torch

from hashbert.config import HdrConfig
from hashbert.models.hdr.aggregators import HdrAggregator, maxsim


def test_maxsim_equals_direct_loop():
    gen = torch.Generator().manual_seed(0)
    context, response = torch.randn(3, 4, 8, generator=gen), torch.randn(5, 3, 8, generator=gen)
    context_mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    response_mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=torch.bool)
    expected = torch.zeros(3, 5)
    for b in range(3):
        for n in range(5):
            best = []
            for a in range(4):
                if context_mask[b, a]:
                    best.append(max(float(context[b, a] @ response[n, j]) for j in range(3) if response_mask[n, j]))
            expected[b, n] = sum(best) / len(best)
    torch.testing.assert_close(maxsim(context, context_mask, response, response_mask), expected)
    one = maxsim(context[:, :1], context_mask[:, :1], response[:, :1], response_mask[:, :1])
    torch.testing.assert_close(one, context[:, 0] @ response[:, 0].T)  # one vector a side: the dot product


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("kind", ["trs", "trs-mv", "gpt-mv", "colbert"])
def test_newest_turn_outputs_equal_the_whole_transformer_run(kind, layers):
    """The last layer computed at the newest turn's positions alone equals the full run read at those rows."""
    torch.manual_seed(0)
    config = HdrConfig(aggregator=kind, layers=layers, heads=4, ffn_dim=32, vectors_per_utterance=1 if kind == "trs"
                       else 3, utterance_length=8)
    aggregator = HdrAggregator(config, 16).eval()
    k, turns = config.slots, torch.tensor([3, 1, 5])  # contexts of 3, 1 and 5 turns, in one padded batch
    h = torch.randn(3, 5 * k, 16)
    padding = torch.arange(5)[None].repeat_interleave(k, 1) >= turns[:, None]  # turns after the newest
    padding[0, 2] = True  # and one masked slot inside a context
    rows = (turns - 1)[:, None] * k + torch.arange(k)
    positions = torch.arange(5 * k)
    causal = positions[None] > positions[:, None] if aggregator.causal else None
    with torch.no_grad():
        full = aggregator.transformer(h, mask=causal, src_key_padding_mask=padding)
        newest = aggregator._transform_newest(h, padding, rows)
    torch.testing.assert_close(newest, full[torch.arange(3)[:, None], rows], atol=1e-5, rtol=1e-5)
