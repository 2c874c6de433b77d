"""Atomic file writes: a process killed mid-write leaves the previous file or none.

Every writer builds the file's bytes, writes them to a unique temporary file in the target's
folder and renames it over the target (``os.replace``, atomic on POSIX and Windows), so
concurrent writers and readers never see a half-written file. Files get the permissions of the
user's umask, as ``open`` would give them. A full disk raises :class:`DiskFullError`, naming the
file and the bytes it needed; the temporary file is removed and the previous file kept.

Folders are replaced the same way: :func:`staging_dir` makes a private folder beside the target
to build into, and :func:`replace_dir` puts it in the target's place (an atomic exchange where
the system has one), so readers see the old folder or the new one, never a mix.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "DiskFullError",
    "disk_full_error",
    "flatten_tree",
    "free_bytes",
    "is_disk_full",
    "remove_stale_staging",
    "replace_dir",
    "staging_dir",
    "umask",
    "unflatten_tree",
    "write_atomic",
    "write_json",
    "write_npy",
    "write_npz",
]


class DiskFullError(OSError):
    """No space was left on the device while writing a file or folder.

    Attributes:
      path: what was being written.
      needed: bytes the write needed (an upper bound when the writer compresses), or ``None``.
      free: bytes free on the device when the error was raised, or ``None``.
    """

    def __init__(self, message: str, *, path: str, needed: int | None = None,
                 free: int | None = None):
        super().__init__(message)
        self.errno = errno.ENOSPC
        self.path, self.needed, self.free = path, needed, free

    def __str__(self) -> str:
        return str(self.args[0])


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes free on the device that holds ``path`` or, when it does not exist yet, its nearest
    existing parent; ``None`` when that cannot be measured."""
    folder = os.path.abspath(os.fspath(path))
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder or ".").free
    except OSError:
        return None


def disk_full_error(path: str | os.PathLike, needed: int | None, what: str = "") -> DiskFullError:
    """A :class:`DiskFullError` for ``path``, with the free space measured now.

    Args:
      path: the file or folder that could not be written.
      needed: bytes the write needed, if known.
      what: what was being written (e.g. ``"checkpoint 40"``), for the message.
    """
    path = os.fspath(path)
    free = free_bytes(path)
    parts = [f"needs {needed:,} bytes" if needed is not None else "",
             f"{free:,} free" if free is not None else ""]
    detail = ", ".join(p for p in parts if p)
    about = f" for {what}" if what else ""
    return DiskFullError(
        f"{path}: no space left on device{about}" + (f" ({detail})" if detail else ""),
        path=path, needed=needed, free=free)


def is_disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` (or an exception it was raised from) reports a full disk (``ENOSPC``).

    Libraries that wrap the system error (tensorstore, used by orbax, raises ``ValueError``
    with the message) are recognised by the message.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(err)
        if "No space left on device" in text or "os_error_code='28'" in text:
            return True
        err = err.__cause__ or err.__context__
    return False


_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process's file-creation mask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, payload: bytes) -> str:
    """Writes ``payload`` to ``path`` atomically (creating its folder); returns the path.

    Raises:
      DiskFullError: the device is full (the previous file, if any, is kept).
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                         suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException as err:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if is_disk_full(err):
            raise disk_full_error(path, len(payload)) from err
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


def staging_dir(target: str | os.PathLike) -> str:
    """A new, empty folder beside ``target`` to build its replacement in.

    The folder is named ``.<target name>.tmp-<random>`` in the target's parent (created if
    needed), so :func:`replace_dir` can rename it into place on the same file system, and it
    gets the umask's permissions (not the private ``0700`` of a temporary folder). Staging
    folders of ``target`` older than a day (left by killed runs) are deleted first.
    """
    target = os.path.abspath(os.fspath(target))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    remove_stale_staging(target)
    folder = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    os.chmod(folder, 0o777 & ~umask())
    return folder


def remove_stale_staging(target: str | os.PathLike, max_age_s: float = 86400.0) -> list[str]:
    """Deletes staging folders of ``target`` older than ``max_age_s`` (left by killed runs).

    Returns:
      The folders removed.
    """
    target = os.path.abspath(os.fspath(target))
    parent, prefix = os.path.dirname(target), f".{os.path.basename(target)}.tmp-"
    removed = []
    if not os.path.isdir(parent):
        return removed
    now = time.time()
    for name in os.listdir(parent):
        folder = os.path.join(parent, name)
        if name.startswith(prefix) and os.path.isdir(folder):
            try:
                old = now - os.path.getmtime(folder) > max_age_s
            except OSError:
                continue
            if old:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps two paths (Linux ``renameat2``); returns ``False`` when unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


def replace_dir(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Puts the folder ``source`` at ``target``, replacing what was there; ``source`` is gone.

    Where ``target`` exists, the two are exchanged in one atomic step where the system allows
    (Linux ``renameat2``), so readers of ``target`` see the old folder or the new one; elsewhere
    the old folder is renamed aside first (a moment without ``target``, never a mix). The old
    folder is deleted afterwards.

    Args:
      source: the new folder (e.g. from :func:`staging_dir`), on ``target``'s file system.
      target: where it goes.
    """
    source = os.path.abspath(os.fspath(source))
    target = os.path.abspath(os.fspath(target))
    if not os.path.lexists(target):
        os.rename(source, target)
        return
    if _exchange(source, target):
        shutil.rmtree(source, ignore_errors=True)
        return
    aside = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-",
                             dir=os.path.dirname(target))
    old = os.path.join(aside, "old")
    os.rename(target, old)
    os.rename(source, target)
    shutil.rmtree(aside, ignore_errors=True)


def flatten_tree(tree: Any) -> dict[str, np.ndarray]:
    """A nested dict of arrays (a parameter tree) as ``{"a/b/c": array}``, the keys of an
    ``.npz`` file.

    Raises:
      ValueError: a key contains ``"/"``.

    Example:
      >>> sorted(flatten_tree({"a": {"b": np.zeros(1)}, "c": np.ones(2)}))
      ['a/b', 'c']
    """
    flat: dict[str, np.ndarray] = {}

    def walk(node, prefix):
        for key, value in node.items():
            if "/" in str(key):
                raise ValueError(f"parameter name {prefix + (key,)!r} contains '/'")
            if isinstance(value, Mapping):
                walk(value, prefix + (str(key),))
            else:
                flat["/".join(prefix + (str(key),))] = np.asarray(value)

    walk(tree, ())
    return flat


def unflatten_tree(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The inverse of :func:`flatten_tree`, float16 arrays widened to float32."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for name in parents:
            node = node.setdefault(name, {})
        value = np.asarray(value)
        node[leaf] = value.astype(np.float32) if value.dtype == np.float16 else value
    return tree
