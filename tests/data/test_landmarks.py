"""Tests for jaxface.data.landmarks."""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.data.landmarks import (
    LandmarkDefinition,
    LandmarkEmbeddingError,
    extract_landmarks,
    from_flame_embedding,
    from_flame_embeddings,
    landmark_displacement,
    normalize_landmarks,
)


@pytest.fixture
def mesh(rng):
    v = rng.normal(size=(2, 3, 30, 3)).astype(np.float32)  # [batch, frames, N, 3]
    f = rng.integers(0, 30, size=(40, 3)).astype(np.int32)
    return v, f


@pytest.fixture
def bary_def(rng):
    w = rng.uniform(0.1, 1.0, size=(68, 3))
    w /= w.sum(axis=1, keepdims=True)
    return LandmarkDefinition(face_indices=rng.integers(0, 40, size=68), barycentric=w)


def _reference(v, definition, faces):
    out = np.zeros(v.shape[:-2] + (definition.num_landmarks, 3))
    for k in range(definition.num_landmarks):
        if definition.is_barycentric:
            tri = faces[definition.face_indices[k]]
            for j in range(3):
                out[..., k, :] += definition.barycentric[k, j] * v[..., tri[j], :]
        else:
            out[..., k, :] = v[..., definition.vertex_indices[k], :]
    return out


def test_vertex_definition(mesh, rng):
    v, f = mesh
    d = LandmarkDefinition(vertex_indices=rng.integers(0, 30, size=68))
    out = extract_landmarks(v, d)
    assert out.shape == (2, 3, 68, 3) and out.dtype == np.float32 and isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, _reference(v, d, f))
    assert d.num_landmarks == 68 and not d.is_barycentric


def test_barycentric_definition_numpy_and_jax(mesh, bary_def):
    v, f = mesh
    ref = _reference(v.astype(np.float64), bary_def, f)
    out = extract_landmarks(v, bary_def, f)
    assert out.shape == (2, 3, 68, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-5)
    jitted = jax.jit(lambda x: extract_landmarks(x, bary_def, f))
    out_j = jitted(jnp.asarray(v))
    assert isinstance(out_j, jax.Array)
    np.testing.assert_allclose(np.asarray(out_j), ref, atol=1e-5)
    # Vertex-index definitions also work on traced arrays.
    d = LandmarkDefinition(vertex_indices=np.arange(68) % 30)
    out_v = jax.jit(lambda x: extract_landmarks(x, d))(jnp.asarray(v))
    np.testing.assert_array_equal(np.asarray(out_v), extract_landmarks(v, d))
    with pytest.raises(ValueError, match="needs the mesh faces"):
        extract_landmarks(v, bary_def)


def test_definition_validation():
    with pytest.raises(ValueError, match="either vertex_indices or"):
        LandmarkDefinition()
    with pytest.raises(ValueError, match="either vertex_indices or"):
        LandmarkDefinition(vertex_indices=np.arange(3), face_indices=np.arange(3))
    with pytest.raises(ValueError, match="together"):
        LandmarkDefinition(face_indices=np.arange(3))
    with pytest.raises(ValueError, match=r"\[3, 3\]"):
        LandmarkDefinition(face_indices=np.arange(3), barycentric=np.ones((3, 2)))
    with pytest.raises(ValueError, match="int array"):
        LandmarkDefinition(vertex_indices=np.ones(3))
    a = LandmarkDefinition(vertex_indices=np.arange(3))
    b = LandmarkDefinition(vertex_indices=np.arange(5))
    assert a.concatenate(b).num_landmarks == 8
    with pytest.raises(ValueError, match="cannot concatenate"):
        a.concatenate(LandmarkDefinition(face_indices=[0], barycentric=[[1, 0, 0]]))


def test_normalize_landmarks(rng):
    lm = rng.normal(size=(4, 68, 3)) * 0.05 + 0.3
    out = normalize_landmarks(lm)
    np.testing.assert_allclose(out.mean(axis=-2), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out.reshape(4, -1), axis=1), 1.0, atol=1e-12)
    # Invariant to translation and scale of each frame.
    np.testing.assert_allclose(normalize_landmarks(3.0 * lm + 1.0), out, atol=1e-12)
    out_j = jax.jit(normalize_landmarks)(jnp.asarray(lm, jnp.float32))
    np.testing.assert_allclose(np.asarray(out_j), out, atol=1e-6)


def test_landmark_displacement(rng):
    neutral = rng.normal(size=(68, 3))
    target = neutral + 0.1 * rng.normal(size=(5, 68, 3))
    d = landmark_displacement(target, neutral)
    assert d.shape == (5, 204)
    expected = normalize_landmarks(target) - normalize_landmarks(neutral)
    np.testing.assert_allclose(d[2, :6], expected[2, :2].ravel())  # [x0, y0, z0, x1, y1, z1]
    np.testing.assert_allclose(d.reshape(5, 68, 3), expected)
    # A scaled and shifted neutral is no displacement at all.
    np.testing.assert_allclose(landmark_displacement(2 * neutral + 5, neutral), 0.0, atol=1e-12)
    d_j = landmark_displacement(jnp.asarray(target), jnp.asarray(neutral))
    np.testing.assert_allclose(np.asarray(d_j), d, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# FLAME / RingNet embedding files
# ---------------------------------------------------------------------------------------------


def _embedding(rng, k=51):
    b = rng.uniform(size=(k, 3))
    return {
        "lmk_face_idx": rng.integers(0, 9976, size=k),
        "lmk_b_coords": b / b.sum(1, keepdims=True),
    }


def test_flame_npz_and_pkl(tmp_path, rng):
    emb = _embedding(rng)
    npz = tmp_path / "static.npz"
    np.savez(npz, **emb)
    d = from_flame_embedding(npz)
    assert d.is_barycentric and d.num_landmarks == 51
    np.testing.assert_array_equal(d.face_indices, emb["lmk_face_idx"])
    np.testing.assert_allclose(d.barycentric, emb["lmk_b_coords"], rtol=1e-6)

    pkl = tmp_path / "flame_static_embedding.pkl"
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        with open(pkl, "wb") as fh:
            pickle.dump({**emb, "full_lmk_faces_idx": emb["lmk_face_idx"][None]}, fh, protocol)
        d = from_flame_embedding(pkl)
        np.testing.assert_array_equal(d.face_indices, emb["lmk_face_idx"])


def test_flame_dynamic_npy_and_s2d_order(tmp_path, rng):
    dyn = {
        "lmk_face_idx": rng.integers(0, 9976, size=(79, 17)),
        "lmk_b_coords": rng.uniform(size=(79, 17, 3)),
    }
    npy = tmp_path / "flame_dynamic_embedding.npy"
    np.save(npy, np.array(dyn, dtype=object), allow_pickle=True)
    d0 = from_flame_embedding(npy)
    np.testing.assert_array_equal(d0.face_indices, dyn["lmk_face_idx"][0])
    d5 = from_flame_embedding(npy, dynamic_index=5)
    np.testing.assert_array_equal(d5.face_indices, dyn["lmk_face_idx"][5])
    static = tmp_path / "static.npz"
    np.savez(static, **_embedding(rng))
    full = from_flame_embeddings(static, npy)
    assert full.num_landmarks == 68
    np.testing.assert_array_equal(full.face_indices[:17], dyn["lmk_face_idx"][0])
    with pytest.raises(LandmarkEmbeddingError, match="dynamic_index 79 out of range"):
        from_flame_embedding(npy, dynamic_index=79)


def test_flame_errors_name_file_and_field(tmp_path, rng):
    emb = _embedding(rng)
    missing = tmp_path / "no_bary.npz"
    np.savez(missing, lmk_face_idx=emb["lmk_face_idx"])
    with pytest.raises(LandmarkEmbeddingError, match=r"no_bary\.npz: missing field 'lmk_b_coords'"):
        from_flame_embedding(missing)

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as fh:
        pickle.dump({"lmk_face_idx": Evil()}, fh)
    with pytest.raises(LandmarkEmbeddingError, match=r"evil\.pkl: refusing to unpickle"):
        from_flame_embedding(evil)

    notdict = tmp_path / "list.pkl"
    with open(notdict, "wb") as fh:
        pickle.dump([1, 2], fh)
    with pytest.raises(LandmarkEmbeddingError, match="expected a dict"):
        from_flame_embedding(notdict)

    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    with pytest.raises(LandmarkEmbeddingError, match=r"plain\.npy: holds a plain float64 array"):
        from_flame_embedding(plain)

    bad_shape = tmp_path / "shape.npz"
    np.savez(bad_shape, lmk_face_idx=np.arange(4), lmk_b_coords=np.ones((3, 3)))
    with pytest.raises(LandmarkEmbeddingError, match="do not describe K landmarks"):
        from_flame_embedding(bad_shape)

    with pytest.raises(LandmarkEmbeddingError, match=r"nothere\.pkl: no such"):
        from_flame_embedding(tmp_path / "nothere.pkl")
    other = tmp_path / "emb.txt"
    other.write_text("x")
    with pytest.raises(LandmarkEmbeddingError, match="unsupported extension"):
        from_flame_embedding(other)
