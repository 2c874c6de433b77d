"""Atomic result files: a run killed mid-write leaves the previous file or none."""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["write_json"]


def write_json(path: str | os.PathLike, obj: Any) -> str:
    """Writes ``obj`` as indented JSON atomically (temp file + rename); returns the path."""
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=float)
    os.replace(tmp, path)
    return path
