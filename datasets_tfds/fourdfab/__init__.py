"""4DFAB TFDS builder (manual download)."""

from datasets_tfds.fourdfab.fourdfab import Fourdfab, FourdfabConfig

__all__ = ["Fourdfab", "FourdfabConfig"]
