"""CoMA TFDS builder (manual download)."""

from datasets_tfds.coma.coma import EXPRESSIONS, Coma

__all__ = ["EXPRESSIONS", "Coma"]
