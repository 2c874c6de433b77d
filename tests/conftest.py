"""Shared pytest configuration.

Sets up several CPU devices (for the sharding tests), a lower LLVM optimisation level and JAX's
persistent compilation cache before any test touches the backend.
"""

import collections
import contextlib
import os

import jax
import numpy as np
import pytest

# Must happen before the backend initialises.
jax.config.update("jax_num_cpu_devices", 8)
# The tests run a few steps of many programs, so compiling dominates: XLA:CPU's LLVM back end
# optimises less (its HLO passes, and so what is fused and computed, are unchanged). The
# image-to-3D pretrain step's test takes 47 s instead of 69 s. Subprocesses inherit the flag.
_FLAG = "--xla_backend_optimization_level=0"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()
_CACHE = os.environ.get(
    "JAXFACE_TEST_COMPILATION_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax_cache")
)
jax.config.update("jax_compilation_cache_dir", os.path.abspath(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_EVENTS: collections.Counter = collections.Counter()
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kwargs: _EVENTS.update([event]))
_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


class _Traces:
    """Number of JAX traces (jaxpr builds) since the block started."""

    def __init__(self):
        self._start = _EVENTS[_TRACE_EVENT]

    @property
    def count(self) -> int:
        return _EVENTS[_TRACE_EVENT] - self._start


@pytest.fixture
def count_traces():
    """``with count_traces() as traces: ...`` then ``traces.count``: the jaxpr traces of every
    jitted function called in the block (a compiled function called again adds none)."""

    @contextlib.contextmanager
    def _count():
        yield _Traces()

    return _count


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
    from jaxface.data import prepare_dataset

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    path = prepare_dataset("faces4d", data_dir=data_dir, config="tiny", verbose=False)
    return data_dir, path


@pytest.fixture(scope="session")
def tiny_basic6(tmp_path_factory):
    """The tiny six-basic-expression set prepared once per session: ``(data_dir, path)``."""
    from jaxface.data import prepare_dataset

    data_dir = str(tmp_path_factory.mktemp("tfds_basic6"))
    path = prepare_dataset("faces4d", data_dir=data_dir, config="basic6_tiny", verbose=False)
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
