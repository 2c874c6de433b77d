"""Tests for jaxface.data.realism on small examples with known answers."""

import numpy as np
import pytest

from jaxface.data import procedural
from jaxface.data.realism import (
    REGIONS,
    CovarianceAccumulator,
    asymmetry,
    components_for,
    dirichlet_ratio,
    face_regions,
    noise_dirichlet_ratio,
    pairwise_spread,
)
from jaxface.data.template import load_face_template


def test_rank_k_set_gives_k_components():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(5, 40))
    acc = CovarianceAccumulator(40)
    for _ in range(4):  # streamed in chunks
        acc.add(rng.normal(size=(100, 5)) @ basis + 3.0)  # an offset does not add a component
    ev = acc.eigenvalues()
    assert components_for(ev, (0.5, 0.999999)) [0.999999] == 5
    assert ev[5:].max() < 1e-9 * ev[0]
    vals, comps = acc.principal_components(5)
    np.testing.assert_allclose(vals, ev[:5])
    np.testing.assert_allclose(comps @ comps.T, np.eye(5), atol=1e-10)
    # The components span the basis.
    proj = basis @ comps.T @ comps
    np.testing.assert_allclose(proj, basis, atol=1e-8)


def test_components_for_known_spectrum():
    ev = np.array([50.0, 40.0, 9.0, 1.0])
    assert components_for(ev) == {0.9: 2, 0.95: 3, 0.99: 3}
    assert components_for(ev, (1.0,)) == {1.0: 4}
    with pytest.raises(ValueError):
        CovarianceAccumulator(3).covariance()


def test_dirichlet_ratio_of_eigenmodes_and_noise():
    t = load_face_template(0)
    modes, evals = procedural._base_modes(30)
    fields = np.zeros((2, 468, 3))
    fields[0, :, 1] = modes[:, 0]
    fields[1, :, 2] = modes[:, 19]
    e = dirichlet_ratio(fields, t.vertices, t.faces)
    # The modes were computed with the mouth welded and the eyes closed: close, not equal.
    np.testing.assert_allclose(e, evals[[0, 19]], rtol=0.1)
    noise = noise_dirichlet_ratio(t.vertices, t.faces)
    assert e[1] < 0.1 * noise
    assert dirichlet_ratio(fields[0], t.vertices, t.faces) == pytest.approx(e[0])
    const = np.ones((468, 3))
    assert dirichlet_ratio(const, t.vertices, t.faces) == pytest.approx(0.0, abs=1e-8)


def test_asymmetry_and_spread():
    t = load_face_template(0)
    v = t.vertices.astype(np.float64)
    sym = np.stack([v[:, 0] * 0.1, np.abs(v[:, 0]), np.zeros(468)], axis=1)  # mirror-symmetric
    assert asymmetry(sym, t.mirror) == pytest.approx(0.0, abs=1e-6)
    one_side = np.where(v[:, :1] > 1e-6, np.array([[0.0, 1.0, 0.0]]), 0.0)
    assert asymmetry(one_side, t.mirror) == pytest.approx(0.5)
    shift = np.tile([[1e-3, 0.0, 0.0]], (468, 1))  # the whole face moved sideways
    assert asymmetry(shift, t.mirror) == pytest.approx(1.0)
    assert asymmetry(np.stack([sym, one_side]), t.mirror).shape == (2,)
    assert pairwise_spread(np.stack([sym, sym])) == 0.0
    assert pairwise_spread(np.stack([sym, 2 * sym])) == pytest.approx(1 / 1.5)


def test_face_regions():
    t = load_face_template(1)
    r = face_regions(t)
    assert r.shape == (t.num_vertices,) and set(np.unique(r)) == set(range(len(REGIONS)))
    lm = t.landmarks.vertex_indices
    assert REGIONS[r[lm[30]]] == "nose" and REGIONS[r[lm[62]]] == "mouth"
    assert REGIONS[r[lm[8]]] == "jaw" and REGIONS[r[lm[37]]] == "eyes"
