"""Shared pytest configuration.

Sets up several CPU devices (for the sharding tests) and JAX's persistent compilation cache
before any test touches the backend.
"""

import os

import jax
import numpy as np
import pytest

# Must happen before the backend initialises.
jax.config.update("jax_num_cpu_devices", 8)
_CACHE = os.environ.get(
    "JAXFACE_TEST_COMPILATION_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax_cache")
)
jax.config.update("jax_compilation_cache_dir", os.path.abspath(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture
def keys():
    """An endless supply of fresh PRNG keys: ``next(keys)``."""

    def _gen():
        key = jax.random.key(0)
        while True:
            key, sub = jax.random.split(key)
            yield sub

    return _gen()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
