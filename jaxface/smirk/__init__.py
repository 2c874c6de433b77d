"""Image → 3D face (SMIRK, Retsinas et al., CVPR 2024): encoders trained on renders of the
morphable model and on real frames, reconstruction of photos and videos, and its evaluation.

* :mod:`jaxface.smirk.crop`, :mod:`~jaxface.smirk.augment`: face crops and on-device jitter;
* :mod:`jaxface.smirk.frames`: real frames (context crops with MediaPipe's landmarks);
* :mod:`jaxface.smirk.synthetic`: renders of the morphable model with known parameters;
* :mod:`jaxface.smirk.train`: the encoders' pretrain stage (one jitted step, :func:`fit`);
* :mod:`jaxface.smirk.fitting`: the landmark-fitting baseline;
* :mod:`jaxface.smirk.reconstruct`, :mod:`~jaxface.smirk.run`: photos and videos -> meshes;
* :mod:`jaxface.smirk.evaluate`, :mod:`~jaxface.smirk.experiment`: the tables;
* :mod:`jaxface.smirk.masking`, :mod:`~jaxface.smirk.cycle`, :mod:`~jaxface.smirk.core`: the core
  stage's masked pixels, augmented-expression cycle and jitted step;
  :mod:`~jaxface.smirk.core_train`: its driver (``train_core``; no trained run reported yet).
"""

from jaxface.smirk.core_train import train_core
from jaxface.smirk.experiment import run_experiment
from jaxface.smirk.reconstruct import Reconstruction, Reconstructor
from jaxface.smirk.run import load_encoders, pack_encoders
from jaxface.smirk.train import train_encoders

__all__ = [
    "Reconstruction",
    "Reconstructor",
    "load_encoders",
    "pack_encoders",
    "run_experiment",
    "train_core",
    "train_encoders",
]
