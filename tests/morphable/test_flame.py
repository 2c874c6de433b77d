"""load_flame on a fixture written in FLAME's file layout, without chumpy."""

import functools
import io
import os
import pickle
import struct
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
import scipy.sparse

from jaxface.mesh import primitives
from jaxface.morphable.flame import load_flame
from jaxface.morphable.forward import FaceParams, contour_landmarks, morph
from jaxface.morphable.model import MorphableModelError
from tests.morphable.toy import morph_numpy


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: raw bytes as ``str`` (BINSTRING), not _codecs.encode."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_str


def _py2_dumps(obj) -> bytes:
    stream = io.BytesIO()
    _Py2Pickler(stream, protocol=2).dump(obj)
    data = stream.getvalue()
    for new, old in ((b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"),
                     (b"scipy.sparse._csc\n", b"scipy.sparse.csc\n")):
        data = data.replace(new, old)
    return data


def _fake_chumpy(monkeypatch):
    """A stand-in ``chumpy.ch.Ch`` (its pickled state: ``x`` and chumpy's bookkeeping)."""
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, np.float64)
            self._dirty_vars = set()
            self._itr = None
            self._depends_on_deps = {}
            self._make_dense = False
            self._make_sparse = False

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return Ch


@pytest.fixture
def flame_files(tmp_path, monkeypatch):
    """A 12-vertex FLAME: generic_model.pkl, eyelids, landmark and MediaPipe embeddings, masks."""
    rng = np.random.default_rng(3)
    ch = _fake_chumpy(monkeypatch)
    v, f = primitives.icosphere(0)
    n = v.shape[0]
    v = v.astype(np.float64) * 0.1
    weights = rng.uniform(size=(n, 5)) ** 2
    weights /= weights.sum(1, keepdims=True)
    j_dense = rng.uniform(size=(5, n)) * (rng.uniform(size=(5, n)) < 0.5)
    j_dense[:, 0] += 0.1
    j_dense /= j_dense.sum(1, keepdims=True)
    src = {
        "v_template": ch(v),
        "f": f.astype(np.uint32),
        "shapedirs": ch(rng.normal(size=(n, 3, 400)) * 1e-3),
        "posedirs": rng.normal(size=(n, 3, 36)) * 1e-3,
        "J_regressor": scipy.sparse.csc_matrix(j_dense),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "weights": weights,
        "J": j_dense @ v,
        "bs_style": b"lbs",
        "bs_type": b"lrotmin",
    }
    paths = {"model": tmp_path / "generic_model.pkl"}
    paths["model"].write_bytes(_py2_dumps(src))
    eyelids = rng.normal(size=(2, n, 3)) * 1e-3
    paths["eyelids"] = (tmp_path / "l_eyelid.npy", tmp_path / "r_eyelid.npy")
    for k in range(2):
        np.save(paths["eyelids"][k], eyelids[k])

    def bary(*shape):
        b = rng.uniform(size=(*shape, 3))
        return b / b.sum(-1, keepdims=True)

    try:
        import torch

        as_tensor = torch.from_numpy  # SMIRK's and DECA's files hold the dynamic part as tensors
    except ImportError:
        as_tensor = np.asarray
    emb = {
        "static_lmk_faces_idx": rng.integers(0, 20, size=51),
        "static_lmk_bary_coords": bary(51),
        "dynamic_lmk_faces_idx": as_tensor(rng.integers(0, 20, size=(79, 17))),
        "dynamic_lmk_bary_coords": as_tensor(bary(79, 17)),
        "full_lmk_faces_idx": rng.integers(0, 20, size=(1, 68)),
        "full_lmk_bary_coords": bary(1, 68),
    }
    paths["landmarks"] = tmp_path / "landmark_embedding.npy"
    np.save(paths["landmarks"], np.array(emb, dtype=object), allow_pickle=True)
    mp = {"lmk_face_idx": rng.integers(0, 20, size=105).astype(np.float64),
          "lmk_b_coords": bary(105), "landmark_indices": rng.permutation(468)[:105]}
    paths["mediapipe"] = tmp_path / "mediapipe_landmark_embedding.npz"
    np.savez(paths["mediapipe"], **mp)
    masks = {"face": np.array([0, 1, 2, 3, 4, 5, 6, 7]), "lips": np.array([2, 3]),
             "neck": np.array([10, 11])}
    paths["masks"] = tmp_path / "FLAME_masks.pkl"
    paths["masks"].write_bytes(_py2_dumps(masks))
    return {"paths": paths, "src": src, "v": v, "f": f, "eyelids": eyelids, "emb": emb, "mp": mp,
            "masks": masks, "j_dense": j_dense}


def _load(fx, **overrides):
    p = fx["paths"]
    kwargs = {"eyelids": p["eyelids"], "landmarks": p["landmarks"], "mediapipe": p["mediapipe"],
              "masks": p["masks"]}
    kwargs.update(overrides)
    return load_flame(p["model"], **kwargs)


def _numpy(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def test_fields_are_read_in_flame_layout(flame_files):
    fx = flame_files
    m = _load(fx)
    shapedirs = fx["src"]["shapedirs"].x
    assert m.name == "flame:generic_model.pkl"
    np.testing.assert_allclose(m.v_template, fx["v"], atol=1e-7)
    np.testing.assert_array_equal(m.faces, fx["f"])
    np.testing.assert_allclose(m.shapedirs, shapedirs[:, :, :300], atol=1e-9)
    np.testing.assert_allclose(m.exprdirs, shapedirs[:, :, 300:], atol=1e-9)
    assert m.num_shape == 300 and m.num_expression == 100
    np.testing.assert_allclose(m.posedirs, fx["src"]["posedirs"].reshape(-1, 36).T, atol=1e-9)
    np.testing.assert_allclose(m.j_regressor, fx["j_dense"], atol=1e-7)
    assert m.parents.tolist() == [-1, 0, 1, 1, 1]
    np.testing.assert_allclose(m.lbs_weights, fx["src"]["weights"], atol=1e-7)
    np.testing.assert_allclose(m.eyelids, fx["eyelids"], atol=1e-9)
    np.testing.assert_array_equal(m.landmarks68.faces, fx["emb"]["full_lmk_faces_idx"][0])
    np.testing.assert_allclose(m.landmarks68.bary, fx["emb"]["full_lmk_bary_coords"][0],
                               atol=1e-7)
    np.testing.assert_array_equal(m.contour_embedding.faces,
                                  _numpy(fx["emb"]["dynamic_lmk_faces_idx"]))
    np.testing.assert_allclose(m.contour_embedding.bary,
                               _numpy(fx["emb"]["dynamic_lmk_bary_coords"]), atol=1e-7)
    np.testing.assert_array_equal(m.mediapipe_indices, fx["mp"]["landmark_indices"])
    np.testing.assert_array_equal(m.mediapipe_landmarks.faces, fx["mp"]["lmk_face_idx"])
    np.testing.assert_array_equal(m.masks["lips"], [2, 3])
    inside = np.all(np.isin(fx["f"], fx["masks"]["face"]), axis=1)
    np.testing.assert_array_equal(m.face_mask_faces, fx["f"][inside])


def test_morph_of_the_fixture_matches_numpy(flame_files, rng):
    m = _load(flame_files).truncated(300, 50)
    params = FaceParams(
        shape=rng.normal(size=(8, 300)).astype(np.float32),
        expression=rng.normal(size=(8, 50)).astype(np.float32),
        pose=(rng.normal(size=(8, 3)) * 0.3).astype(np.float32),
        jaw=(rng.uniform(size=(8, 3)) * 0.2).astype(np.float32),
        eyelids=rng.uniform(size=(8, 2)).astype(np.float32))
    out = jax.jit(functools.partial(morph, m))(params)
    for b in range(8):
        ref = morph_numpy(m, *(np.asarray(getattr(params, k)[b], np.float64) for k in
                               ("shape", "expression", "pose", "jaw", "eyelids")))
        for got, want in zip((out.vertices, out.landmarks68, out.mediapipe), ref, strict=True):
            np.testing.assert_allclose(np.asarray(got[b]), want, atol=2e-6)
    assert contour_landmarks(m, out.vertices, params).shape == (8, 17, 3)


def test_loading_never_imports_chumpy_or_torch(flame_files):
    p = flame_files["paths"]
    code = (
        "import sys\n"
        "from jaxface.morphable.flame import load_flame\n"
        f"m = load_flame({str(p['model'])!r}, landmarks={str(p['landmarks'])!r}, "
        f"masks={str(p['masks'])!r})\n"
        "assert m.num_vertices == 12 and m.contour_embedding is not None\n"
        "assert 'chumpy' not in sys.modules and 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__)))))
    assert out.stdout.strip() == "ok"


def test_optional_files_left_out(flame_files):
    m = load_flame(flame_files["paths"]["model"])
    assert m.landmarks68.num_points == 0 and m.mediapipe_landmarks.num_points == 0
    assert m.contour_embedding is None and not np.any(m.eyelids)
    np.testing.assert_array_equal(m.masks["face"], np.arange(12))
    np.testing.assert_array_equal(m.face_mask_faces, m.faces)
    out = morph(m.truncated(3, 2), FaceParams.zeros(m.truncated(3, 2), (2,)))
    assert out.landmarks68.shape == (2, 0, 3)


def test_static_and_dynamic_landmarks_without_the_full_embedding(flame_files, tmp_path):
    emb = {k: v for k, v in flame_files["emb"].items() if not k.startswith("full")}
    path = tmp_path / "static_dynamic.npy"
    np.save(path, np.array(emb, dtype=object), allow_pickle=True)
    m = _load(flame_files, landmarks=path)
    want = np.concatenate([_numpy(emb["dynamic_lmk_faces_idx"])[0], emb["static_lmk_faces_idx"]])
    np.testing.assert_array_equal(m.landmarks68.faces, want)


def test_bad_files_are_named(flame_files, tmp_path):
    fx = flame_files
    src = dict(fx["src"])
    del src["weights"]
    (tmp_path / "no_weights.pkl").write_bytes(_py2_dumps(src))
    with pytest.raises(MorphableModelError, match=r"no_weights\.pkl: missing key 'weights'"):
        load_flame(tmp_path / "no_weights.pkl")
    src = dict(fx["src"], shapedirs=fx["src"]["shapedirs"].x[:, :, :300])
    (tmp_path / "short.pkl").write_bytes(_py2_dumps(src))
    with pytest.raises(MorphableModelError, match=r"short\.pkl: 'shapedirs' has shape"):
        load_flame(tmp_path / "short.pkl")
    src = dict(fx["src"], weights=fx["src"]["weights"][:, :4])
    (tmp_path / "weights.pkl").write_bytes(_py2_dumps(src))
    with pytest.raises(MorphableModelError, match=r"weights\.pkl: lbs_weights: expected shape"):
        load_flame(tmp_path / "weights.pkl")

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"v_template": Exploit()}, protocol=2))
    with pytest.raises(MorphableModelError, match=r"evil\.pkl: refusing to unpickle"):
        load_flame(tmp_path / "evil.pkl")
    with pytest.raises(FileNotFoundError, match=r"none\.pkl: no such file"):
        load_flame(tmp_path / "none.pkl")
    with pytest.raises(FileNotFoundError, match=r"l\.npy: no such file"):
        _load(fx, eyelids=(tmp_path / "l.npy", tmp_path / "r.npy"))
    bad = tmp_path / "emb.npy"
    np.save(bad, np.array({"static_lmk_faces_idx": np.arange(51)}, dtype=object),
            allow_pickle=True)
    with pytest.raises(MorphableModelError, match=r"emb\.npy: missing key 'full_lmk_faces_idx'"):
        _load(fx, landmarks=bad)
    mp = dict(fx["mp"])
    del mp["landmark_indices"]
    np.savez(tmp_path / "mp.npz", **mp)
    with pytest.raises(MorphableModelError, match=r"mp\.npz: missing key 'landmark_indices'"):
        _load(fx, mediapipe=tmp_path / "mp.npz")
    (tmp_path / "masks.pkl").write_bytes(pickle.dumps({"lips": np.arange(3)}))
    with pytest.raises(MorphableModelError, match=r"masks\.pkl: missing key 'face'"):
        _load(fx, masks=tmp_path / "masks.pkl")
