"""D3DFACS (FLAME registrations) TFDS builder (manual download)."""

from datasets_tfds.d3dfacs.d3dfacs import D3dfacs

__all__ = ["D3dfacs"]
