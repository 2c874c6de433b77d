"""Table 1 / Table 2 on the CoMA-scale procedural set, sized for a 2-core CPU.

    python -m experiments.s2d.tables --config=experiments/s2d/configs/tables_cpu.py \
        --workdir=workdirs/s2d_tables

Same protocols, methods and hyper-parameters as the paper except the training budget: the
1790-vertex template (``faces4d/coma_scale_lite``), every 6th frame of each training sequence
(every 4th for testing) and 6 epochs instead of 300 (about 700 steps of batch 16 per fold).
``default.py`` with ``--config.tables…`` overrides runs the full budget on an accelerator.
"""

from experiments.s2d.configs import default


def get_config(arg: str | None = None):
    c = default.get_config(arg)
    c.dataset_config = "coma_scale_lite"
    c.frame_stride = 6
    c.eval_frame_stride = 4
    c.optim.num_epochs = 6
    c.progress = False
    c.log_every = 100
    return c
