"""The restricted unpickler for face-model files: numpy, sparse, chumpy and torch content."""

import os
import pickle
import pickletools
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from jaxface.mesh.pickles import (
    PickleContentError,
    read_object_npy,
    read_pickle,
    restricted_loads,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_plain_arrays_and_containers_round_trip(rng, protocol):
    obj = {"a": rng.normal(size=(4, 3)).astype(np.float32), "b": [1, (2.5, "x")],
           "c": {np.int64(3), 4}, "d": np.arange(6, dtype=np.int64).reshape(2, 3).T}
    got = restricted_loads(pickle.dumps(obj, protocol=protocol), source="p.pkl")
    np.testing.assert_array_equal(got["a"], obj["a"])
    assert got["a"].dtype == np.float32
    np.testing.assert_array_equal(got["d"], obj["d"])
    assert got["b"] == [1, (2.5, "x")] and got["c"] == {3, 4}


def test_code_and_unlisted_families_are_refused(rng):
    with pytest.raises(PickleContentError, match=r"evil\.pkl: refusing to unpickle posix\.system"):
        restricted_loads(pickle.dumps({"x": _Exploit()}, protocol=2), source="evil.pkl")
    csc = scipy.sparse.random(5, 7, density=0.3, format="csc", random_state=0)
    data = pickle.dumps({"m": csc}, protocol=2)
    with pytest.raises(PickleContentError, match=r"refusing to unpickle scipy\.sparse.*csc_matrix"):
        restricted_loads(data, source="m.pkl")
    with pytest.raises(PickleContentError, match=r"t\.pkl: cannot read pickle data"):
        restricted_loads(b"\x80\x02garbage", source="t.pkl")
    with pytest.raises(ValueError, match="unknown pickle families"):
        restricted_loads(data, source="m.pkl", allow={"pandas"})


@pytest.mark.parametrize("fmt", ["csc", "csr", "coo"])
def test_sparse_matrices_are_rebuilt(fmt):
    m = scipy.sparse.random(6, 9, density=0.3, format=fmt, random_state=1)
    got = restricted_loads(pickle.dumps({"m": m}, protocol=2), source="m.pkl", allow={"sparse"})
    assert scipy.sparse.issparse(got["m"]) and got["m"].format == fmt
    np.testing.assert_array_equal(got["m"].toarray(), m.toarray())


def _fake_chumpy(monkeypatch):
    """Stand-ins for chumpy's classes, importable as chumpy.ch / chumpy.reordering only here."""
    ch_mod = types.ModuleType("chumpy.ch")
    re_mod = types.ModuleType("chumpy.reordering")

    class Ch:
        def __init__(self, x=None, **terms):
            if x is not None:
                self.x = np.asarray(x, np.float64)
            self.__dict__.update(terms)
            self._dirty_vars = set()
            self._itr = None
            self._depends_on_deps = {}

    made = {"Ch": Ch}
    for name in ("transpose", "Reshape", "Select", "Concatenate", "Sum"):
        made[name] = type(name, (Ch,), {})
    for name, cls in made.items():
        module = ch_mod if name == "Ch" else re_mod
        cls.__module__ = module.__name__
        cls.__qualname__ = name
        setattr(module, name, cls)
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch_mod)
    monkeypatch.setitem(sys.modules, "chumpy.reordering", re_mod)
    return made


def test_chumpy_arrays_evaluate_to_numpy(monkeypatch, rng):
    c = _fake_chumpy(monkeypatch)
    base = rng.normal(size=(4, 3, 5))
    node = c["Ch"](base)
    obj = {
        "plain": node,
        "t": c["transpose"](a=node, axes=(2, 0, 1)),
        "r": c["Reshape"](a=node, newshape=(12, 5)),
        "s": c["Select"](a=node, idxs=np.array([3, 0, 7]), preferred_shape=(3, 1)),
        "cat": c["Concatenate"](m0=node, m1=c["Ch"](base[:1]), dterms=["m0", "m1"], axis=0),
    }
    got = restricted_loads(pickle.dumps(obj, protocol=2), source="c.pkl", allow={"chumpy"})
    np.testing.assert_array_equal(got["plain"], base)
    np.testing.assert_array_equal(got["t"], np.transpose(base, (2, 0, 1)))
    np.testing.assert_array_equal(got["r"], base.reshape(12, 5))
    np.testing.assert_array_equal(got["s"], base.ravel()[[3, 0, 7]].reshape(3, 1))
    np.testing.assert_array_equal(got["cat"], np.concatenate([base, base[:1]]))
    unsupported = pickle.dumps({"s": c["Sum"](a=node)}, protocol=2)
    with pytest.raises(PickleContentError, match=r"chumpy object chumpy\.reordering\.Sum"):
        restricted_loads(unsupported, source="c.pkl", allow={"chumpy"})


def test_object_npy_and_files(tmp_path, rng):
    d = {"lmk_face_idx": rng.integers(0, 50, size=5), "bary": rng.uniform(size=(5, 3))}
    path = tmp_path / "e.npy"
    np.save(path, np.array(d, dtype=object), allow_pickle=True)
    got = read_object_npy(path)
    np.testing.assert_array_equal(got["lmk_face_idx"], d["lmk_face_idx"])
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(PickleContentError, match=r"plain\.npy: holds a plain float64 array"):
        read_object_npy(tmp_path / "plain.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(PickleContentError, match=r"text\.npy: not a \.npy file"):
        read_object_npy(tmp_path / "text.npy")
    with pytest.raises(FileNotFoundError, match=r"gone\.pkl: no such file"):
        read_pickle(tmp_path / "gone.pkl")
    with open(tmp_path / "d.pkl", "wb") as fh:
        pickle.dump(d, fh, protocol=2)
    np.testing.assert_array_equal(read_pickle(tmp_path / "d.pkl")["bary"], d["bary"])


def test_torch_tensors_become_numpy_without_torch(tmp_path, rng):
    torch = pytest.importorskip("torch")
    values = {
        "long": torch.arange(79 * 17).reshape(79, 17).long(),
        "float": torch.tensor(rng.uniform(size=(79, 17, 3)), dtype=torch.float32),
        "strided": torch.tensor(rng.normal(size=(4, 6))).t(),
        "numpy": rng.normal(size=(2, 3)),
    }
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, np.array(values, dtype=object), allow_pickle=True)
    with pytest.raises(PickleContentError, match=r"refusing to unpickle torch\._utils"):
        read_object_npy(path)
    got = read_object_npy(path, allow={"torch"})
    for key, value in values.items():
        expected = value.numpy() if hasattr(value, "numpy") else value
        assert isinstance(got[key], np.ndarray) and got[key].dtype == expected.dtype
        np.testing.assert_array_equal(got[key], expected)
    # A fresh interpreter reads the file without importing torch.
    code = (
        "import sys; from jaxface.mesh.pickles import read_object_npy; "
        f"d = read_object_npy({str(path)!r}, allow={{'torch'}}); "
        "assert d['long'].shape == (79, 17) and 'torch' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_truncated_torch_storage_is_reported():
    torch = pytest.importorskip("torch")
    # The legacy torch.save stream of the tensor's storage, as pickling a tensor embeds it.
    ops = pickletools.genops(pickle.dumps(torch.arange(40), protocol=2))
    legacy = next(arg for op, arg, _ in ops if op.name == "BINUNICODE").encode("latin1")

    class Storage:
        def __init__(self, data):
            self.data = data

        def __reduce__(self):
            return (torch.storage._load_from_bytes, (self.data,))

    good = restricted_loads(pickle.dumps(Storage(legacy), protocol=2), source="s.pkl",
                            allow={"torch"})
    np.testing.assert_array_equal(good.data.view(np.int64), np.arange(40))
    with pytest.raises(PickleContentError, match=r"s\.pkl: a torch storage is truncated"):
        restricted_loads(pickle.dumps(Storage(legacy[:-16]), protocol=2), source="s.pkl",
                         allow={"torch"})
