"""faces4d TFDS builder: generated 4D faces (2.0.0 ARKit performances, 1.0.0 procedural)."""

from datasets_tfds.faces4d.faces4d import Faces4d, Faces4dConfig, TakeSource

__all__ = ["Faces4d", "Faces4dConfig", "TakeSource"]
