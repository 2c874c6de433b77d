"""The error type raised for malformed mesh input."""

from __future__ import annotations

import os

__all__ = ["MeshError"]


class MeshError(ValueError):
    """A mesh file or mesh array that cannot be used as given.

    The message names the file (when there is one), the offending field and what was
    expected, e.g. ``"face.ply: faces: expected triangles (3 indices per face), found 2
    faces with 4 indices"``. It subclasses ``ValueError`` so that callers (the command
    line among them) can treat it as ordinary bad input.

    Attributes:
      source: The file the data came from, or ``None`` for in-memory arrays.
      field: The part of the mesh that is wrong (``"vertices"``, ``"faces"``, ...), or
        ``None`` when the whole file is unusable.
      detail: The message without the source and field prefix.
    """

    def __init__(
        self,
        detail: str,
        *,
        source: str | os.PathLike[str] | None = None,
        field: str | None = None,
    ) -> None:
        self.source = None if source is None else os.fspath(source)
        self.field = field
        self.detail = detail
        prefix = [part for part in (self.source, field) if part]
        super().__init__(": ".join([*prefix, detail]))
