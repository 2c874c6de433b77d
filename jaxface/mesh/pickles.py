"""Reading the pickles that face models ship in, without running their code or importing their
libraries.

Face-model files are pickles written by other projects: FLAME's ``generic_model.pkl`` (Python 2,
with ``chumpy`` arrays and a scipy sparse joint regressor), landmark embeddings saved with
``np.save`` from a dict (some holding PyTorch tensors), FLAME's mask pickle. A plain
``pickle.load`` would import chumpy or torch and could run arbitrary code. Here the stream is
decoded by an unpickler that builds only:

* numpy arrays, dtypes and scalars, and plain containers (dict, list, tuple, set,
  ``OrderedDict``, str, bytes, numbers), always;
* with ``allow={"sparse"}``: scipy sparse CSR, CSC and COO matrices, rebuilt with scipy's
  constructors from their recorded arrays (no scipy code runs while unpickling);
* with ``allow={"chumpy"}``: chumpy arrays (``chumpy.ch.Ch`` and the reorderings
  ``transpose``, ``Reshape``, ``Select``, ``Concatenate`` of ``chumpy.reordering``) as the
  numpy arrays they evaluate to; chumpy is never imported;
* with ``allow={"mesh"}``: psbody ``Mesh`` objects (CoMA-era hierarchy pickles) as dicts of
  their pickled attributes (``v``, ``f``, ...); psbody is never imported;
* with ``allow={"torch"}``: CPU tensors pickled by PyTorch (``torch._utils._rebuild_tensor_v2``
  over a storage serialised by ``torch.storage._load_from_bytes`` in torch's legacy format) as
  numpy arrays; torch is never imported.

Anything else is refused with a :class:`PickleContentError` naming the file and the class.
Python 2 pickles are read with ``encoding="latin1"`` (numpy's convention for them).

Example:
  >>> import pickle
  >>> restricted_loads(pickle.dumps({"a": np.arange(3)}), source="x.pkl")["a"].tolist()
  [0, 1, 2]
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse

__all__ = [
    "FAMILIES",
    "PickleContentError",
    "read_object_npy",
    "read_pickle",
    "restricted_loads",
]

FAMILIES = ("chumpy", "mesh", "sparse", "torch")
"""The optional kinds of objects :func:`restricted_loads` can be allowed to rebuild."""

# Globals a pickle of numpy arrays and plain containers may reference (numpy 1.x and 2.x
# spellings, Python 2 and 3 module names).
_PLAIN = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 encode raw bytes with it
    ("copy_reg", "_reconstructor"),  # Python 2 objects: object.__new__ of an allowed class
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
    ("__builtin__", "set"),
    ("builtins", "set"),
    ("__builtin__", "frozenset"),
    ("builtins", "frozenset"),
}
_SPARSE_NAMES = {
    "csr_matrix": "csr", "csc_matrix": "csc", "coo_matrix": "coo",
    "csr_array": "csr", "csc_array": "csc", "coo_array": "coo",
}
_CHUMPY_KINDS = ("Ch", "transpose", "Reshape", "Select", "Concatenate")
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?",
}


class PickleContentError(ValueError):
    """A pickle holds something the restricted unpickler does not build, or cannot be decoded.

    Attributes:
      source: the file (or label) the data came from.
      detail: the message without the source prefix.
    """

    def __init__(self, source: str, detail: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"{source}: {detail}")


# ---------------------------------------------------------------------------------------------
# Records: what allowed foreign objects become while unpickling
# ---------------------------------------------------------------------------------------------


class _Record:
    """A foreign object seen while unpickling: its class name and its pickled state only."""

    kind = ""
    args: tuple = ()
    state: dict = {}  # replaced per instance by __new__ and __setstate__

    def __new__(cls, *args: Any, **kwargs: Any) -> _Record:
        obj = object.__new__(cls)
        obj.args = args
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        self.state = state if isinstance(state, dict) else {"": state}


class _SparseRecord(_Record):
    pass


class _ChumpyRecord(_Record):
    pass


class _MeshRecord(_Record):
    pass


def _record_class(base: type[_Record], kind: str) -> type[_Record]:
    return type(base.__name__, (base,), {"kind": kind})


class _TorchStorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _TorchStorage:
    def __init__(self, dtype: np.dtype, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel = dtype, key, numel
        self.data: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# The unpickler
# ---------------------------------------------------------------------------------------------


def _accepted(allow: frozenset[str]) -> str:
    extra = {"sparse": "scipy sparse matrices", "chumpy": "chumpy arrays",
             "mesh": "psbody meshes", "torch": "torch CPU tensors"}
    kinds = ["numpy arrays", "plain containers", *(extra[f] for f in sorted(allow))]
    return ", ".join(kinds)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str, allow: frozenset[str]) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source
        self._allow = allow
        self._classes: dict[str, type[_Record]] = {}

    def _record(self, base: type[_Record], kind: str) -> type[_Record]:
        if kind not in self._classes:
            self._classes[kind] = _record_class(base, kind)
        return self._classes[kind]

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN:
            if module.startswith("numpy.core"):
                module = "numpy._core" + module[len("numpy.core"):]
            module = {"copy_reg": "copyreg", "__builtin__": "builtins"}.get(module, module)
            return getattr(importlib.import_module(module), name)
        if "sparse" in self._allow and module.startswith("scipy.sparse"):
            if name in _SPARSE_NAMES:
                return self._record(_SparseRecord, name)
        if "chumpy" in self._allow and module.split(".")[0] == "chumpy":
            return self._record(_ChumpyRecord, f"{module}.{name}")
        if "mesh" in self._allow and (module.split(".")[0] == "psbody" or name == "Mesh"):
            return self._record(_MeshRecord, f"{module}.{name}")
        if "torch" in self._allow:
            if (module, name) in (("torch._utils", "_rebuild_tensor_v2"),
                                  ("torch._utils", "_rebuild_tensor")):
                return _rebuild_tensor
            if (module, name) == ("torch.storage", "_load_from_bytes"):
                return lambda data: _load_torch_storage(data, self._source)
        raise PickleContentError(
            self._source,
            f"refusing to unpickle {module}.{name}; only {_accepted(self._allow)} are accepted",
        )


class _TorchStorageUnpickler(_Unpickler):
    """The inner pickle of a legacy ``torch.save`` stream: storages are persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _TORCH_STORAGE_DTYPES:
            return _TorchStorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _TorchStorageType)):
            raise PickleContentError(self._source, f"unsupported torch persistent id {pid!r:.80}")
        if len(pid) > 5 and pid[5] is not None:
            raise PickleContentError(self._source, "torch storage views are not supported")
        return _TorchStorage(np.dtype(_TORCH_STORAGE_DTYPES[pid[1].name]), str(pid[2]),
                             int(pid[4]))


def _load_torch_storage(data: bytes, source: str) -> _TorchStorage:
    """Decodes the legacy ``torch.save`` stream of one storage (what ``_load_from_bytes`` gets)."""
    if isinstance(data, str):
        data = data.encode("latin1")
    stream = io.BytesIO(data)

    def load() -> Any:
        return _TorchStorageUnpickler(stream, source, frozenset()).load()

    if load() != _TORCH_MAGIC:
        raise PickleContentError(source, "a torch storage is not in torch's legacy format")
    load()  # protocol version
    info = load()
    if not (isinstance(info, dict) and info.get("little_endian", False)):
        raise PickleContentError(source, "a torch storage is not little-endian")
    storage = load()
    keys = load()
    if not isinstance(storage, _TorchStorage) or list(keys) != [storage.key]:
        raise PickleContentError(source, "a torch storage stream holds more than one storage")
    numel = int(np.frombuffer(stream.read(8), "<i8")[0])
    raw = stream.read(numel * storage.dtype.itemsize)
    if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
        raise PickleContentError(source, "a torch storage is truncated")
    storage.data = np.frombuffer(raw, storage.dtype).copy()
    return storage


def _rebuild_tensor(storage: _TorchStorage, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_: Any) -> np.ndarray:
    base = storage.data[offset:]
    itemsize = base.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        base, shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


# ---------------------------------------------------------------------------------------------
# Turning records into numpy / scipy objects
# ---------------------------------------------------------------------------------------------


class _Finalizer:
    def __init__(self, source: str) -> None:
        self._source = source
        self._done: dict[int, Any] = {}

    def __call__(self, obj: Any) -> Any:
        key = id(obj)
        if key in self._done:
            return self._done[key]
        if isinstance(obj, _SparseRecord):
            out = self._sparse(obj)
        elif isinstance(obj, _ChumpyRecord):
            out = self._chumpy(obj)
        elif isinstance(obj, _MeshRecord):
            out = {k: self(v) for k, v in obj.state.items()}
        elif isinstance(obj, dict):
            out = type(obj)((k, self(v)) for k, v in obj.items())
        elif isinstance(obj, list):
            out = [self(v) for v in obj]
        elif isinstance(obj, tuple):
            out = tuple(self(v) for v in obj)
        elif isinstance(obj, np.ndarray) and obj.dtype == object:
            out = np.empty(obj.shape, dtype=object)
            for index in np.ndindex(obj.shape):
                out[index] = self(obj[index])
        else:
            out = obj
        self._done[key] = out
        return out

    def _sparse(self, rec: _SparseRecord) -> scipy.sparse.spmatrix:
        s, fmt = rec.state, _SPARSE_NAMES[rec.kind]
        shape = s.get("_shape", s.get("shape"))
        try:
            shape = tuple(int(n) for n in shape)
            if fmt == "coo":
                row, col = (s["coords"] if "coords" in s else (s["row"], s["col"]))
                return scipy.sparse.coo_matrix((np.asarray(s["data"]), (row, col)), shape=shape)
            cls = scipy.sparse.csr_matrix if fmt == "csr" else scipy.sparse.csc_matrix
            return cls((np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])),
                       shape=shape)
        except (KeyError, TypeError, ValueError) as err:
            raise PickleContentError(
                self._source, f"a pickled {rec.kind} is malformed ({err})") from None

    def _chumpy(self, rec: _ChumpyRecord) -> np.ndarray:
        s, name = rec.state, rec.kind.rsplit(".", 1)[-1]
        if name not in _CHUMPY_KINDS:
            raise PickleContentError(
                self._source, f"chumpy object {rec.kind} is not supported (only "
                f"{', '.join(_CHUMPY_KINDS)})")

        def value(key: str) -> np.ndarray:
            if key not in s:
                raise PickleContentError(self._source,
                                         f"chumpy object {rec.kind} has no '{key}'")
            return np.asarray(self(s[key]))

        if name == "Ch":
            return value("x")
        if name == "transpose":
            return np.ascontiguousarray(np.transpose(value("a"), axes=s.get("axes")))
        if name == "Reshape":
            return value("a").reshape(s["newshape"])
        if name == "Select":
            out = value("a").ravel()[np.asarray(s["idxs"])]
            return out.reshape(s["preferred_shape"]) if "preferred_shape" in s else out
        terms = [value(t) for t in s.get("dterms", [])]
        return np.concatenate(terms, axis=s.get("axis", 0))


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _families(allow: Iterable[str]) -> frozenset[str]:
    allow = frozenset(allow)
    unknown = allow - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown pickle families {sorted(unknown)}; choose from {FAMILIES}")
    return allow


def restricted_loads(data: bytes, *, source: str, allow: Iterable[str] = ()) -> Any:
    """Decodes a pickle stream, building only numpy arrays, plain containers and ``allow``.

    Args:
      data: the pickle bytes.
      source: the file name (or a label) used in error messages.
      allow: optional families from :data:`FAMILIES` (``"sparse"``, ``"chumpy"``,
        ``"torch"``), see the module docstring.

    Returns:
      The object, with chumpy arrays and torch tensors as numpy arrays and sparse matrices as
      scipy CSR/CSC/COO matrices.

    Raises:
      PickleContentError: the stream references a class that is not allowed, or cannot be decoded.
    """
    families = _families(allow)
    try:
        obj = _Unpickler(io.BytesIO(data), source, families).load()
    except PickleContentError:
        raise
    except Exception as err:  # any decoding failure is reported with the file name
        raise PickleContentError(source, f"cannot read pickle data ({err})") from err
    return _Finalizer(source)(obj)


def read_pickle(path: str | os.PathLike[str], *, allow: Iterable[str] = ()) -> Any:
    """Reads a pickle file with :func:`restricted_loads`.

    Raises:
      FileNotFoundError: naming the file.
      PickleContentError: as :func:`restricted_loads`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        return restricted_loads(fh.read(), source=path, allow=allow)


def read_object_npy(path: str | os.PathLike[str], *, allow: Iterable[str] = ()) -> Any:
    """Reads an ``.npy`` file saved from a Python object (``np.save(path, some_dict)``).

    The ``.npy`` header is parsed by numpy and the pickled payload by :func:`restricted_loads`;
    a 0-d object array is unwrapped to the object it holds.

    Raises:
      FileNotFoundError: naming the file.
      PickleContentError: not an ``.npy`` file, a plain (non-object) array, or a refused payload.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                _, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise PickleContentError(path, f"unsupported .npy format version {version}")
        except ValueError as err:
            if isinstance(err, PickleContentError):
                raise
            raise PickleContentError(path, f"not a .npy file ({err})") from err
        if not dtype.hasobject:
            raise PickleContentError(
                path, f"holds a plain {dtype} array; expected a saved Python object (a dict)")
        obj = restricted_loads(fh.read(), source=path, allow=allow)
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0:
        obj = obj.item()
    return obj
