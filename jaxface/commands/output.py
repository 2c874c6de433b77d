"""Output folders of the commands: never mixed with earlier results, never left half-written.

A command writes its files into a staging folder beside ``--out`` (:func:`staged_output`) and
renames it into place when everything is written. A folder that already holds files is refused
unless ``--overwrite`` is given, and then replaced as a whole (in one atomic step where the
system allows), so the result never mixes two runs. A failure (a full disk, Ctrl-C, an error)
removes the staging folder and leaves ``--out`` as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

from jaxface.commands.errors import UserError
from jaxface.files import DiskFullError, disk_full_error, is_disk_full, replace_dir, staging_dir

__all__ = ["UNITS", "check_output", "staged_output", "units_hint"]

#: ``--units`` choices: metres per unit of the input meshes.
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def check_output(out: str, overwrite: bool) -> str:
    """The absolute ``--out`` folder; refuses one that holds files unless ``overwrite``.

    Raises:
      UserError: ``out`` is a file, or a folder with files and ``overwrite`` is off.
    """
    out = os.path.abspath(out)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise UserError(f"{out}: exists and is not a folder; choose another --out")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        count = len(os.listdir(out))
        raise UserError(f"{out}: holds earlier results ({count} entries); pass --overwrite to "
                        "replace them, or choose another --out")
    return out


@contextlib.contextmanager
def staged_output(out: str, overwrite: bool) -> Iterator[str]:
    """Yields a staging folder for the output; puts it at ``out`` when the block succeeds.

    Args:
      out: the ``--out`` folder.
      overwrite: replace a folder that holds earlier results.

    Raises:
      UserError: see :func:`check_output`.
      DiskFullError: the disk filled while writing, naming ``out``; nothing was written.
    """
    out = check_output(out, overwrite)
    staging = staging_dir(out)
    try:
        yield staging
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, Exception) and is_disk_full(err):
            needed = err.needed if isinstance(err, DiskFullError) else None
            full = disk_full_error(out, needed, "the output")
            raise DiskFullError(f"{full}; nothing was written", path=out, needed=needed,
                                free=full.free) from err
        raise
    try:
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def units_hint(factor: float) -> str:
    """The ``--units`` that would bring a mesh ``factor`` times the template's size to it."""
    words = {"cm": "centimetres", "mm": "millimetres"}
    for name, metres in UNITS.items():
        if metres < 1.0 and 0.5 <= factor * metres <= 2.0:
            return f"; if the mesh is in {words[name]}, pass --units {name}"
    return "; rescale the mesh to metres"
