"""The S2D losses: landmark-distance vertex weights and the paper/official loss forms."""

import numpy as np
import pytest

from jaxface.losses.s2d import landmark_distance_weights, s2d_loss


def test_landmark_distance_weights_against_numpy(rng):
    v = rng.normal(size=(50, 3))
    lm = v[[3, 10, 20]]
    d = np.min(np.linalg.norm(v[:, None] - lm[None], axis=-1), axis=1)
    np.testing.assert_allclose(landmark_distance_weights(v, lm), 1 - d / d.max(), rtol=1e-5)
    inv = landmark_distance_weights(v, lm, mode="inverse", eps=1e-3)
    assert inv[[3, 10, 20]].min() == pytest.approx(1.0)
    assert inv.min() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown weight mode"):
        landmark_distance_weights(v, lm, mode="bogus")


def test_s2d_loss_forms(rng):
    pred = rng.normal(size=(2, 5, 3)).astype(np.float32)
    true = rng.normal(size=(2, 5, 3)).astype(np.float32)
    w = rng.uniform(size=5).astype(np.float32)
    r = np.abs(pred - true)
    loss, parts = s2d_loss(pred, true, w, beta_dr=1.0, beta_pr=0.1)
    np.testing.assert_allclose(parts["loss_dr"], r.sum(-1).mean(), rtol=1e-6)
    np.testing.assert_allclose(parts["loss_pr"], (r.sum(-1) * w).mean(), rtol=1e-6)
    np.testing.assert_allclose(loss, r.sum(-1).mean() + 0.1 * (r.sum(-1) * w).mean(), rtol=1e-6)
    _, official = s2d_loss(pred, true, w, form="official")
    np.testing.assert_allclose(official["loss_pr"], np.einsum("bnc,n->bc", r, w).mean(), rtol=1e-6)
    _, unweighted = s2d_loss(pred, true, None)
    np.testing.assert_allclose(unweighted["loss_pr"], r.sum(-1).mean(), rtol=1e-6)
