"""A run's work directory: one process at a time, and one config for its whole life.

:func:`lock_workdir` takes an exclusive lock on ``<workdir>/.lock`` (a ``filelock`` lock, released
by the system when the holder dies, even by SIGKILL), so a second training on the same folder
stops at once with :class:`WorkdirBusyError`, naming the holder's process id, instead of
interleaving its checkpoints and metrics with the first one's.

:func:`store_config` is how a run records its config: it compares the new config with the
``config.json`` already in the folder *before* writing anything, and refuses a resumed run whose
config changed (:class:`ConfigMismatchError`, a one-line diff), so a mistaken re-run cannot
overwrite the config an intact run needs to be loaded. Only the fields of
:data:`RESUMABLE_FIELDS`, which change how long a run trains or how it logs, may change.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import filelock
import jax

from jaxface.files import write_json

__all__ = [
    "ADDED_FIELDS",
    "RESUMABLE_FIELDS",
    "ConfigMismatchError",
    "WorkdirBusyError",
    "config_changes",
    "lock_workdir",
    "read_config",
    "store_config",
]

#: Config fields (the last part of a dotted key, at any depth) a resumed run may change: they
#: set how long it trains (``num_epochs``) and how it saves and logs, not what it computes.
RESUMABLE_FIELDS = ("checkpoint_every", "log_every", "num_epochs", "progress")

LOCK_FILE = ".lock"

#: Config fields added after runs had stored their configs, with the value that does what
#: those runs did: a stored config without the field matches a new one that holds this value
#: (the field is compared by its dotted key's end, at any depth).
ADDED_FIELDS: dict[str, Any] = {"validation.keep": "last"}


class WorkdirBusyError(OSError):
    """Another process holds the work directory (it is training there)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigMismatchError(ValueError):
    """A run was resumed with a config that differs from the one it was started with."""


_HELD: dict[str, int] = {}
_HELD_LOCK = threading.Lock()


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            owner = f.read().strip()
    except OSError:
        owner = ""
    pid, _, host = owner.partition("@")
    if not pid.isdigit():
        return "another process"
    return f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


@contextlib.contextmanager
def lock_workdir(workdir: str | os.PathLike, *, timeout: float = 0.0) -> Iterator[str]:
    """Holds ``<workdir>/.lock`` for the duration of the block (creating the folder).

    The lock is re-entrant within a process (a nested block on the same folder passes) and is
    taken by process 0 only: on several hosts the run is one job, not a rival.

    Args:
      workdir: the run's folder.
      timeout: seconds to wait for a holder to finish (0: fail at once; negative: as long as
        it takes).

    Yields:
      The lock file's path.

    Raises:
      WorkdirBusyError: another process holds the lock, e.g. ``"/runs/a is in use by process
        4242 (another run is training there); wait for it to finish or use another work
        directory"``.
    """
    workdir = os.path.abspath(os.fspath(workdir))
    path = os.path.join(workdir, LOCK_FILE)
    if jax.process_index() != 0:
        yield path
        return
    with _HELD_LOCK:
        nested = path in _HELD
        if nested:
            _HELD[path] += 1
    if nested:
        try:
            yield path
        finally:
            with _HELD_LOCK:
                _HELD[path] -= 1
        return
    os.makedirs(workdir, exist_ok=True)
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise WorkdirBusyError(
            f"{workdir} is in use by {_holder(path)} (another run is training there); wait for "
            "it to finish or use another work directory"
        ) from None
    try:
        with open(path, "r+") as f:  # the lock is on the file, not its contents
            f.write(f"{os.getpid()}@{socket.gethostname()}\n")
            f.truncate()
        with _HELD_LOCK:
            _HELD[path] = 1
        yield path
    finally:
        with _HELD_LOCK:
            _HELD.pop(path, None)
        lock.release()


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping) and (tree or not prefix):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _normalise(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as it reads back from JSON (tuples become lists, numpy scalars floats)."""
    return json.loads(json.dumps(dict(config), sort_keys=True, default=float))


def config_changes(stored: Mapping[str, Any], new: Mapping[str, Any],
                   resumable: tuple[str, ...] = RESUMABLE_FIELDS) -> list[str]:
    """The differences between two configs outside ``resumable``, as ``"key: old -> new"``.

    Args:
      stored: the config the run was started with (nested mappings).
      new: the config of this call.
      resumable: last key parts whose values may change.

    Returns:
      One entry per changed dotted key, sorted; ``(absent)`` marks a key only one side has
      (but for a field of :data:`ADDED_FIELDS` at the value it stands for).

    Example:
      >>> config_changes({"optim": {"lr": 0.1, "num_epochs": 3}},
      ...                {"optim": {"lr": 0.2, "num_epochs": 9}})
      ['optim.lr: 0.1 -> 0.2']
    """
    old, cur = _flatten(_normalise(stored)), _flatten(_normalise(new))
    changes = []
    for key in sorted(set(old) | set(cur)):
        if key.rsplit(".", 1)[-1] in resumable:
            continue
        added = [v for f, v in ADDED_FIELDS.items() if key == f or key.endswith("." + f)]
        if added and (key in old) != (key in cur) and old.get(key, cur.get(key)) == added[0]:
            continue
        a = _show(old[key]) if key in old else "(absent)"
        b = _show(cur[key]) if key in cur else "(absent)"
        if key not in old or key not in cur or old[key] != cur[key]:
            changes.append(f"{key}: {a} -> {b}")
    return changes


def store_config(workdir: str | os.PathLike, config: Mapping[str, Any]) -> str:
    """Checks ``config`` against the run's ``config.json``, then writes it; returns its path.

    A new run writes its config. A resumed run must have the config it was started with, up to
    :data:`RESUMABLE_FIELDS` (whose new values are written); anything else is refused before a
    byte is written, so the stored config keeps describing the checkpoints beside it. The check
    and the write hold the work directory's lock.

    Args:
      workdir: the run's folder (created if needed).
      config: the run's config (e.g. ``ConfigDict.to_dict()``).

    Raises:
      ConfigMismatchError: the run was started with another config, e.g. ``".../config.json:
        the run was started with another config: optim.learning_rate: 0.001 -> 0.01; use
        another work directory or the stored values (a resumed run may change only
        checkpoint_every, log_every, num_epochs, progress)"``.
      ValueError: the stored ``config.json`` is not valid JSON.
      WorkdirBusyError: another process holds the work directory.
    """
    workdir = os.path.abspath(os.fspath(workdir))
    path = os.path.join(workdir, "config.json")
    new = _normalise(config)
    with lock_workdir(workdir):
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    stored = json.load(f)
            except (ValueError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"{path}: not valid JSON ({str(err).splitlines()[0]}); the run's config is "
                    "damaged: restore it, or delete it to resume with the new config"
                ) from err
            changes = config_changes(stored, new)
            if changes:
                shown = "; ".join(changes[:6])
                more = f"; and {len(changes) - 6} more" if len(changes) > 6 else ""
                raise ConfigMismatchError(
                    f"{path}: the run was started with another config: {shown}{more}; use "
                    "another work directory or the stored values (a resumed run may change "
                    f"only {', '.join(RESUMABLE_FIELDS)})"
                )
            if stored == new:
                return path
        return write_json(path, new)


def read_config(workdir: str | os.PathLike, what: str = "run"):
    """The config a trained run was started with (its ``config.json``), as a ``ConfigDict``.

    Args:
      workdir: the run's folder.
      what: what the run is, for the messages (e.g. ``"S2D-Dec run"``).

    Raises:
      FileNotFoundError: no ``config.json`` (the folder is not a trained ``what``).
      ValueError: the file is not valid JSON.
    """
    import ml_collections  # deferred: only loaders need it

    path = os.path.join(os.path.abspath(os.fspath(workdir)), "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{os.path.dirname(path)} is not a trained {what}: config.json "
                                "is missing")
    with open(path) as f:
        try:
            return ml_collections.ConfigDict(json.load(f))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
