"""A CPU-friendly S2D-Dec configuration: tiny procedural set, 468-vertex template, a few steps.

    python -m experiments.s2d.main --config=experiments/s2d/configs/test.py --workdir=/tmp/s2d
"""

from experiments.s2d.configs import default


def get_config(arg: str | None = None):
    c = default.get_config(arg)
    c.dataset_config = "tiny"
    c.protocol = "expression"  # the tiny set has 3 subjects: too few for identity folds
    c.fold = 1
    c.frame_stride = 2
    c.eval_frame_stride = 4
    c.topology.factors = (4, 4)
    c.topology.rings = (1, 1, 1)
    c.topology.dilations = (1, 1, 1)
    c.model.channels = (16, 16, 8)
    c.neural3dmm.encoder_channels = (8, 8)
    c.neural3dmm.decoder_channels = (16, 16, 8)
    c.neural3dmm.latent = 4
    c.tables.protocols = ("expression",)
    c.tables.folds = (1,)
    c.tables.methods = ("PCA-99%", "PCA-20", "DL3DMM-20", "Neural3DMM", "S2D-Dec")
    c.tables.ablation_protocol = "expression_fold1"
    c.tables.num_heatmaps = 2
    c.tables.dl3dmm_max_examples = 200
    c.optim.batch_size = 8
    c.optim.num_epochs = 2
    c.checkpoint_every = 5
    c.log_every = 2
    c.eval_batch_size = 16
    c.progress = False
    return c
