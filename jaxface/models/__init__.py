"""Flax linen models of the papers, and :func:`create_model`, the registry by name."""

from jaxface.models.decoupled_gan import CriticOutput, DecoupledCritic, DecoupledGenerator
from jaxface.models.expression_lstm import ExpressionLSTM, LinearBasisDecoder, SpiralMeshDecoder
from jaxface.models.face_embedding import FaceEmbedding
from jaxface.models.face_encoder import (
    ExpressionEncoder,
    FaceEncoder,
    FaceEncoding,
    PoseEncoder,
    ShapeEncoder,
)
from jaxface.models.mesh_autoencoder import MeshAutoencoder
from jaxface.models.mobilenet_v3 import MobileNetV3Minimal
from jaxface.models.motion3dgan import (
    Motion3DGANCritic,
    Motion3DGANGenerator,
    one_hot_condition,
    rb_condition,
)
from jaxface.models.neural3dmm import Neural3DMM, SpiralEncoder
from jaxface.models.registry import MODELS, compute_dtype, create_model
from jaxface.models.s2d import S2DDecoder, SpiralTopology, build_topology
from jaxface.models.sequence_classifier import FrameCodeClassifier
from jaxface.models.sequence_lstm import (
    LSTMExpressionClassifier,
    LSTMLandmarkGenerator,
    expression_code,
    sequence_l1_loss,
)
from jaxface.models.strided_conv import StridedConv, constant_planes_response
from jaxface.models.timm_weights import load_timm_weights
from jaxface.models.unet import UNet

__all__ = [
    "MODELS",
    "CriticOutput",
    "DecoupledCritic",
    "DecoupledGenerator",
    "ExpressionEncoder",
    "ExpressionLSTM",
    "FaceEmbedding",
    "FaceEncoder",
    "FaceEncoding",
    "FrameCodeClassifier",
    "LSTMExpressionClassifier",
    "LSTMLandmarkGenerator",
    "LinearBasisDecoder",
    "MeshAutoencoder",
    "MobileNetV3Minimal",
    "Motion3DGANCritic",
    "Motion3DGANGenerator",
    "Neural3DMM",
    "PoseEncoder",
    "S2DDecoder",
    "ShapeEncoder",
    "SpiralEncoder",
    "SpiralMeshDecoder",
    "SpiralTopology",
    "StridedConv",
    "UNet",
    "build_topology",
    "compute_dtype",
    "constant_planes_response",
    "create_model",
    "expression_code",
    "load_timm_weights",
    "one_hot_condition",
    "rb_condition",
    "sequence_l1_loss",
]
