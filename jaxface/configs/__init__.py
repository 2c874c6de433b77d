"""Experiment configurations: ``get_config(mode)`` of each system, in the big_vision style.

Each module's ``get_config(arg)`` returns an ``ml_collections.ConfigDict``; ``arg`` picks a mode
(``""`` the paper's settings, ``"cpu"`` sized for a 2-core CPU, ``"test"`` seconds-long). The
launchers take them as files with the mode after a colon::

    python -m experiments.s2d.main --config=jaxface/configs/s2d.py:cpu --workdir=workdirs/s2d

* :mod:`~jaxface.configs.s2d`: S2D-Dec, its baselines, Tables 1-2;
* :mod:`~jaxface.configs.motion3dgan`: Motion3DGAN, its LSTM baseline and classifier, Table 3;
* :mod:`~jaxface.configs.decoupled`: the decoupled 3D face GAN, its evaluation and ablations;
* :mod:`~jaxface.configs.generate`: the recipes of ``jaxface generate`` (``default``,
  ``quality``, ``tiny``), built from the two above.
"""

from jaxface.configs.common import parse_mode

__all__ = ["parse_mode"]
