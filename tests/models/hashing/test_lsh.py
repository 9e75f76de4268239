"""LSH, sign and ITQ baselines: determinism, angle preservation, ITQ's orthogonal rotation and falling loss,
save/load."""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.io import ArtefactError
from hashbert.models.hashing.lsh import ITQ, RandomHyperplaneLSH, SignHash, _block_sizes, itq_rotation
from hashbert.models.hashing.scoring import codes_of
from hashbert.models.registry import load_model


def _data(n=600, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 8)) @ rng.standard_normal((8, dim))  # low-rank structure
    ctx = (latent + 0.3 * rng.standard_normal((n, dim)) + 2.0).astype(np.float32)  # off-centre, like MiniLM
    resp = (latent + 0.3 * rng.standard_normal((n, dim)) + 1.0).astype(np.float32)
    return ctx, resp


def test_lsh_seeded_and_preserves_angles():
    a = RandomHyperplaneLSH(32, 512, seed=3)
    assert np.array_equal(a.planes, RandomHyperplaneLSH(32, 512, seed=3).planes)
    assert not np.array_equal(a.planes, RandomHyperplaneLSH(32, 512, seed=4).planes)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(32)
    near, far = x + 0.2 * rng.standard_normal(32), -x + 0.2 * rng.standard_normal(32)
    signs = np.sign(a.context_hash_vectors(np.stack([x, near, far])))
    assert (signs[0] != signs[1]).sum() < 100 < (signs[0] != signs[2]).sum()


def test_itq_rotation_orthogonal_and_loss_falls():
    ctx, _ = _data()
    v = (ctx - ctx.mean(0))[:, :16].astype(np.float32)
    r, losses = itq_rotation(v, 30, np.random.default_rng(0))
    np.testing.assert_allclose(r @ r.T, np.eye(16), atol=1e-4)
    assert losses[-1] < losses[0] and all(b <= a + 1e-3 for a, b in zip(losses, losses[1:], strict=False))


@pytest.mark.parametrize("n_bits", [16, 32, 72])
def test_itq_fit_blocks_and_beats_no_rotation(n_bits):
    ctx, resp = _data()
    itq = ITQ(n_bits, iterations=30).fit(ctx, resp)
    assert itq.projection.shape == (32, n_bits) and len(itq.quantization_losses) == len(_block_sizes(n_bits, 32))
    for losses in itq.quantization_losses:
        assert losses[-1] < losses[0]
    codes = codes_of(itq.response_hash_vectors(resp))
    assert codes.shape == (600, n_bits // 8)
    # per-side centring makes the bits balanced
    assert abs(np.unpackbits(codes, axis=1).mean() - 0.5) < 0.1


def test_block_sizes():
    assert _block_sizes(256, 384) == [256]
    assert _block_sizes(512, 384) == [256, 256]
    assert _block_sizes(4096, 384) == [373] * 4 + [372] * 7 and sum(_block_sizes(4096, 384)) == 4096


def test_save_load_identical_codes(tmp_path):
    ctx, resp = _data()
    for model in (RandomHyperplaneLSH(32, 64, seed=1), SignHash(32), ITQ(64, iterations=5).fit(ctx, resp)):
        model.save(tmp_path / model.model_type)
        loaded = load_model(tmp_path / model.model_type)
        assert type(loaded) is type(model) and loaded.n_bits == model.n_bits
        for side in ("context_hash_vectors", "response_hash_vectors"):
            assert np.array_equal(codes_of(getattr(loaded, side)(ctx)), codes_of(getattr(model, side)(ctx)))
    (tmp_path / "itq" / "arrays.safetensors").write_bytes(b"broken")
    with pytest.raises(ArtefactError, match="checksum"):
        ITQ.load(tmp_path / "itq")


def test_unfitted_itq_and_bad_bits():
    with pytest.raises(ValueError, match="not fitted"):
        ITQ(64).context_hash_vectors(np.zeros((1, 8)))
    with pytest.raises(ValueError, match="multiple of 8"):
        RandomHyperplaneLSH(8, 12)
