"""Procedural 4D faces TFDS builder (generated, no download)."""

from datasets_tfds.faces4d.faces4d import Faces4d, Faces4dConfig

__all__ = ["Faces4d", "Faces4dConfig"]
