"""Hash-BERT's and BPR's losses on hand-computable tensors: values, and one gradient step in the right direction."""

from __future__ import annotations

import pytest
import torch

from hashbert.config import HashLossConfig
from hashbert.losses.bpr import BprLoss
from hashbert.losses.hash_bert import HashBertLoss
from hashbert.losses.quantization import QuantizationLoss
from hashbert.losses.reconstruction import ReconstructionLoss
from hashbert.losses.similarity import SimilarityPreservingLoss


def _step(loss_fn, *tensors, lr=0.5):
    """Loss before and after one gradient step on the given leaf tensors."""
    for t in tensors:
        t.grad = None
    before = loss_fn(*tensors)
    before.backward()
    before = before.detach()
    with torch.no_grad():
        for t in tensors:
            t -= lr * t.grad
        after = float(loss_fn(*tensors))
    return float(before), after


def _margin(h_c, h_r):
    """Mean diagonal similarity minus mean off-diagonal similarity."""
    s = h_c @ h_r.T / h_c.shape[1]
    off = ~torch.eye(len(s), dtype=torch.bool)
    return float(s.diagonal().mean() - s[off].mean())


@pytest.mark.parametrize("form", ["softmax", "mse", "frobenius"])
def test_similarity_step_separates_positives(form):
    torch.manual_seed(0)
    h_c, h_r = torch.randn(8, 64).tanh().requires_grad_(), torch.randn(8, 64).tanh().requires_grad_()
    loss = SimilarityPreservingLoss(form)
    margin_before = _margin(h_c.detach(), h_r.detach())
    before, after = _step(loss, h_c, h_r, lr=2.0 if form == "softmax" else 20.0)
    assert after < before
    assert _margin(h_c.detach(), h_r.detach()) > margin_before


def test_distill_matches_the_teacher_ranking():
    torch.manual_seed(3)
    x_c, x_r = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1), torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    teacher = x_c @ x_r.T
    h_c, h_r = torch.randn(8, 64).tanh().requires_grad_(), torch.randn(8, 64).tanh().requires_grad_()
    loss = SimilarityPreservingLoss("distill", temperature=0.05, teacher_temperature=0.05)
    before, after = _step(lambda a, b: loss(a, b, teacher), h_c, h_r, lr=5.0)
    assert after < before
    for _ in range(200):
        _step(lambda a, b: loss(a, b, teacher), h_c, h_r, lr=5.0)
    student = torch.nn.functional.normalize(h_c, dim=-1) @ torch.nn.functional.normalize(h_r, dim=-1).T
    correlation = torch.corrcoef(torch.stack([student.detach().flatten(), teacher.flatten()]))[0, 1]
    assert correlation > 0.8
    assert (student.argmax(1) == teacher.argmax(1)).float().mean() >= 0.75
    with pytest.raises(ValueError, match="teacher_scores"):
        loss(h_c, h_r)


def test_similarity_is_scale_free():
    torch.manual_seed(4)
    h_c, h_r = torch.randn(6, 64), torch.randn(6, 64)
    for form in ("softmax", "mse", "frobenius"):
        loss = SimilarityPreservingLoss(form)
        assert float(loss(h_c, h_r)) == pytest.approx(float(loss(3 * h_c, 0.5 * h_r)), rel=1e-5)


def test_similarity_values_on_perfect_codes():
    codes = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])  # orthogonal rows
    assert float(SimilarityPreservingLoss("mse")(codes, codes)) == pytest.approx(0.0)
    assert float(SimilarityPreservingLoss("frobenius")(codes, codes)) == pytest.approx(0.0)
    # softmax: diagonal logit 1/0.05 = 20, others 0 -> CE = log(1 + 3 e^-20)
    assert float(SimilarityPreservingLoss("softmax", 0.05)(codes, codes)) == pytest.approx(0.0, abs=1e-6)
    assert float(SimilarityPreservingLoss("softmax", 1.0)(codes, codes)) == pytest.approx(-torch.log_softmax(torch.tensor([1.0, 0, 0, 0]), 0)[0].item())
    assert float(SimilarityPreservingLoss("mse", negative_target=-1.0)(codes, codes)) == pytest.approx(0.5)


def test_frobenius_rewards_collapse_more_than_balanced_mse():
    # All-zero outputs (a collapsed head) vs the ideal: the literal form barely penalises collapse at batch 64.
    zeros = torch.zeros(64, 64)
    assert float(SimilarityPreservingLoss("frobenius")(zeros, zeros)) == pytest.approx(1 / 64)
    assert float(SimilarityPreservingLoss("mse")(zeros, zeros)) == pytest.approx(0.5)


def test_quantization_zero_at_corners_and_step_moves_toward_them():
    corners = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert float(QuantizationLoss()(corners, corners)) == 0.0
    h_c, h_r = torch.tensor([[0.3, -0.5]], requires_grad=True), torch.tensor([[1.6, -0.1]], requires_grad=True)
    before, after = _step(QuantizationLoss(), h_c, h_r, lr=0.5)
    assert float(QuantizationLoss()(torch.tensor([[0.3, -0.5]]), torch.tensor([[1.6, -0.1]]))) == pytest.approx(
        0.5 * ((0.7**2 + 0.5**2) / 2 + (0.6**2 + 0.9**2) / 2)
    )
    assert after < before


def test_reconstruction_cosine_and_step():
    dense = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(ReconstructionLoss()(dense * 3, dense)) == pytest.approx(0.0, abs=1e-6)
    assert float(ReconstructionLoss()(-dense, dense)) == pytest.approx(2.0)
    decoded = torch.tensor([[0.2, 1.0], [1.0, 0.3]], requires_grad=True)
    before, after = _step(lambda d: ReconstructionLoss()(d, dense), decoded)
    assert after < before


def test_reconstruction_target_detached():
    dense = torch.randn(3, 4, requires_grad=True)
    ReconstructionLoss()(torch.randn(3, 4, requires_grad=True), dense).backward()
    assert dense.grad is None


def test_hash_bert_loss_weights_parts_and_switches():
    torch.manual_seed(1)
    h_c, h_r, v_c, v_r = (torch.randn(6, 64).tanh(), torch.randn(6, 64).tanh(), torch.randn(6, 8), torch.randn(6, 8))
    loss = HashBertLoss(HashLossConfig(similarity="softmax", quantization_weight=0.5, reconstruction_weight=2.0))
    total = loss(h_c, h_r, v_c, v_r, v_c * 2, -v_r)
    parts = loss.last_parts
    assert set(parts) == {"similarity", "quantization", "reconstruction"}
    assert float(total) == pytest.approx(parts["similarity"] + 0.5 * parts["quantization"] + 2.0 * parts["reconstruction"])
    assert parts["reconstruction"] == pytest.approx(0.5 * (0.0 + 2.0), abs=1e-5)
    no_kl = HashBertLoss(HashLossConfig(similarity="softmax", reconstruction_weight=0.0, quantization_weight=0.0))
    no_kl(h_c, h_r)
    assert set(no_kl.last_parts) == {"similarity"}
    with pytest.raises(ValueError, match="dense vectors"):
        HashBertLoss(HashLossConfig(similarity="distill", reconstruction_weight=0.0))(h_c, h_r)
    with pytest.raises(ValueError, match="decoder outputs"):
        loss(h_c, h_r)
    with pytest.raises(ValueError, match="nothing to train"):
        HashBertLoss(HashLossConfig(similarity_weight=0, quantization_weight=0, reconstruction_weight=0))(h_c, h_r)


@pytest.mark.parametrize(("part", "weights"), [("candidate", (1.0, 0.0)), ("rerank", (0.0, 1.0))])
def test_bpr_loss_step_lowers_each_part(part, weights):
    torch.manual_seed(2)
    z_c = torch.randn(8, 64, requires_grad=True)
    h_c = torch.randn(8, 64).tanh().requires_grad_()
    h_r = torch.randn(8, 64).tanh().requires_grad_()
    loss = BprLoss(margin=0.1, candidate_weight=weights[0], rerank_weight=weights[1])
    before, after = _step(loss, z_c, h_c, h_r, lr=0.05 if part == "rerank" else 5.0)
    assert after < before and loss.last_parts[part] == pytest.approx(after)
    assert set(loss.last_parts) == {"candidate", "rerank"}


def test_bpr_candidate_loss_zero_when_margin_met():
    codes = torch.eye(4) * 2 - 1  # row i: +1 at i, -1 elsewhere; s_ii = 1, s_ij = 0
    loss = BprLoss(margin=0.5, rerank_weight=0.0)
    assert float(loss(codes, codes, codes)) == 0.0
    assert float(BprLoss(margin=1.5, rerank_weight=0.0)(codes, codes, codes)) == pytest.approx(0.5)
