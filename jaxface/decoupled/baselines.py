"""The decoupled face GAN's baselines: a PCA identity space plus a linear or an autoencoder
expression model (paper §5.5), as :class:`~jaxface.decoupled.codes.CodeModel` s.

Both share the paper's neutral/expression separation: the identity space is a PCA
(:class:`jaxface.baselines.PCA3DMM`) of the training subjects' neutral faces (the mean of the
first frames of each subject's sequences), with ``min(I, subjects - 1)`` components; expressions
are displacements of every training frame from its sequence's first frame, added to the identity.

* ``linear_3dmm``: the additive linear model after Amberg et al. (FG 2008): a PCA of the
  displacements with ``E`` components.
* ``autoencoder``: the DeepFLAME alternative used for CoMA: a Neural3DMM-style spiral
  autoencoder (:class:`jaxface.models.MeshAutoencoder`) of the displacements with an
  ``E``-dimensional code, trained with the L1 loss through :func:`jaxface.train.fit`; its codes
  are standardised with the training codes' mean and std, so a standard normal ``z_exp`` samples
  near the training distribution.

Codes are standard normal: PCA coefficients are ``sqrt(variance) * z``.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.baselines import PCA3DMM
from jaxface.data.batches import InMemoryBatches
from jaxface.decoupled.codes import CodeModel
from jaxface.decoupled.data import FaceData, LabelledFaces
from jaxface.decoupled.model import create_train_state
from jaxface.mesh.cache import load_or_build_topology
from jaxface.models import SpiralTopology, create_model
from jaxface.sharding import data_mesh
from jaxface.train import (
    LoopConfig,
    apply_in_batches,
    fit,
    make_supervised_step,
    map_in_batches,
    num_params,
)

__all__ = [
    "BASELINES",
    "expression_displacements",
    "identity_space",
    "linear_3dmm",
    "subject_neutrals",
    "train_autoencoder",
]


def subject_neutrals(faces: LabelledFaces) -> np.ndarray:
    """float32 ``[S, N, 3]``: per subject, the mean of its sequences' first frames."""
    first = faces.frame == 0
    subjects = np.unique(faces.subject[first])
    return np.stack([faces.vertices[first & (faces.subject == s)].mean(axis=0)
                     for s in subjects]).astype(np.float32)


def expression_displacements(faces: LabelledFaces) -> np.ndarray:
    """float32 ``[M, N, 3]``: every frame minus its sequence's first frame."""
    return (faces.vertices - faces.first_frames()).astype(np.float32)


def _scaled_basis(model: PCA3DMM) -> np.ndarray:
    std = np.sqrt(np.maximum(model.variances, 0.0))
    return (np.asarray(model.components, np.float32) * std[:, None, None]).astype(np.float32)


def identity_space(faces: LabelledFaces, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The PCA identity space: ``(mean neutral [N, 3], basis [k, N, 3])`` with the components
    scaled by their standard deviation and ``k = min(dim, subjects - 1)``.

    Raises:
      ValueError: fewer than two training subjects.
    """
    neutrals = subject_neutrals(faces)
    if neutrals.shape[0] < 2:
        raise ValueError(f"the identity space needs at least 2 training subjects, got "
                         f"{neutrals.shape[0]}")
    pca = PCA3DMM.fit(neutrals, k=min(int(dim), neutrals.shape[0] - 1), method="exact")
    return np.asarray(pca.mean, np.float32), _scaled_basis(pca)


def _linear_apply(params, z_id, z_exp, noise):
    del noise  # the linear model has no noise code
    shape = jnp.einsum("bk,knc->bnc", z_id, params["identity_basis"])
    expression = jnp.einsum("bk,knc->bnc", z_exp, params["expression_basis"])
    return params["mean"] + shape + expression


def linear_3dmm(config, data: FaceData, workdir: str | None = None) -> tuple[CodeModel, dict]:
    """The additive linear 3DMM (closed form); ``workdir`` is unused (nothing to train)."""
    del workdir
    id_mean, id_basis = identity_space(data.train, config.codes.identity_dim)
    pca = PCA3DMM.fit(expression_displacements(data.train), k=int(config.codes.expression_dim),
                      seed=int(config.seed))
    params = {"mean": id_mean + np.asarray(pca.mean, np.float32), "identity_basis": id_basis,
              "expression_basis": _scaled_basis(pca)}
    model = CodeModel("linear_3dmm", id_basis.shape[0], pca.num_components, 0, params,
                      _linear_apply)
    info = {"identity_components": int(id_basis.shape[0]),
            "expression_components": pca.num_components,
            "expression_variance_explained": float(pca.explained_variance_ratio.sum())}
    return model, info


def _topology(reference: np.ndarray, faces: np.ndarray, cfg) -> SpiralTopology:
    hierarchy, spirals, _ = load_or_build_topology(
        reference, faces, factors=tuple(cfg.factors), rings=tuple(cfg.rings),
        dilations=tuple(cfg.dilations))
    return SpiralTopology.from_hierarchy(hierarchy, spirals)


def _autoencoder_apply(model, params, z_id, z_exp, noise):
    del noise
    shape = jnp.einsum("bk,knc->bnc", z_id, params["identity_basis"])
    code = params["code_mean"] + params["code_std"] * z_exp
    expression = params["scale"] * model.apply({"params": params["autoencoder"]}, code,
                                               method=model.decode)
    return params["mean"] + shape + expression


def train_autoencoder(config, data: FaceData, workdir: str) -> tuple[CodeModel, dict[str, Any]]:
    """Trains (or resumes) the autoencoder baseline in ``workdir``; returns its model and info."""
    workdir = os.path.abspath(workdir)
    id_mean, id_basis = identity_space(data.train, config.codes.identity_dim)
    disp = expression_displacements(data.train)
    scale = float(np.sqrt(np.mean(np.square(disp))))
    x = (disp / scale).astype(np.float32)
    cfg = config.autoencoder.copy_and_resolve_references()
    with cfg.unlocked():  # the launchers lock their config
        cfg.latent = int(config.codes.expression_dim)
    model = create_model(cfg, topology=_topology(data.reference, data.view.faces, config.topology))
    mesh = data_mesh()
    batches = InMemoryBatches({"x": x}, int(cfg.batch_size), mesh=mesh, seed=int(config.seed),
                              stream=(1,), what="training displacements")
    state = create_train_state(model, int(config.seed), (jnp.zeros((1, *x.shape[1:])),),
                               optax.adam(cfg.learning_rate))

    def loss_fn(params, batch):
        recon = model.apply({"params": params}, batch["x"])
        return jnp.mean(jnp.abs(recon - batch["x"])), {}

    loop = LoopConfig.from_config(config, cfg.num_epochs, desc="autoencoder")
    state, run = fit(state, make_supervised_step(loss_fn, mesh=mesh), batches, loop, workdir)
    ae_params = jax.device_get(state.params)
    codes = map_in_batches(functools.partial(_encode, model, ae_params), (x,),
                           config.eval_batch_size)
    recon = apply_in_batches(model, ae_params, (x,), config.eval_batch_size)
    params = {"mean": id_mean, "identity_basis": id_basis, "autoencoder": ae_params,
              "code_mean": codes.mean(axis=0), "code_std": codes.std(axis=0) + 1e-6,
              "scale": np.float32(scale)}
    code_model = CodeModel("autoencoder", id_basis.shape[0], cfg.latent, 0, params,
                           functools.partial(_autoencoder_apply, model))
    info = {**run.summary(), "num_params": num_params(ae_params),
            "identity_components": int(id_basis.shape[0]),
            "train_l1_mm": float(np.mean(np.abs(recon - x)) * scale * 1e3)}
    return code_model, info


@functools.partial(jax.jit, static_argnums=0)
def _encode(model, params, x):
    return model.apply({"params": params}, x, method=model.encode)


#: Baseline name -> ``build(config, data, workdir) -> (CodeModel, info)``.
BASELINES = {
    "autoencoder": train_autoencoder,
    "linear_3dmm": linear_3dmm,
}
