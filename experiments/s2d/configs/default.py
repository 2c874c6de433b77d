"""S2D-Dec with the paper's hyper-parameters on the CoMA-scale procedural set.

Run (identity-independent protocol, fold 1)::

    python -m experiments.s2d.main --config=experiments/s2d/configs/default.py \
        --workdir=workdirs/s2d_id1 --config.protocol=identity --config.fold=1

Architecture: the official S2D-Dec (dense 204→(20+1)·128, 4 × [up-sample + SpiralConv + ELU]
with 64/32/32/16 channels, final SpiralConv to 3); hierarchy factors (4, 4, 4, 4); Neural3DMM
spirals with rings (2, 2, 1, 1, 1), dilations (2, 2, 1, 1, 1) and data-driven lengths.
Optimiser: Adam lr 1e-3, weight decay 5e-5, ×0.99 per epoch, batch 16, 300 epochs. Loss:
``L_dr + 0.1·L_pr`` with the official landmark-distance weights.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    del arg
    c = ml_collections.ConfigDict()
    c.dataset = "faces4d"
    c.dataset_config = "coma_scale"
    c.data_dir = "~/.cache/jaxface/datasets"
    c.protocol = "identity"  # identity | expression | any prepared protocol name
    c.fold = 1
    c.frame_stride = 1  # keep every n-th training frame
    c.eval_frame_stride = 1
    c.seed = 2

    c.topology = ml_collections.ConfigDict()
    c.topology.factors = (4, 4, 4, 4)
    c.topology.rings = (2, 2, 1, 1, 1)
    c.topology.dilations = (2, 2, 1, 1, 1)
    c.topology.lengths = ml_collections.FieldReference(None, field_type=tuple)
    c.topology.reference_vertices = ml_collections.FieldReference(None, field_type=tuple)

    c.model = ml_collections.ConfigDict()
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

    # The Neural3DMM baseline (spiral autoencoder, latent 16 ⊕ landmark displacement).
    c.neural3dmm = ml_collections.ConfigDict()
    c.neural3dmm.encoder_channels = (16, 32, 64, 128)
    c.neural3dmm.decoder_channels = (128, 64, 32, 32, 16)
    c.neural3dmm.latent = 16

    # Table 1 / Table 2 (jaxface.s2d.tables).
    c.tables = ml_collections.ConfigDict()
    c.tables.protocols = ("expression", "identity")
    c.tables.folds = (1, 2, 3, 4)
    c.tables.methods = ("PCA-99%", "PCA-220", "DL3DMM-220", "Neural3DMM", "S2D-Dec")
    c.tables.ablation_protocol = "identity_fold4"  # the first three identities are test
    c.tables.num_heatmaps = 4
    c.tables.curve_max_mm = 3.0
    c.tables.dl3dmm_max_examples = 2000

    c.checkpoint_every = 1000
    c.log_every = 50
    c.eval_batch_size = 64
    c.progress = True
    return c
