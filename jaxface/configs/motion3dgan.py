"""Motion3DGAN and its Table 3 evaluation on the CoMA-scale procedural set.

Modes (``--config=jaxface/configs/motion3dgan.py:<mode>``):

``paper`` (default), the official architecture::

    python -m experiments.motion3dgan.main --config=jaxface/configs/motion3dgan.py \
        --workdir=workdirs/motion3dgan

* generator: dense 128+12 -> 51*7*1024, then nearest-resize + 3x3 conv stages with 512/256/128
  channels and a 3x3 conv to one channel, tanh; its output (projected to the tangent space) is a
  tangent vector at the reference point;
* critic: three 5x5 stride-2 convolutions (64/32/16 channels) with normalisation (layer norm;
  ``model.critic_norm="batch"`` is the official batch norm), dense 1024, dense 1;
* one-hot condition (paper; ``model.condition="rb"`` is the official random-magnitude code);
* WGAN-GP, lambda 10, alpha1 = 1, alpha2 = 10; 4 critic updates per generator update;
  Adam(0.5, 0.9), lr 1e-4, batch 128, 8000 epochs; reference point = Karcher mean of the
  training SRVFs (``sphere.reference="sample"`` is the official single sample).

``cpu``, sized for a 2-core CPU (15-25 minutes for all of Table 3 depending on the load, see
``experiments/motion3dgan/README.md``)::

    python -m experiments.motion3dgan.table3 \
        --config=jaxface/configs/motion3dgan.py:cpu --workdir=workdirs/m3d_table3

It keeps the data, the losses and their weights, but shrinks the networks and the schedule:

* generator base channels 1024 -> 64 (dense 51*7*64, convolutions 32/16/8), with a fan-in scaled
  (LeCun) initialisation and the output scaled by 0.25 (with the official std-0.02
  initialisation a generator this narrow starts with a near-zero, label-independent output and
  does not learn in a few hundred steps; see ``jaxface.motion3dgan.train.create_models``);
* critic channels 64/32/16 -> 8/8/8, dense 1024 -> 64;
* 2 critic updates per generator update (official 4), batch 16, learning rate 1e-3 for both
  networks (paper 1e-4), 100 epochs = 900 steps (paper 8000 epochs of batch 128);
* LSTM baseline: 128 hidden units, 40 epochs; classifier: 128 hidden units, 150 epochs;
* S2D-Dec for the Det-LM rows: channels 32/16/16/16/8, every second training frame, 3 epochs.

``converge``: the ``cpu`` networks on ``faces4d/coma_scale_lite`` trained to convergence: a
tenth of the training sequences held out, each network stops when its validation metric (GAN:
coverage L1 of the validation motions; LSTM and classifier: their losses; S2D-Dec: mean error
in mm) has not improved for 6 evaluations, one every 2 epochs (ceilings: GAN 150 epochs, LSTM
and classifier 300, S2D-Dec 60); on faces4d 2.0.0 every network stops on the rule, in 31
minutes of a busy 2-core CPU::

    python -m experiments.motion3dgan.table3 \
        --config=jaxface/configs/motion3dgan.py:converge --workdir=workdirs/m3d_table3_converged

``test``: the tiny procedural set and tiny networks, seconds on a CPU.
"""

import ml_collections

from jaxface.configs import s2d
from jaxface.configs.common import base_config, parse_mode

MODES = ("paper", "cpu", "converge", "test")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Motion3DGAN configuration of a mode (see the module docstring)."""
    mode = parse_mode(arg, MODES)
    c = base_config(mode, seed=0)
    c.split_rule = "first_sample"  # first sample of each (subject, expression) is test
    c.num_frames = 30
    c.min_frames = 10
    c.num_landmarks = 68

    c.model = ml_collections.ConfigDict()
    c.model.gen_base_channels = 1024
    c.model.noise_dim = 128
    c.model.project_to_tangent = True
    c.model.gen_init = "official"  # official (normal 0.02) | lecun (for narrow generators)
    c.model.output_scale = 1.0  # factor on the generator output (official: none)
    c.model.critic_channels = (64, 32, 16)
    c.model.critic_hidden = 1024
    c.model.critic_norm = "layer"  # layer | batch (official) | none
    c.model.condition = "one_hot"  # one_hot (paper) | rb (official)
    c.model.rb_dim = 3

    c.sphere = ml_collections.ConfigDict()
    c.sphere.reference = "mean"  # mean (paper: Karcher mean) | sample (official)
    c.sphere.reference_index = 0
    c.sphere.cos_clip = ml_collections.FieldReference(None, field_type=float)  # official: 0.98
    c.sphere.inverse_spacing = "forward"  # forward | linspace (official)

    c.loss = ml_collections.ConfigDict()
    c.loss.alpha_adv = 1.0
    c.loss.alpha_rec = 10.0
    c.loss.geodesic_weight = 0.0  # official: alpha_rec
    c.loss.gp_weight = 10.0

    c.optim = ml_collections.ConfigDict()
    c.optim.learning_rate = 1e-4
    # None: the generator's learning rate.
    c.optim.critic_learning_rate = ml_collections.FieldReference(None, field_type=float)
    c.optim.b1 = 0.5
    c.optim.b2 = 0.9
    c.optim.batch_size = 128
    c.optim.num_epochs = 8000
    c.optim.n_critic = 4

    c.intensity_statistic = "median"  # per-label SRVF length given to generated motions
    c.samples_per_label = 10

    # Validation: a share of the training motions held out and evaluated while training the
    # GAN (coverage L1), the LSTM baseline and the classifier (their losses), in each run's
    # eval.jsonl; with patience > 0 a run stops once its metric has not improved by min_delta
    # for that many evaluations (num_epochs is then a ceiling).
    c.validation = ml_collections.ConfigDict()
    c.validation.fraction = 0.0
    c.validation.every_epochs = 1.0
    c.validation.patience = 0
    c.validation.min_delta = 0.0

    # The deterministic LSTM landmark generator (Table 3 baseline).
    c.baseline = ml_collections.ConfigDict()
    c.baseline.name = "lstm_landmark_generator"
    c.baseline.hidden_size = 256
    c.baseline.latent_size = 64
    c.baseline.learning_rate = 1e-3
    c.baseline.batch_size = 16
    c.baseline.num_epochs = 300
    c.baseline.temporal_weight = 1.0

    # The LSTM expression classifier (accuracy and 512-d FID features).
    c.classifier = ml_collections.ConfigDict()
    c.classifier.name = "lstm_expression_classifier"
    c.classifier.hidden_size = 256
    c.classifier.feature_size = 512
    c.classifier.learning_rate = 1e-3
    c.classifier.batch_size = 16
    c.classifier.num_epochs = 100

    # S2D-Dec for the Det-LM rows (the S2D experiment's configuration).
    c.s2d = s2d.get_config("test" if mode == "test" else "paper")
    c.s2d.progress = mode != "test"

    c.table3 = ml_collections.ConfigDict()
    c.table3.s2d_workdir = ""  # reuse a trained S2D-Dec run folder; "" trains one in <workdir>/s2d
    c.table3.s2d_frame_stride = 1
    c.table3.sample_seed = 0

    if mode in ("cpu", "converge"):
        c.model.gen_base_channels = 64
        c.model.gen_init = "lecun"
        c.model.output_scale = 0.25
        c.model.critic_channels = (8, 8, 8)
        c.model.critic_hidden = 64
        c.optim.learning_rate = 1e-3
        c.optim.batch_size = 16
        c.optim.num_epochs = 100
        c.optim.n_critic = 2
        c.checkpoint_every = 100
        c.log_every = 10
        c.baseline.hidden_size = 128
        c.baseline.num_epochs = 40
        c.classifier.hidden_size = 128
        c.classifier.num_epochs = 150
        c.s2d.model.channels = (32, 16, 16, 16, 8)
        c.s2d.optim.num_epochs = 3
        c.s2d.checkpoint_every = 200
        c.s2d.log_every = 20
        c.table3.s2d_frame_stride = 2
    if mode == "converge":
        # Every network trained until its validation metric stops improving (num_epochs is a
        # ceiling) on the 1790-vertex set (the landmarks are the same at every resolution).
        c.dataset_config = "coma_scale_lite"
        c.validation.fraction = 0.1
        c.validation.every_epochs = 2.0
        c.validation.patience = 6
        c.optim.num_epochs = 150
        c.baseline.num_epochs = 300
        c.classifier.num_epochs = 300
        c.s2d = s2d.get_config("converge")
        c.s2d.model.channels = (32, 16, 16, 16, 8)
        c.s2d.progress = False
        c.table3.s2d_frame_stride = 2
    elif mode == "test":
        c.dataset_config = "tiny"
        c.min_frames = 5  # tiny sequences have 12-20 frames
        c.model.gen_base_channels = 8
        c.model.noise_dim = 8
        c.model.critic_channels = (4, 4, 4)
        c.model.critic_hidden = 16
        c.optim.batch_size = 8
        c.optim.num_epochs = 1
        c.optim.n_critic = 2
        c.samples_per_label = 2
        c.checkpoint_every = 2
        c.log_every = 1
        c.progress = False
        c.baseline.hidden_size = 16
        c.baseline.latent_size = 8
        c.baseline.batch_size = 8
        c.baseline.num_epochs = 1
        c.classifier.hidden_size = 16
        c.classifier.feature_size = 16
        c.classifier.batch_size = 8
        c.classifier.num_epochs = 2
        c.table3.s2d_frame_stride = 2
    return c
