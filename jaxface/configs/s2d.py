"""S2D-Dec, its baselines and the S2D paper's Tables 1-2.

Modes (``--config=jaxface/configs/s2d.py:<mode>``):

* ``paper`` (default): the paper's hyper-parameters on the CoMA-scale procedural set
  (``faces4d/coma_scale``, 6990 vertices). Train and evaluate one protocol/fold::

      python -m experiments.s2d.main --config=jaxface/configs/s2d.py \
          --workdir=workdirs/s2d_id1 --config.protocol=identity --config.fold=1

  Architecture: the official S2D-Dec (dense 204→(20+1)·128, 4 × [up-sample + SpiralConv + ELU]
  with 64/32/32/16 channels, final SpiralConv to 3); hierarchy factors (4, 4, 4, 4); Neural3DMM
  spirals with rings (2, 2, 1, 1, 1), dilations (2, 2, 1, 1, 1) and data-driven lengths.
  Optimiser: Adam lr 1e-3, weight decay 5e-5, ×0.99 per epoch, batch 16, 300 epochs. Loss:
  ``L_dr + 0.1·L_pr`` with the official landmark-distance weights.
* ``cpu``: Tables 1-2 sized for a 2-core CPU (about 70 minutes)::

      python -m experiments.s2d.tables --config=jaxface/configs/s2d.py:cpu \
          --workdir=workdirs/s2d_tables

  Same protocols, methods and hyper-parameters except the training budget: the 1790-vertex
  template (``faces4d/coma_scale_lite``), every 6th frame of each training sequence (every 4th
  for testing) and 6 epochs instead of 300 (about 700 steps of batch 16 per fold).
* ``converge``: the ``cpu`` data and template, every model trained to convergence: a tenth of
  the training sequences held out, training stops when the validation error has not improved
  by 0.005 mm for 4 epochs (at most 60 epochs), and S2D-Dec's learning rate is chosen among
  1e-3, 3e-4 and 1e-4 on that validation data before the tables::

      python -m experiments.s2d.tables --config=jaxface/configs/s2d.py:converge \
          --workdir=workdirs/s2d_tables_converged

* ``test``: the tiny procedural set (468 vertices), tiny networks, a few steps (seconds).
"""

import ml_collections

from jaxface.configs.common import base_config, parse_mode, topology_config

MODES = ("paper", "cpu", "converge", "test")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The S2D configuration of a mode (see the module docstring)."""
    mode = parse_mode(arg, MODES)
    c = base_config(mode, seed=2)
    c.protocol = "identity"  # identity | expression | any prepared protocol name
    c.fold = 1
    c.frame_stride = 1  # keep every n-th training frame
    c.eval_frame_stride = 1
    c.loader = "memory"  # memory: frames held on the devices | stream: read by grain per batch

    c.topology = topology_config()

    c.model = ml_collections.ConfigDict()
    c.model.name = "s2d_decoder"
    c.model.channels = (128, 64, 32, 32, 16)
    c.model.activation = "elu"
    c.model.learned_padding = True
    c.model.compute_dtype = "float32"  # or "bfloat16"

    c.loss = ml_collections.ConfigDict()
    c.loss.form = "paper"  # paper: mean over vertices; official: weighted sum over vertices
    c.loss.beta_dr = 1.0
    c.loss.beta_pr = 0.1
    c.loss.weights = "official"  # official (1 - d/max d) | inverse (paper) | none

    c.optim = ml_collections.ConfigDict()
    c.optim.learning_rate = 1e-3
    c.optim.weight_decay = 5e-5
    c.optim.decay_rate = 0.99
    c.optim.batch_size = 16
    c.optim.num_epochs = 300

    # Validation: whole training-part sequences held out, evaluated while training (mean
    # per-vertex error, mm, in <workdir>/eval.jsonl); with patience > 0 the run stops once the
    # error has not improved by min_delta_mm for that many evaluations (num_epochs is then a
    # ceiling).
    c.validation = ml_collections.ConfigDict()
    c.validation.fraction = 0.0  # share of the training sequences held out (0: none)
    c.validation.every_epochs = 1.0
    c.validation.patience = 0
    c.validation.min_delta_mm = 0.0
    # The parameters a run ends with: "last" (the paper trains a fixed number of epochs and
    # keeps the last) or "best" (those of its best validation evaluation, saved when it was
    # evaluated; the run's folder keeps them in best/, and loading the run uses them).
    c.validation.keep = "last"

    # The Neural3DMM baseline (spiral autoencoder, latent 16 ⊕ landmark displacement).
    c.neural3dmm = ml_collections.ConfigDict()
    c.neural3dmm.name = "neural3dmm"
    c.neural3dmm.encoder_channels = (16, 32, 64, 128)
    c.neural3dmm.decoder_channels = (128, 64, 32, 32, 16)
    c.neural3dmm.latent = 16
    c.neural3dmm.activation = c.model.get_ref("activation")
    c.neural3dmm.compute_dtype = c.model.get_ref("compute_dtype")

    # The linear 3DMM baselines of Table 1.
    c.baselines = ml_collections.ConfigDict()
    c.baselines.num_components = 220  # PCA-k and DL3DMM-k
    c.baselines.variance = 0.99  # PCA-99%: components explaining this variance
    c.baselines.dl3dmm_max_examples = 2000

    # Table 1 / Table 2 (jaxface.s2d.tables): rows are keys of jaxface.s2d.tables.METHODS.
    c.tables = ml_collections.ConfigDict()
    c.tables.protocols = ("expression", "identity")
    c.tables.folds = (1, 2, 3, 4)
    c.tables.methods = ("pca_variance", "pca", "dl3dmm", "neural3dmm", "s2d_dec")
    c.tables.ablation_protocol = "identity_fold4"  # the first three identities are test
    c.tables.num_heatmaps = 4
    c.tables.curve_max_mm = 3.0
    # S2D-Dec learning rates tried on validation data before the tables (empty: use optim's).
    c.tables.learning_rates = ()

    c.eval_batch_size = 64

    if mode in ("cpu", "converge"):
        c.dataset_config = "coma_scale_lite"
        c.frame_stride = 6
        c.eval_frame_stride = 4
        c.optim.num_epochs = 6
        c.progress = False
        c.log_every = 100
    if mode == "converge":
        # Every network trained until its validation error stops improving (num_epochs is a
        # ceiling) and S2D-Dec's learning rate chosen on validation data first.
        c.optim.num_epochs = 60
        c.validation.fraction = 0.1
        c.validation.every_epochs = 1.0
        c.validation.patience = 4
        c.validation.min_delta_mm = 0.005
        c.validation.keep = "best"
        c.tables.learning_rates = (1e-3, 3e-4, 1e-4)
    elif mode == "test":
        c.dataset_config = "tiny"
        c.protocol = "expression"  # the tiny set has 3 subjects: too few for identity folds
        c.frame_stride = 2
        c.eval_frame_stride = 4
        c.topology = topology_config((4, 4), rings=(1, 1, 1), dilations=(1, 1, 1))
        c.model.channels = (16, 16, 8)
        c.neural3dmm.encoder_channels = (8, 8)
        c.neural3dmm.decoder_channels = (16, 16, 8)
        c.neural3dmm.latent = 4
        c.baselines.num_components = 20
        c.baselines.dl3dmm_max_examples = 200
        c.tables.protocols = ("expression",)
        c.tables.folds = (1,)
        c.tables.ablation_protocol = "expression_fold1"
        c.tables.num_heatmaps = 2
        c.optim.batch_size = 8
        c.optim.num_epochs = 2
        c.checkpoint_every = 5
        c.log_every = 2
        c.eval_batch_size = 16
        c.progress = False
    return c
