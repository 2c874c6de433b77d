"""A seconds-long Motion3DGAN / Table 3 configuration: tiny procedural set, tiny networks.

    python -m experiments.motion3dgan.table3 --config=experiments/motion3dgan/configs/test.py \
        --workdir=/tmp/m3d_table3
"""

from experiments.motion3dgan.configs import default


def get_config(arg: str | None = None):
    c = default.get_config()
    del arg
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
    c.s2d.dataset_config = "tiny"
    c.s2d.topology.factors = (4, 4)
    c.s2d.topology.rings = (1, 1, 1)
    c.s2d.topology.dilations = (1, 1, 1)
    c.s2d.model.channels = (8, 8, 4)
    c.s2d.optim.batch_size = 8
    c.s2d.optim.num_epochs = 1
    c.s2d.checkpoint_every = 5
    c.s2d.log_every = 2
    c.s2d.eval_batch_size = 16
    c.s2d.progress = False
    c.table3.s2d_frame_stride = 2
    return c
