"""jaxface: JAX/Flax 3D and 4D face generation."""

__version__ = "0.1.0"
