"""Customised 4D expressions (Potamias et al., ECCV 2020): label signal -> LSTM -> spiral decoder.

Modes (``--config=jaxface/configs/express.py:<mode>``):

* ``paper`` (default): the paper's setting on faces4d's six basic expressions
  (``faces4d/basic6``: 36 identities, 2 takes per expression, 1790 vertices, 24 fps), every 2nd
  frame (12 fps, as the paper samples 4DFAB's 60 fps every 5th frame), 15 % of the identities
  unseen at test (the paper: 27 of 180). Decoder: dense 64 -> coarsest level x 64, four
  [up-sample + SpiralConv + ReLU] stages with 32/16/8/3 channels on a hierarchy of factor 5
  (1790 -> 358 -> 72 -> 15 -> 3, the proportions of the paper's 28431 -> ... -> 46), Neural3DMM
  spirals, outputs in per-vertex standardised units (the Neural3DMM setting); LSTM with 128
  units (unverified), latent 64; loss ``L_r + L_c``; Adam 1e-3, L2
  weight decay 5e-5, x0.99 per epoch, batch 16, 100 epochs. Baseline: the same LSTM and latent
  size decoded through the PCA basis of the training motions. Classifier: 64 PCA coefficients
  per frame, 32 frames, three dense layers, Adam with 5e-3 weight decay, 13 epochs::

      python -m experiments.express.main --config=jaxface/configs/express.py \\
          --workdir=workdirs/express

* ``cpu``: the same data, models and protocol with a validation stop sized for a 2-core CPU:
  10 % of the training identities held out, training stops when their error has not improved
  by 0.005 mm for 5 evaluations (every 2 epochs), at most 40 epochs (about 2 s per step of 16
  sequences on 2 cores).
* ``test``: the tiny six-expression set (468 vertices), tiny networks, a few steps (seconds).
"""

import ml_collections

from jaxface.configs.common import base_config, parse_mode, topology_config

MODES = ("paper", "cpu", "test")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The 4D expression configuration of a mode (see the module docstring)."""
    mode = parse_mode(arg, MODES)
    c = base_config(mode, seed=3)
    c.dataset_config = "basic6"
    c.frame_stride = 2  # keep every n-th frame of each sequence
    c.max_frames = 0  # cut sequences to this many frames (0: the longest)
    c.test_fraction = 0.15  # identities unseen in training (the paper: 27 / 180)

    c.intensity = ml_collections.ConfigDict()
    c.intensity.min_scale = 0.05  # eq. 6 floor: s in (0, 1]

    c.topology = topology_config((5, 5, 5, 5))

    c.model = ml_collections.ConfigDict()
    c.model.name = "expression_lstm"
    c.model.decoder = "spiral"
    c.model.channels = (64, 32, 16, 8, 3)
    c.model.activation = "relu"
    c.model.output_activation = False  # unverified: a ReLU after the last convolution
    c.model.standardize = True  # per-vertex standardised outputs (the Neural3DMM setting)
    c.model.hidden_size = 128  # unverified: the LSTM's width is not in the text
    c.model.latent_size = 64
    c.model.compute_dtype = "float32"

    # The PCA blendshape baseline: same LSTM, the code decoded through the motions' PCA basis.
    c.baseline = ml_collections.ConfigDict()
    c.baseline.name = "expression_lstm"
    c.baseline.decoder = "pca"
    c.baseline.hidden_size = c.model.get_ref("hidden_size")
    c.baseline.latent_size = c.model.get_ref("latent_size")

    c.loss = ml_collections.ConfigDict()
    c.loss.temporal_weight = 1.0  # L = L_r + w L_c (eq. 5: w = 1)

    c.optim = ml_collections.ConfigDict()
    c.optim.learning_rate = 1e-3
    c.optim.weight_decay = 5e-5
    c.optim.decay_rate = 0.99
    c.optim.batch_size = 16
    c.optim.num_epochs = 100

    c.validation = ml_collections.ConfigDict()
    c.validation.fraction = 0.0  # share of the training identities held out (0: none)
    c.validation.every_epochs = 1.0
    c.validation.patience = 0
    c.validation.min_delta_mm = 0.0

    # The expression classifier of Sec. 5.3 (trained on the real training sequences).
    c.classifier = ml_collections.ConfigDict()
    c.classifier.name = "frame_code_classifier"
    c.classifier.num_components = 64
    c.classifier.num_frames = 32  # each sequence's real frames resampled to this many
    c.classifier.hidden = (256, 128)
    c.classifier.learning_rate = 1e-3
    c.classifier.weight_decay = 5e-3
    c.classifier.batch_size = 16
    c.classifier.num_epochs = 13
    c.classifier.seeds = (0, 1, 2)  # classifiers trained; the table reports their mean

    c.evaluation = ml_collections.ConfigDict()
    c.evaluation.num_heatmaps = 3  # test sequences rendered with error maps
    c.evaluation.interpolation_steps = 6
    c.evaluation.curve_frames = 60  # the intensity-following check: frames per sequence
    c.evaluation.curve_intensities = (0.25, 0.5, 1.0)

    c.eval_batch_size = 16
    c.progress = False
    c.log_every = 20

    if mode == "cpu":
        c.optim.num_epochs = 40
        c.validation.fraction = 0.1
        c.validation.every_epochs = 2.0
        c.validation.patience = 5
        c.validation.min_delta_mm = 0.005
    elif mode == "test":
        c.dataset_config = "basic6_tiny"
        c.frame_stride = 1
        c.test_fraction = 0.34  # one of the three identities
        c.topology = topology_config((4, 4), rings=(1, 1, 1), dilations=(1, 1, 1))
        c.model.channels = (8, 8, 3)
        c.model.hidden_size = 16
        c.model.latent_size = 8
        c.classifier.num_components = 8
        c.classifier.num_frames = 8
        c.classifier.hidden = (16, 8)
        c.classifier.num_epochs = 3
        c.classifier.seeds = (0,)
        c.classifier.batch_size = 8
        c.optim.batch_size = 8
        c.optim.num_epochs = 4
        c.evaluation.num_heatmaps = 1
        c.evaluation.interpolation_steps = 3
        c.evaluation.curve_frames = 20
        c.checkpoint_every = 5
        c.log_every = 2
        c.eval_batch_size = 8
    return c
