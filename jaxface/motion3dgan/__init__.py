"""Motion3DGAN: training, the LSTM baseline, Table 3 evaluation and the §4.4 applications.

* :mod:`~jaxface.motion3dgan.data`: neutral -> apex landmark motions as SRVFs, splits;
* :mod:`~jaxface.motion3dgan.train`: the GAN state, the losses, the jitted WGAN-GP step and
  :func:`train_gan`;
* :mod:`~jaxface.motion3dgan.experiment`: one training run with samples of every label;
* :mod:`~jaxface.motion3dgan.baseline`: the deterministic LSTM landmark generator;
* :mod:`~jaxface.motion3dgan.evaluate`: the expression classifier, accuracy, FID and Table 3;
* :mod:`~jaxface.motion3dgan.applications`: diversity, interpolation, mixed expressions, transfer.
"""

from jaxface.motion3dgan.applications import (
    apex_transition,
    blend_motions,
    decode_meshes,
    interpolate_motions,
    landmarks_to_motion,
    motion_to_landmarks,
    sample_diversity,
    transfer_motion,
)
from jaxface.motion3dgan.baseline import generate_lstm_landmarks, train_lstm_generator
from jaxface.motion3dgan.data import (
    MotionSet,
    label_intensities,
    load_motion_splits,
    load_motions,
    split_motions,
)
from jaxface.motion3dgan.evaluate import (
    accuracy,
    classify,
    run_table3,
    table3_markdown,
    train_classifier,
)
from jaxface.motion3dgan.experiment import train_and_evaluate
from jaxface.motion3dgan.train import (
    GANLoss,
    GANModels,
    GANState,
    create_gan_state,
    create_models,
    critic_loss,
    generator_loss,
    make_sample_fn,
    make_train_step,
    train_gan,
)

__all__ = [
    "GANLoss",
    "GANModels",
    "GANState",
    "MotionSet",
    "accuracy",
    "apex_transition",
    "blend_motions",
    "classify",
    "create_gan_state",
    "create_models",
    "critic_loss",
    "decode_meshes",
    "generate_lstm_landmarks",
    "generator_loss",
    "interpolate_motions",
    "label_intensities",
    "landmarks_to_motion",
    "load_motion_splits",
    "load_motions",
    "make_sample_fn",
    "make_train_step",
    "motion_to_landmarks",
    "run_table3",
    "sample_diversity",
    "split_motions",
    "table3_markdown",
    "train_and_evaluate",
    "train_classifier",
    "train_gan",
    "train_lstm_generator",
    "transfer_motion",
]
