"""Models by name: ``create_model(config.model, **context)``.

Experiment configs name their network (``config.model.name``) and give its fields in the same
block; :func:`create_model` looks the name up in :data:`MODELS` and builds the Flax module.
``context`` carries what comes from the data rather than the config (a template's
:class:`~jaxface.models.s2d.SpiralTopology`, the number of expression labels, the sequence
length). Adding a model is a module with the network plus one entry here (see
``docs/adding_a_model.md``).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp

from jaxface.models.decoupled_gan import DecoupledCritic, DecoupledGenerator
from jaxface.models.expression_lstm import ExpressionLSTM, LinearBasisDecoder, SpiralMeshDecoder
from jaxface.models.face_embedding import FaceEmbedding
from jaxface.models.face_encoder import FaceEncoder
from jaxface.models.mesh_autoencoder import MeshAutoencoder
from jaxface.models.neural3dmm import Neural3DMM
from jaxface.models.s2d import S2DDecoder, SpiralTopology
from jaxface.models.sequence_classifier import FrameCodeClassifier
from jaxface.models.sequence_lstm import LSTMExpressionClassifier, LSTMLandmarkGenerator
from jaxface.models.unet import UNet

__all__ = ["MODELS", "compute_dtype", "create_model"]


def compute_dtype(name: str | None):
    """The compute dtype of a config's ``compute_dtype`` (``None`` keeps float32)."""
    if name in (None, "float32"):
        return None
    if name == "bfloat16":
        return jnp.bfloat16
    raise ValueError(f"compute_dtype must be 'float32' or 'bfloat16', got {name!r}")


def _s2d_decoder(cfg, *, topology: SpiralTopology) -> S2DDecoder:
    return S2DDecoder(
        topology, channels=tuple(cfg.channels), activation=cfg.activation,
        learned_padding=cfg.learned_padding, dtype=compute_dtype(cfg.get("compute_dtype")),
        spiral_impl=cfg.get("spiral_impl", "auto"),
    )


def _neural3dmm(cfg, *, topology: SpiralTopology) -> Neural3DMM:
    return Neural3DMM(
        topology, encoder_channels=tuple(cfg.encoder_channels),
        decoder_channels=tuple(cfg.decoder_channels), latent=cfg.latent,
        activation=cfg.activation, dtype=compute_dtype(cfg.get("compute_dtype")),
    )


def _decoupled_generator(cfg, *, num_vertices: int) -> DecoupledGenerator:
    return DecoupledGenerator(num_vertices=num_vertices, hidden=cfg.hidden,
                              activation=cfg.activation, negative_slope=cfg.negative_slope,
                              output_init=cfg.get("output_init", "lecun"))


def _decoupled_critic(cfg, *, num_identities: int, num_expressions: int) -> DecoupledCritic:
    return DecoupledCritic(num_identities=num_identities, num_expressions=num_expressions,
                           shared_channels=tuple(cfg.shared_channels),
                           branch_channels=tuple(cfg.branch_channels),
                           negative_slope=cfg.negative_slope)


def _face_embedding(cfg) -> FaceEmbedding:
    return FaceEmbedding(channels=tuple(cfg.channels), embedding_dim=cfg.embedding_dim)


def _mesh_autoencoder(cfg, *, topology: SpiralTopology) -> MeshAutoencoder:
    return MeshAutoencoder(
        topology, encoder_channels=tuple(cfg.encoder_channels),
        decoder_channels=tuple(cfg.decoder_channels), latent=cfg.latent,
        activation=cfg.activation, dtype=compute_dtype(cfg.get("compute_dtype")),
    )


def _lstm_landmark_generator(cfg, *, num_frames: int, num_classes: int) -> LSTMLandmarkGenerator:
    return LSTMLandmarkGenerator(num_frames=num_frames, num_classes=num_classes,
                                 hidden_size=cfg.hidden_size, latent_size=cfg.latent_size)


def _lstm_expression_classifier(cfg, *, num_classes: int) -> LSTMExpressionClassifier:
    return LSTMExpressionClassifier(num_classes=num_classes, hidden_size=cfg.hidden_size,
                                    feature_size=cfg.feature_size)


def _expression_lstm(cfg, *, topology: SpiralTopology | None = None,
                     basis: tuple | None = None, stats: tuple | None = None) -> ExpressionLSTM:
    """``cfg.decoder``: ``"spiral"`` (needs ``topology``; with ``cfg.standardize`` also
    ``stats``, the per-vertex ``(mean [N, 3], std [N, 3])`` of the training displacements) or
    ``"pca"`` (needs ``basis``, the ``(mean [N, 3], components [K, N, 3])`` of the training
    motions; ``K = latent_size``)."""
    if cfg.decoder == "spiral":
        if topology is None:
            raise ValueError("the spiral decoder needs the template's topology")
        if cfg.get("standardize", False) and stats is None:
            raise ValueError("a standardised spiral decoder needs the training displacements' "
                             "per-vertex mean and standard deviation")
        mean, std = stats if cfg.get("standardize", False) else (None, None)
        decoder = SpiralMeshDecoder(topology, channels=tuple(cfg.channels),
                                    activation=cfg.activation,
                                    output_activation=cfg.output_activation, mean=mean, std=std,
                                    dtype=compute_dtype(cfg.get("compute_dtype")))
    elif cfg.decoder == "pca":
        if basis is None:
            raise ValueError("the PCA decoder needs the basis of the training motions")
        decoder = LinearBasisDecoder(*basis)
    else:
        raise ValueError(f"decoder must be 'spiral' or 'pca', got {cfg.decoder!r}")
    return ExpressionLSTM(decoder, hidden_size=cfg.hidden_size, latent_size=cfg.latent_size)


_SMIRK_BACKBONES = {"pose": "small", "shape": "large", "expression": "large"}


def _smirk_encoder(cfg) -> FaceEncoder:
    """``cfg``: ``num_shape``, ``num_expression``, optional ``backbones`` (MobileNetV3-minimal
    variant per encoder, ``{"pose": "small", "shape": "large", "expression": "large"}`` by
    default), ``eyelids`` (``"clamp"``) and ``dtype`` (compute dtype, float32)."""
    backbones = dict(_SMIRK_BACKBONES, **dict(cfg.get("backbones") or {}))
    if set(backbones) != set(_SMIRK_BACKBONES):
        unknown = sorted(set(backbones) - set(_SMIRK_BACKBONES))
        raise ValueError(f"model.backbones: unknown encoder(s) {unknown}; "
                         f"expected keys {sorted(_SMIRK_BACKBONES)}")
    if cfg.get("dtype") not in (None, "float32", "bfloat16"):
        raise ValueError(f"model.dtype must be 'float32' or 'bfloat16', got {cfg.dtype!r}")
    return FaceEncoder(num_shape=cfg.num_shape, num_expression=cfg.num_expression,
                       pose_backbone=backbones["pose"], shape_backbone=backbones["shape"],
                       expression_backbone=backbones["expression"],
                       eyelids=cfg.get("eyelids", "clamp"), dtype=compute_dtype(cfg.get("dtype")))


def _smirk_unet(cfg) -> UNet:
    """``cfg``: ``features`` (32), ``res_blocks`` (5) and ``out_channels`` (3)."""
    return UNet(features=cfg.get("features", 32), res_blocks=cfg.get("res_blocks", 5),
                out_channels=cfg.get("out_channels", 3))


def _frame_code_classifier(cfg, *, num_classes: int) -> FrameCodeClassifier:
    return FrameCodeClassifier(num_classes=num_classes, hidden=tuple(cfg.hidden))


#: Model name -> ``factory(model_config, **context) -> nn.Module``.
MODELS: dict[str, Callable[..., nn.Module]] = {
    "decoupled_critic": _decoupled_critic,
    "decoupled_generator": _decoupled_generator,
    "expression_lstm": _expression_lstm,
    "face_embedding": _face_embedding,
    "frame_code_classifier": _frame_code_classifier,
    "lstm_expression_classifier": _lstm_expression_classifier,
    "lstm_landmark_generator": _lstm_landmark_generator,
    "mesh_autoencoder": _mesh_autoencoder,
    "neural3dmm": _neural3dmm,
    "s2d_decoder": _s2d_decoder,
    "smirk_encoder": _smirk_encoder,
    "smirk_unet": _smirk_unet,
}


def create_model(cfg, **context) -> nn.Module:
    """The module named by ``cfg.name``, built from the fields of ``cfg``.

    Args:
      cfg: a config block with ``name`` (a key of :data:`MODELS`) and that model's fields.
      **context: what the model needs from the data (e.g. ``topology=``, ``num_classes=``).

    Raises:
      ValueError: an unknown name.
    """
    name = cfg.get("name")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    return MODELS[name](cfg, **context)
