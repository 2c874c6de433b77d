"""Atomic file writes: a process killed mid-write leaves the previous file or none.

Every writer builds the file's bytes, writes them to a unique temporary file in the target's
folder and renames it over the target (``os.replace``, atomic on POSIX and Windows), so
concurrent writers and readers never see a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any

import numpy as np

__all__ = ["write_atomic", "write_json", "write_npy", "write_npz"]


def write_atomic(path: str | os.PathLike, payload: bytes) -> str:
    """Writes ``payload`` to ``path`` atomically (creating its folder); returns the path."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> str:
    """Writes ``obj`` as indented, key-sorted JSON (numpy scalars as floats); returns the path."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=float)
    return write_atomic(path, text.encode("utf-8"))


def write_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> str:
    """Writes arrays as an uncompressed ``.npz`` (no pickled objects); returns the path."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return write_atomic(path, buffer.getvalue())


def write_npy(path: str | os.PathLike, array: Any) -> str:
    """Writes one array as ``.npy``; returns the path."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return write_atomic(path, buffer.getvalue())
