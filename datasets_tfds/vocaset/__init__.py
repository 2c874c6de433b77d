"""VOCASET TFDS builder (manual download)."""

from datasets_tfds.vocaset.vocaset import Vocaset

__all__ = ["Vocaset"]
