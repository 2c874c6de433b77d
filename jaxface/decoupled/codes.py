"""Face models driven by identity and expression codes: one interface for the GAN and its
baselines.

A :class:`CodeModel` decodes ``(z_id [B, I], z_exp [B, E], noise [B, Z])`` into meshes
``[B, N, 3]`` (metres) with a pure, jittable ``apply(params, z_id, z_exp, noise)``; every code is
standard normal a priori. The metrics (diversity, specificity, decoupling), the landmark fitting
of Table 2 and the user applications (sample, transfer, fit) only use this interface, so the GAN,
the linear 3DMM and the autoencoder baseline are evaluated the same way.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxface.decoupled.model import FaceGAN
from jaxface.train import map_in_batches

__all__ = ["CodeModel", "gan_code_model"]


@dataclasses.dataclass(frozen=True, eq=False)
class CodeModel:
    """A generative face model with separate identity and expression codes.

    Attributes:
      name: a label for tables.
      identity_dim, expression_dim, noise_dim: sizes of the three codes (``noise_dim`` may be 0).
      params: the model's arrays (a pytree), passed to ``apply``.
      apply: ``(params, z_id, z_exp, noise) -> meshes [B, N, 3]``, pure and jittable.
    """

    name: str
    identity_dim: int
    expression_dim: int
    noise_dim: int
    params: Any
    apply: Callable[..., jax.Array]

    @property
    def code_dim(self) -> int:
        """``I + E + Z``."""
        return self.identity_dim + self.expression_dim + self.noise_dim

    def split(self, codes: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``[B, I + E + Z] -> (z_id, z_exp, noise)``."""
        i, e = self.identity_dim, self.expression_dim
        return codes[:, :i], codes[:, i : i + e], codes[:, i + e :]

    def sample_codes(self, key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` codes drawn from the prior: float32 ``([n, I], [n, E], [n, Z])``.

        Drawn on the host by numpy, seeded by the key's data (a few codes at a time would
        otherwise compile one random-number program per shape)."""
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
        codes = rng.standard_normal((n, self.code_dim)).astype(np.float32)
        z_id, z_exp, noise = self.split(codes)
        return z_id, z_exp, noise

    @functools.cached_property
    def _jitted(self):
        return jax.jit(self.apply)

    def meshes(self, z_id, z_exp, noise, *, batch_size: int = 64) -> np.ndarray:
        """float32 ``[B, N, 3]`` meshes of codes, decoded in jitted fixed-size chunks."""
        z_id, z_exp, noise = (np.asarray(z, np.float32) for z in (z_id, z_exp, noise))
        fn = functools.partial(self._jitted, self.params)
        return map_in_batches(fn, (z_id, z_exp, noise), batch_size)


def _gan_apply(gan: FaceGAN, params, z_id, z_exp, noise):
    return gan.meshes(params, z_id, z_exp, noise)


def gan_code_model(gan: FaceGAN, gen_params: Any, name: str = "decoupled_gan") -> CodeModel:
    """The :class:`CodeModel` of a trained generator."""
    return CodeModel(name, gan.identity_dim, gan.expression_dim, gan.noise_dim,
                     jax.device_get(gen_params), functools.partial(_gan_apply, gan))
