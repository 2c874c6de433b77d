"""The training recipes of ``jaxface generate``'s models, as modes of the experiment configs.

``get_config(recipe)`` holds the dataset of the recipe, ``gan`` (a
:mod:`jaxface.configs.motion3dgan` config) and ``s2d`` (a :mod:`jaxface.configs.s2d` config).
Each recipe starts from a mode of those configs and states what it changes:

* ``default``: the ``faces4d/coma_scale_lite`` procedural set (12 subjects x 12 expressions x
  3 takes, 60-150 frames, on the 1790-vertex level-1 template; 862 neutral -> apex motions).
  Motion3DGAN is the ``cpu`` mode trained for 30 epochs of all motions (no test split; 1590
  steps). S2D-Dec is the ``cpu`` mode with channels 64/32/16/16 on a 3-step hierarchy, every
  third frame, 6 epochs (5514 steps) and learning rate 1e-4 (the S2D experiments' 1e-3 fits the
  large mouth motions but flattens the small eyebrow raise in this budget). ``jaxface
  generate`` uses it unless told otherwise. 13.4 minutes measured on a quiet 2-core CPU (the
  dataset prepared); retrained so, it reproduces the shipped bundle to float16 precision.
* ``quality``: the same data and networks trained longer: Motion3DGAN 45 epochs (2385 steps),
  S2D-Dec 5 epochs of every frame (13,925 steps), 23.7 minutes measured on a quiet 2-core CPU.
  On identities neither saw (``experiments/motion3dgan/results/bundle_quality.md``) S2D-Dec's
  mean error on ground-truth landmarks drops from 0.437 to 0.403 mm and the error it adds is
  smoother, though the two widest mouth motions (``mouth_open``, ``mouth_extreme``) come out
  slightly worse; Motion3DGAN's samples land a little closer to real takes (8.03 -> 7.81 mm).

Both are shipped, packed, with jaxface (``jaxface/assets/bundles/<recipe>``).
* ``tiny``: the ``test`` modes (the ``faces4d/tiny`` set, 468 vertices, tiny networks, a few
  steps); for tests.
"""

import ml_collections

from jaxface.configs import motion3dgan, s2d
from jaxface.configs.common import parse_mode

RECIPES = ("default", "quality", "tiny")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The recipe ``arg`` (see the module docstring)."""
    recipe = parse_mode(arg, RECIPES)
    tiny = recipe == "tiny"
    quality = recipe == "quality"
    c = ml_collections.ConfigDict()
    c.recipe = recipe
    c.dataset = "faces4d"
    c.dataset_config = "tiny" if tiny else "coma_scale_lite"

    g = c.gan = motion3dgan.get_config("test" if tiny else "cpu")
    g.dataset_config = c.dataset_config
    g.split_rule = "none"
    g.progress = True
    if not tiny:
        g.optim.num_epochs = 45 if quality else 30
        g.checkpoint_every = 1000
        g.log_every = 20
    del g.s2d, g.table3, g.baseline, g.classifier

    s = c.s2d = s2d.get_config("test" if tiny else "cpu")
    s.dataset_config = c.dataset_config
    s.progress = True
    if not tiny:
        s.topology.factors = (4, 4, 4)
        s.topology.rings = (2, 2, 1, 1)
        s.topology.dilations = (2, 2, 1, 1)
        s.model.channels = (64, 32, 16, 16)
        s.optim.learning_rate = 1e-4
        s.optim.num_epochs = 5 if quality else 6
        s.frame_stride = 1 if quality else 3
        s.log_every = 50
        s.eval_batch_size = 32
    del s.tables, s.neural3dmm, s.baselines
    return c
