"""The MaxSim of HDR's aggregators against a direct loop over vectors and masks."""

from __future__ import annotations

import torch

from hashbert.models.hdr.aggregators import maxsim


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
