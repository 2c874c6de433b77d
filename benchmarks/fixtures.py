"""Shared inputs of the benchmark cases: the run context, templates, topologies, S2D-Dec setups.

The S2D-Dec setup is the official architecture (channels 128/64/32/32/16, four CoMA-style
decimation steps by 4, Neural3DMM spirals with rings 2/2/1/1/1, dilations 2/2/1/1/1 and
data-driven lengths) on the face template (468 vertices, subdivided to 1790, 6990, 27,614 or
109,758 vertices) or on an icosphere.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import CompileCounter, Recorder

__all__ = [
    "S2D_CHANNELS",
    "S2D_TOPOLOGY",
    "Context",
    "S2DSetup",
    "mesh_for",
    "s2d_setup",
    "topology_for",
]

#: The official S2D-Dec channels: the dense layer, then each up-sampled level (coarse to fine).
S2D_CHANNELS = (128, 64, 32, 32, 16)

#: Hierarchy and spiral parameters of the S2D-Dec experiment (jaxface/configs/s2d.py).
S2D_TOPOLOGY = {
    "factors": (4, 4, 4, 4),
    "rings": (2, 2, 1, 1, 1),
    "dilations": (2, 2, 1, 1, 1),
}


@dataclasses.dataclass
class Context:
    """What every case receives.

    Attributes:
      recorder: where records go.
      counter: the process-wide compile counter.
      quick: the reduced run (``--quick``).
      torch: whether PyTorch is importable.
      torch_threads: PyTorch intra-op threads of the cases that run one setting.
      torch_thread_settings: the thread counts the S2D-Dec step's references run at.
      peaks: measured machine peaks ``{"gflops", "gbps"}`` (filled by the ``machine`` case).
      data_dir: TFDS data folder holding prepared datasets.
      dataset_config: faces4d config to read in the pipeline case.
      cache_dir: topology cache folder (``None``: jaxface's default).
      scratch_dir: a temporary folder for the run.
      shared: values handed from one case to a later one (e.g. the S2D-Dec consumption rate).
      allocator: the run's allocator setting (``"tuned"`` or ``"default"``).
      log: progress printer.
    """

    recorder: Recorder
    counter: CompileCounter
    quick: bool
    torch: bool
    torch_threads: int
    torch_thread_settings: tuple[int, ...]
    peaks: dict[str, float]
    data_dir: str
    dataset_config: str
    cache_dir: str | None
    scratch_dir: str
    shared: dict[str, Any]
    allocator: str = "tuned"
    log: Callable[[str], None] = print

    def rounds(self, full: int, quick: int = 3) -> int:
        """Timed rounds for the current mode."""
        return quick if self.quick else full


def mesh_for(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a named benchmark mesh.

    Args:
      name: ``"face0"`` .. ``"face4"`` (the face template subdivided 0-4 times: 468, 1790, 6990,
        27,614, 109,758 vertices) or ``"ico<k>"`` (an icosphere subdivided ``k`` times;
        ``"ico6"`` has 40,962 vertices, ``"ico7"`` 163,842).

    Returns:
      ``(vertices float32 [N, 3], faces int32 [F, 3])``.
    """
    from jaxface.data.template import load_face_template
    from jaxface.mesh import icosphere

    if name.startswith("face"):
        t = load_face_template(int(name[4:]))
        return np.asarray(t.vertices, np.float32), np.asarray(t.faces, np.int32)
    if name.startswith("ico"):
        v, f = icosphere(int(name[3:]))
        return np.asarray(v, np.float32), np.asarray(f, np.int32)
    raise ValueError(f"unknown mesh {name!r}")


@functools.lru_cache(maxsize=8)
def _topology(name: str, cache_dir: str | None):
    from jaxface.mesh import load_or_build_topology
    from jaxface.models.s2d import SpiralTopology

    v, f = mesh_for(name)
    hierarchy, spirals, _ = load_or_build_topology(v, f, cache_dir=cache_dir, **S2D_TOPOLOGY)
    return SpiralTopology.from_hierarchy(hierarchy, spirals)


def topology_for(name: str, cache_dir: str | None = None):
    """The S2D-Dec :class:`~jaxface.models.s2d.SpiralTopology` of a benchmark mesh (cached)."""
    return _topology(name, cache_dir)


@dataclasses.dataclass
class S2DSetup:
    """A ready S2D-Dec training step on a fixed batch.

    Attributes:
      topology: the spiral topology.
      model: the Flax decoder.
      state: the initial train state (params and Adam state).
      step: the jitted train step (donates its state).
      batch: ``{"landmark_displacement" [B, 204], "displacement" [B, N, 3]}`` on device.
      weights: float32 ``[N]`` landmark-distance loss weights.
      numpy_batch: the same batch as numpy.
    """

    topology: Any
    model: Any
    state: Any
    step: Callable
    batch: dict[str, jax.Array]
    weights: np.ndarray
    numpy_batch: dict[str, np.ndarray]


def loss_weights_for(name: str, vertices: np.ndarray) -> np.ndarray:
    """Landmark-distance loss weights (``1 - d / max d``) of a benchmark mesh.

    The face meshes use their 51 inner landmarks; an icosphere uses 51 evenly spread vertices.
    """
    from jaxface.data.template import load_face_template
    from jaxface.losses.s2d import landmark_distance_weights

    if name.startswith("face"):
        t = load_face_template(int(name[4:]))
        landmarks = t.landmark_positions()[17:]
    else:
        landmarks = vertices[np.linspace(0, len(vertices) - 1, 51).astype(np.int64)]
    return landmark_distance_weights(vertices, landmarks)


def s2d_setup(
    mesh: str,
    batch: int,
    *,
    dtype: Any = None,
    spiral_impl: str = "auto",
    cache_dir: str | None = None,
    seed: int = 0,
    topology: Any = None,
) -> S2DSetup:
    """Builds the official S2D-Dec, its optimizer and train step, and a fixed random batch.

    The step is :func:`jaxface.s2d.train.make_train_step` with the paper-form loss
    (``L_dr + 0.1 L_pr``) and :func:`jaxface.train.create_optimizer` (Adam, lr 1e-3, weight
    decay 5e-5); the state is what :func:`jaxface.train.create_train_state` builds.

    Args:
      mesh: benchmark mesh name (:func:`mesh_for`).
      batch: batch size ``B``.
      dtype: compute dtype of the decoder (``None``: float32; ``jnp.bfloat16``).
      spiral_impl: ``impl`` of the spiral convolutions (:class:`jaxface.nn.SpiralConv`).
      cache_dir: topology cache folder.
      seed: seed of the parameters and the batch.
      topology: a :class:`~jaxface.models.s2d.SpiralTopology` of ``mesh`` built by the caller
        (default: :func:`topology_for`, from the topology cache).
    """
    from jaxface.models.s2d import S2DDecoder
    from jaxface.s2d.train import make_train_step
    from jaxface.train import create_optimizer, create_train_state

    if topology is None:
        topology = topology_for(mesh, cache_dir)
    vertices, _ = mesh_for(mesh)
    n = topology.level_sizes[0]
    model = S2DDecoder(topology, channels=S2D_CHANNELS, dtype=dtype, spiral_impl=spiral_impl)
    tx = create_optimizer(1e-3, weight_decay=5e-5, decay_rate=0.99, steps_per_epoch=1000)
    # The training state, initialised under jit (one compilation instead of one per operation).
    state = jax.jit(
        lambda key: create_train_state(model, key, (jnp.zeros((1, 204), jnp.float32),), tx)
    )(jax.random.key(seed))
    weights = loss_weights_for(mesh, vertices)
    step = make_train_step(
        lambda p, b: model.apply({"params": p}, b["landmark_displacement"]),
        lambda b: b["displacement"],
        weights,
        beta_dr=1.0,
        beta_pr=0.1,
        form="paper",
    )
    rng = np.random.default_rng(seed)
    numpy_batch = {
        "landmark_displacement": rng.normal(size=(batch, 204)).astype(np.float32),
        "displacement": (0.01 * rng.normal(size=(batch, n, 3))).astype(np.float32),
    }
    device_batch = {k: jnp.asarray(v) for k, v in numpy_batch.items()}
    return S2DSetup(topology, model, state, step, device_batch, weights, numpy_batch)
