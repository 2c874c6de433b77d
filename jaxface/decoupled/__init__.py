"""The decoupled 3D face GAN (Fernández Abrevaya et al., ICCV 2019).

A generator maps identity, expression and noise codes to per-vertex displacements of the
template; a 2D critic judges their geometry images and classifies identity and expression; the
classifiers and a feature loss decouple the codes.

* :mod:`~jaxface.decoupled.data`: labelled meshes of a protocol (sparse expression labels);
* :mod:`~jaxface.decoupled.model`: the networks, the fixed geometry mapping and the run template;
* :mod:`~jaxface.decoupled.losses` and :mod:`~jaxface.decoupled.train`: the losses and the jitted
  WGAN-GP step, trained through :func:`jaxface.train.fit`;
* :mod:`~jaxface.decoupled.codes`: the code-model interface shared with the baselines
  (:mod:`~jaxface.decoupled.baselines`);
* :mod:`~jaxface.decoupled.metrics`, :mod:`~jaxface.decoupled.embedding`,
  :mod:`~jaxface.decoupled.fitting`: Table 1's metrics and Table 2's landmark fitting;
* :mod:`~jaxface.decoupled.tables`: every table in one call; :mod:`~jaxface.decoupled.experiment`:
  one run; :mod:`~jaxface.decoupled.sheet`: contact sheets; :mod:`~jaxface.decoupled.inference`:
  a trained run on your meshes (sample, transfer, fit).
"""

from jaxface.decoupled.baselines import BASELINES, linear_3dmm, train_autoencoder
from jaxface.decoupled.codes import CodeModel, gan_code_model
from jaxface.decoupled.data import FaceData, LabelledFaces, load_faces
from jaxface.decoupled.experiment import train_and_sample
from jaxface.decoupled.fitting import FitResult, PointSelection, fit_codes
from jaxface.decoupled.inference import DecoupledFaceModel
from jaxface.decoupled.model import FaceGAN, create_gan
from jaxface.decoupled.tables import VARIANTS, run_tables
from jaxface.decoupled.train import (
    GANState,
    LossWeights,
    Trainer,
    make_train_step,
    train_decoupled,
)

__all__ = [
    "BASELINES",
    "VARIANTS",
    "CodeModel",
    "DecoupledFaceModel",
    "FaceData",
    "FaceGAN",
    "FitResult",
    "GANState",
    "LabelledFaces",
    "LossWeights",
    "PointSelection",
    "Trainer",
    "create_gan",
    "fit_codes",
    "gan_code_model",
    "linear_3dmm",
    "load_faces",
    "make_train_step",
    "run_tables",
    "train_and_sample",
    "train_autoencoder",
    "train_decoupled",
]
