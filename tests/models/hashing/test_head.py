"""HashingHead and Decoder: the n_bits rule, shapes, the relax modes and the straight-through gradient."""

from __future__ import annotations

import pytest
import torch

from hashbert.models.hashing.head import Decoder, HashingHead, relax_outputs, sign_pm1, straight_through_sign


@pytest.mark.parametrize("n_bits", [0, 32, 63, 100, 4160, 8192])
def test_n_bits_must_be_multiple_of_64_up_to_4096(n_bits):
    with pytest.raises(ValueError, match="multiple of 64"):
        HashingHead(8, n_bits)


@pytest.mark.parametrize("relax", ["tanh", "ste", "scaled_tanh", "none"])
def test_shapes_and_signs_of_every_mode(relax):
    torch.manual_seed(0)
    head = HashingHead(16, 64, hidden=32, dropout=0.0, relax=relax).eval()
    x = torch.randn(5, 16)
    h, z = head(x, beta=3.0), head.logits(x)
    assert h.shape == (5, 64)
    assert torch.equal(sign_pm1(h), sign_pm1(z))  # every mode keeps the sign of the pre-activation
    assert torch.equal(sign_pm1(head.float_outputs(x)), sign_pm1(z))
    if relax in ("tanh", "scaled_tanh", "ste"):
        assert h.abs().max() <= 1


def test_hidden_zero_is_one_linear_layer_and_decoder_shape():
    head = HashingHead(16, 128, hidden=0)
    assert len(head.mlp) == 1 and head.mlp[0].weight.shape == (128, 16)
    assert Decoder(128, 32, 16)(torch.randn(3, 128)).shape == (3, 16)


def test_sign_convention_zero_is_positive():
    assert sign_pm1(torch.tensor([-0.5, 0.0, 2.0])).tolist() == [-1.0, 1.0, 1.0]


def test_straight_through_sign_forward_hard_backward_tanh():
    x = torch.tensor([-2.0, -0.1, 0.3, 1.5], requires_grad=True)
    y = straight_through_sign(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0]
    y.sum().backward()
    torch.testing.assert_close(x.grad, 1 - torch.tanh(x.detach()) ** 2)


def test_straight_through_gradient_differs_from_plain_tanh():
    # d/dx sum(f(x)^2): tanh gives 2 tanh(x) (1 - tanh^2), STE gives 2 sign(x) (1 - tanh^2).
    x = torch.tensor([-0.2, 0.4, 1.0])
    grads = {}
    for relax in ("tanh", "ste"):
        xi = x.clone().requires_grad_(True)
        (relax_outputs(xi, relax) ** 2).sum().backward()
        grads[relax] = xi.grad
    t = torch.tanh(x)
    torch.testing.assert_close(grads["tanh"], 2 * t * (1 - t**2))
    torch.testing.assert_close(grads["ste"], 2 * torch.sign(x) * (1 - t**2))
    assert not torch.allclose(grads["tanh"], grads["ste"])


def test_scaled_tanh_sharpens_with_beta_and_rejects_unknown_mode():
    z = torch.tensor([0.1, -0.2])
    assert (relax_outputs(z, "scaled_tanh", 50.0).abs() > relax_outputs(z, "scaled_tanh", 1.0).abs()).all()
    with pytest.raises(ValueError, match="relax"):
        relax_outputs(z, "round")
