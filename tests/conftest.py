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


@pytest.fixture(scope="session")
def tiny_faces4d(tmp_path_factory):
    """The tiny procedural dataset prepared once per session: ``(data_dir, dataset_path)``."""
    from jaxface.commands.prepare import prepare_dataset

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    path = prepare_dataset("faces4d", data_dir=data_dir, config="tiny", verbose=False)
    return data_dir, path


@pytest.fixture(autouse=True, scope="session")
def _topology_cache(tmp_path_factory):
    """Keeps topology caches of the test session out of the user's cache folder."""
    old = os.environ.get("JAXFACE_CACHE_DIR")
    os.environ["JAXFACE_CACHE_DIR"] = str(tmp_path_factory.mktemp("jaxface_cache"))
    yield
    if old is None:
        os.environ.pop("JAXFACE_CACHE_DIR", None)
    else:
        os.environ["JAXFACE_CACHE_DIR"] = old
