"""Trained image-to-3D encoders: read back from a run folder or a packed copy, and packed.

A run folder (written by :func:`jaxface.smirk.train.train_encoders`, or by
:func:`jaxface.smirk.core_train.train_core`: the encoder part of its state) holds
``config.json`` and ``checkpoints/``; :func:`pack_encoders` writes the compact form shipped
with jaxface (the same for both stages: ``config.json``, ``encoders.npz`` in float16 and
``manifest.json`` with its sha256). :func:`load_encoders` reads either, rebuilds the
morphable model the config names (``morphable.source``: ``"open"`` or a FLAME file) and returns
the encoders.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.files import (
    flatten_tree,
    replace_dir,
    staging_dir,
    unflatten_tree,
    write_json,
    write_npz,
)
from jaxface.morphable.flame import load_flame
from jaxface.morphable.model import MorphableModel
from jaxface.morphable.open_model import load_open_model
from jaxface.smirk.core_train import (
    core_encoders,
    has_core_checkpoint,
    is_core_run,
    restore_core,
)
from jaxface.smirk.train import (
    TrainedEncoders,
    build_encoder,
    create_encoder_state,
    pretrain_config,
)
from jaxface.train import read_config, restore_latest

__all__ = [
    "PACKED_FILES",
    "find_encoders",
    "load_encoders",
    "load_morphable",
    "pack_encoders",
    "shipped_encoders",
]

#: The files of a packed copy.
PACKED_FILES = ("config.json", "encoders.npz", "manifest.json")
_SHIPPED = ("assets", "image_encoders")


def load_morphable(config) -> MorphableModel:
    """The morphable model of a config, truncated to ``model.num_shape``/``num_expression``.

    Raises:
      FileNotFoundError / ValueError: a FLAME path that is missing or not a FLAME model.
    """
    source = str(config.morphable.source)
    model = load_open_model() if source == "open" else load_flame(os.path.expanduser(source))
    s = int(config.model.num_shape) or model.num_shape
    e = int(config.model.num_expression) or model.num_expression
    return model.truncated(min(s, model.num_shape), min(e, model.num_expression))


def _restore(workdir: str, config, model: MorphableModel):
    if is_core_run(config):
        state, encoder, _ = restore_core(workdir, config, model)
        return core_encoders(state, encoder, int(config.image_size))
    encoder = build_encoder(config, model)
    state_like = jax.eval_shape(lambda: create_encoder_state(config, encoder, 1))
    restored, _ = restore_latest(workdir, state_like)
    variables = jax.device_get({"params": restored.params, "batch_stats": restored.batch_stats})
    return TrainedEncoders(encoder, variables, int(config.image_size))


def _read_packed(path: str, config, model: MorphableModel) -> TrainedEncoders:
    manifest_path = os.path.join(path, "manifest.json")
    with open(manifest_path) as f:
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{manifest_path}: not valid JSON ({err})") from None
    npz = os.path.join(path, "encoders.npz")
    with open(npz, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != manifest.get("sha256", {}).get("encoders.npz"):
        raise ValueError(f"{npz}: damaged (its sha256 differs from manifest.json's)")
    with np.load(npz, allow_pickle=False) as data:
        variables = unflatten_tree({k: data[k] for k in data.files})
    encoder = build_encoder(config, model)
    expected = jax.eval_shape(lambda: encoder.init(
        jax.random.key(0), jnp.zeros((1, int(config.image_size), int(config.image_size), 3))))
    want = {"/".join(str(getattr(k, "key", k)) for k in path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(expected)[0]}
    got = {k: tuple(v.shape) for k, v in flatten_tree(variables).items()}
    if want != got:
        wrong = sorted(set(want) ^ set(got) | {k for k in set(want) & set(got)
                                               if want[k] != got[k]})
        raise ValueError(f"{npz}: its arrays do not fit the encoders of its config.json "
                         f"(first mismatch: {wrong[0]})")
    return TrainedEncoders(encoder, variables, int(config.image_size))


def load_encoders(path: str | os.PathLike[str]) -> tuple[TrainedEncoders, MorphableModel, object]:
    """The trained encoders of a run folder or a packed copy, their morphable model, config.

    Args:
      path: a run folder (``config.json`` + ``checkpoints/``; pretrain or core stage), an
        experiment folder (its core stage ``core/`` when that has a checkpoint, else its
        pretrain stage ``encoders/``) or a packed copy (:func:`pack_encoders`).

    Raises:
      FileNotFoundError: the folder is neither (no ``config.json``).
      CheckpointError: a run without a readable checkpoint.
      ValueError: a damaged packed copy.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(os.path.join(path, "config.json")):
        if has_core_checkpoint(os.path.join(path, "core")):
            path = os.path.join(path, "core")
        elif os.path.isfile(os.path.join(path, "encoders", "config.json")):
            path = os.path.join(path, "encoders")
    config = read_config(path, "image-to-3D model")
    model = load_morphable(config)
    if os.path.isfile(os.path.join(path, "encoders.npz")):
        return _read_packed(path, config, model), model, config
    return _restore(path, config, model), model, config


def pack_encoders(run: str | os.PathLike[str], dest: str | os.PathLike[str]) -> dict:
    """Writes the compact copy of a trained run (float16 weights, checksum) to ``dest``.

    The copy is written into a staging folder that replaces ``dest`` when complete.

    Returns:
      The manifest (sizes, checksum, the run's training summary when it has one).
    """
    encoders, model, config = load_encoders(run)
    flat = {k: v.astype(np.float16) if v.dtype == np.float32 else v
            for k, v in flatten_tree(encoders.variables).items()}
    dest = os.path.abspath(os.fspath(dest))
    staging = staging_dir(dest)
    try:
        write_npz(os.path.join(staging, "encoders.npz"), flat)
        with open(os.path.join(staging, "encoders.npz"), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        write_json(os.path.join(staging, "config.json"), pretrain_config(config))
        manifest = {
            "morphable": model.name,
            "num_shape": model.num_shape,
            "num_expression": model.num_expression,
            "image_size": encoders.image_size,
            "num_params": int(sum(v.size for v in flat.values())),
            "dtype": "float16",
            "sha256": {"encoders.npz": digest},
            "source": os.path.abspath(os.fspath(run)),
        }
        write_json(os.path.join(staging, "manifest.json"), manifest)
        replace_dir(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def shipped_encoders() -> str | None:
    """The packed encoders shipped with jaxface, or None."""
    path = os.fspath(importlib.resources.files("jaxface").joinpath(*_SHIPPED))
    return path if os.path.isfile(os.path.join(path, "manifest.json")) else None


def find_encoders(path: str | os.PathLike[str] | None) -> str:
    """``path``, or the shipped encoders when ``path`` is None.

    Raises:
      FileNotFoundError: no path and none shipped (says how to train them).
    """
    if path is not None:
        return os.fspath(path)
    shipped = shipped_encoders()
    if shipped is None:
        raise FileNotFoundError(
            "no trained image encoders: pass --model RUN (train one with python -m "
            "experiments.smirk.main --config=jaxface/configs/smirk.py:cpu --workdir=RUN) or "
            "use --method fit")
    return shipped
