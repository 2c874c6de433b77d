"""ImageNet weights for :class:`~jaxface.models.mobilenet_v3.MobileNetV3Minimal` from a local
file of timm names.

jaxface never downloads weights; the backbones start from random initialisation. Where timm is
installed, these lines write a backbone's ImageNet weights to an ``.npz`` whose keys are timm's
``state_dict`` names (``small`` and ``large`` are ``tf_mobilenetv3_small_minimal_100`` and
``tf_mobilenetv3_large_minimal_100``)::

    import numpy as np
    import timm

    name = "tf_mobilenetv3_large_minimal_100"
    model = timm.create_model(name, pretrained=True, features_only=True)
    np.savez(f"{name}.npz", **{k: v.numpy() for k, v in model.state_dict().items()})

:func:`load_timm_weights` then puts them into a model's variables: convolution kernels
``[out, in / groups, kh, kw]`` become ``[kh, kw, in / groups, out]``, BatchNorm ``weight`` /
``bias`` become ``params`` ``scale`` / ``bias`` and ``running_mean`` / ``running_var`` become
``batch_stats`` ``mean`` / ``var``. Keys the model does not use (``num_batches_tracked``, a
full model's ``conv_head`` and ``classifier``) are ignored.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["load_timm_weights"]

_BLOCK = re.compile(r"^blocks_(\d+)_(\d+)$")


def _read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not an .npz archive of timm weights ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not an .npz archive of timm weights (a single array)")
    with archive:
        return {key: archive[key] for key in archive.files}


def _timm_name(path: Sequence[str]) -> str:
    return ".".join(_BLOCK.sub(r"blocks.\1.\2", part) for part in path)


def _subtree(tree: Mapping, scope: Sequence[str], collection: str) -> Mapping:
    for i, part in enumerate(scope):
        if not isinstance(tree, Mapping) or part not in tree:
            raise ValueError(f"the variables have no module {'/'.join(scope[: i + 1])!r} in "
                             f"{collection!r}")
        tree = tree[part]
    return tree


def _replace(tree: Mapping, scope: Sequence[str], value: Mapping) -> dict:
    if not scope:
        return dict(value)
    return {**tree, scope[0]: _replace(tree[scope[0]], scope[1:], value)}


class _Loader:
    """Looks keys up in the archive and checks shapes, naming the file in every error."""

    def __init__(self, arrays: dict[str, np.ndarray], path: str | os.PathLike, prefix: str):
        self.arrays, self.path, self.prefix = arrays, path, prefix

    def get(self, name: str, expected: tuple[int, ...], like: jnp.ndarray) -> jnp.ndarray:
        key = self.prefix + name
        if key not in self.arrays:
            example = next(iter(self.arrays), "")
            raise ValueError(f"{self.path}: missing key {key!r} (the file's keys look like "
                             f"{example!r}; pass prefix= when they carry one)")
        value = self.arrays[key]
        if value.shape != expected:
            raise ValueError(f"{self.path}: {key!r} has shape {value.shape}, the model expects "
                             f"{expected} (timm layout; {tuple(like.shape)} in Flax)")
        return value


def _load_module(loader: _Loader, path: tuple[str, ...], params: Mapping,
                 stats: Mapping) -> tuple[dict, dict]:
    name = _timm_name(path)
    new_params: dict[str, Any] = {}
    new_stats: dict[str, Any] = {}
    if "kernel" in params:  # convolution [kh, kw, in/groups, out] <- [out, in/groups, kh, kw]
        kernel = params["kernel"]
        if kernel.ndim != 4:
            raise ValueError(f"{name or 'the module'}: only convolutions and BatchNorm are read "
                             f"from timm weights, got a kernel of shape {tuple(kernel.shape)}")
        expected = (kernel.shape[3], kernel.shape[2], kernel.shape[0], kernel.shape[1])
        value = loader.get(f"{name}.weight", expected, kernel)
        new_params["kernel"] = jnp.asarray(value.transpose(2, 3, 1, 0), kernel.dtype)
        if "bias" in params:
            bias = params["bias"]
            new_params["bias"] = jnp.asarray(loader.get(f"{name}.bias", bias.shape, bias),
                                             bias.dtype)
        return new_params, new_stats
    if "scale" in params:  # BatchNorm
        for ours, theirs, tree, out in (("scale", "weight", params, new_params),
                                        ("bias", "bias", params, new_params),
                                        ("mean", "running_mean", stats, new_stats),
                                        ("var", "running_var", stats, new_stats)):
            if ours not in tree:
                raise ValueError(f"{name}: BatchNorm without {ours!r}; pass the variables "
                                 f"with both 'params' and 'batch_stats'")
            leaf = tree[ours]
            out[ours] = jnp.asarray(loader.get(f"{name}.{theirs}", leaf.shape, leaf), leaf.dtype)
        return new_params, new_stats
    for child in params:
        child_params, child_stats = _load_module(loader, (*path, child), params[child],
                                                 stats.get(child, {}))
        new_params[child] = child_params
        if child_stats:
            new_stats[child] = child_stats
    return new_params, new_stats


def load_timm_weights(variables: Mapping, path: str | os.PathLike, *,
                      scope: Sequence[str] = (), prefix: str = "") -> dict:
    """``variables`` with a MobileNetV3 backbone's weights read from an ``.npz`` of timm names.

    Args:
      variables: ``{"params": ..., "batch_stats": ...}`` of a
        :class:`~jaxface.models.mobilenet_v3.MobileNetV3Minimal` or of a model holding one.
      path: the ``.npz`` (see the module docstring for how to write it).
      scope: where the backbone sits in both collections, e.g.
        ``("shape_encoder", "backbone")`` in a :class:`~jaxface.models.face_encoder.FaceEncoder`.
      prefix: what precedes timm's names in the file (``"shape_encoder.encoder."`` for a SMIRK
        checkpoint's state dict).

    Returns:
      New variables (the input is not modified); every convolution and BatchNorm under
      ``scope`` is replaced, everything else is kept.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: not an ``.npz``, a key missing (named), a shape that differs (the key and both
        shapes named), or no module at ``scope``.
    """
    scope = tuple(scope)
    arrays = _read_npz(path)
    params = _subtree(variables["params"], scope, "params")
    stats = {}
    if "batch_stats" in variables:
        stats = _subtree(variables["batch_stats"], scope, "batch_stats")
    new_params, new_stats = _load_module(_Loader(arrays, path, prefix), (), params, stats)
    out = dict(variables)
    out["params"] = _replace(variables["params"], scope, new_params)
    if "batch_stats" in variables:
        out["batch_stats"] = _replace(variables["batch_stats"], scope, new_stats)
    return out
