"""A loadable model bundle for the fault tests, built in seconds (untrained networks).

It has every file :func:`jaxface.generate.train_bundle` writes, for the ``tiny`` recipe on the
tiny procedural set, with small random parameters: enough to load a
:class:`jaxface.generate.FaceGenerator` and run ``jaxface generate`` end to end, without the
minute the tiny recipe takes to train.
"""

from __future__ import annotations

import os
import time

import numpy as np


def make_bundle(path: str, dataset: str) -> dict:
    """Writes an untrained ``tiny`` bundle into ``path`` (which must not exist).

    Args:
      path: the bundle folder to create.
      dataset: a prepared ``faces4d/tiny`` dataset folder.

    Returns:
      The manifest written.
    """
    import jax
    import jax.numpy as jnp
    from flax import serialization

    from jaxface.configs.generate import get_config
    from jaxface.data.datasets import DatasetView
    from jaxface.data.procedural import EXPRESSIONS
    from jaxface.files import write_atomic, write_json, write_npz
    from jaxface.models import create_model
    from jaxface.motion3dgan import create_models
    from jaxface.motion3dgan.train import create_gan_state
    from jaxface.s2d.model import build_topology, save_template
    from jaxface.train import Checkpoints, create_optimizer, create_train_state, write_config

    config = get_config("tiny")
    view = DatasetView(dataset)
    os.makedirs(path)
    rng = np.random.default_rng(0)

    def filled(abstract):  # small random arrays of an abstract tree's shapes (no compile)
        return jax.tree.map(
            lambda x: (0.01 * rng.standard_normal(x.shape)).astype(x.dtype)
            if jnp.issubdtype(x.dtype, jnp.floating) else np.zeros(x.shape, x.dtype), abstract)

    models = create_models(config.gan, len(EXPRESSIONS))
    frames = int(config.gan.num_frames)
    reference = np.ones((frames, 3 * 68), np.float32) / np.sqrt(3 * 68)
    gan = jax.eval_shape(lambda: create_gan_state(models, reference, jax.random.key(0)))
    write_atomic(os.path.join(path, "motion3dgan.msgpack"), serialization.msgpack_serialize({
        "gen_params": filled(gan.gen_params), "reference": reference,
    }))
    s2d = os.path.join(path, "s2d")
    write_config(s2d, config.s2d.to_dict())
    save_template(s2d, view.vertices, view.faces, view.landmarks)
    topology = build_topology(view.vertices, view.faces, config.s2d.topology)
    model = create_model(config.s2d.model, topology=topology)
    o = config.s2d.optim
    tx = create_optimizer(o.learning_rate, weight_decay=o.weight_decay, decay_rate=o.decay_rate,
                          steps_per_epoch=1)
    state = jax.eval_shape(
        lambda: create_train_state(model, jax.random.key(0), (jnp.zeros((1, 204)),), tx))
    ckpt = Checkpoints(s2d, async_save=False)
    ckpt.save(1, filled(state), force=True)
    ckpt.close()
    neutral = np.asarray(view.source[view.sequences[0].start]["vertices"], np.float32)
    write_npz(os.path.join(path, "neutral.npz"), {"vertices": neutral})
    manifest = {
        "format": 1, "recipe": "tiny", "config": config.to_dict(), "dataset": dataset,
        "expressions": list(EXPRESSIONS), "num_vertices": int(view.vertices.shape[0]),
        "label_intensity": [1.0] * len(EXPRESSIONS), "wall_s": 0.0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(os.path.join(path, "manifest.json"), manifest)
    return manifest
