"""Customised 4D expressions (Potamias et al., ECCV 2020): a neutral face, an expression and its
intensity curve -> a 4D sequence.

* :mod:`~jaxface.express.signal`: the label signal (one-hot x onset/apex/offset curve x the
  intensity of eq. 6);
* :mod:`~jaxface.express.data`: whole sequences with their signals, split by identity;
* :mod:`~jaxface.express.model` and :mod:`~jaxface.express.train`: the LSTM + spiral decoder
  (:class:`jaxface.models.ExpressionLSTM`) and its PCA-blendshape baseline, trained with eq. 5
  through :func:`jaxface.train.fit`;
* :mod:`~jaxface.express.evaluate` and :mod:`~jaxface.express.experiment`: Tables 2-3, the
  per-frame error, the intensity-following check and latent interpolation;
* :mod:`~jaxface.express.inference`: a trained run applied to a user's neutral face
  (``jaxface express``).
"""

from jaxface.express.data import (
    ExpressionData,
    ExpressionSequences,
    load_expression_data,
    subject_split,
)
from jaxface.express.experiment import run_experiment
from jaxface.express.inference import ExpressionModel, load_expression_model
from jaxface.express.model import TrainedModel, fit_motion_basis
from jaxface.express.signal import (
    IntensityStatistics,
    Phases,
    curve_from_points,
    intensity_curve,
    label_signal,
    phases_from_motion,
)
from jaxface.express.train import train_expression_model

__all__ = [
    "ExpressionData",
    "ExpressionModel",
    "ExpressionSequences",
    "IntensityStatistics",
    "Phases",
    "TrainedModel",
    "curve_from_points",
    "fit_motion_basis",
    "intensity_curve",
    "label_signal",
    "load_expression_data",
    "load_expression_model",
    "phases_from_motion",
    "run_experiment",
    "subject_split",
    "train_expression_model",
]
